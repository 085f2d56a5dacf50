"""The reference store and its synced index, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from authentiq.contract.model_spec import ViewCheckParams
from authentiq.errors import DuplicateReference, InvalidField, ReferenceNotFound, UnknownProduct
from authentiq.pipeline.reference_index import ReferenceIndex
from authentiq.settings import ReferenceSettings
from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import open_database
from authentiq.storage.references import (
    ReferenceRow,
    ReferenceStore,
    ViewFeatures,
    content_hash,
    product_key,
)

V1, V2 = "tiny@1", "tiny@2"


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[ReferenceStore]:
    engine = open_database(database_url)
    s = ReferenceStore(engine, BlobStore(tmp_path / "refblobs"))
    s.ensure_products([("Verlaine", "Amande"), ("Castellan", "Riva")])
    yield s
    engine.dispose()


def vec(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def enrol(store: ReferenceStore, brand: str, model: str, v: np.ndarray, *, tag: str,
          version: str = V1, when: datetime | None = None, ref_id: str | None = None,
          views: ViewFeatures | None = None) -> ReferenceRow:
    photos = {"front.jpg": tag.encode()}
    row = ReferenceRow(id=ref_id or f"ref{tag}", product_key=product_key(brand, model), brand=brand,
                       model=model, created_at=when or datetime.now(UTC),
                       content_hash=content_hash([("front", tag.encode())]),
                       body={"stored_files": ["front.jpg"]}, seq=0)
    return store.add(row, version, v, photos, views)


def test_products_are_created_once_and_unknown_ones_are_refused(store: ReferenceStore) -> None:
    store.ensure_products([("verlaine", "AMANDE")])  # same key, different case: no duplicate
    assert [(p.brand, p.model) for p in store.products()] == [("Castellan", "Riva"), ("Verlaine", "Amande")]
    with pytest.raises(UnknownProduct, match="PUT /v1/products"):
        store.product("Nope", "X")
    row = store.put_product("Nope", "X", {"min_similarity": 0.5})
    assert store.product("nope", "x").thresholds == {"min_similarity": 0.5} == row.thresholds


def test_enrol_duplicate_delete_and_reenrol(store: ReferenceStore, tmp_path: Path) -> None:
    first = enrol(store, "Verlaine", "Amande", vec(1, 0, 0), tag="a")
    assert store.blobs.get(first.id, "front.jpg") == b"a"
    with pytest.raises(DuplicateReference) as exc:
        enrol(store, "Verlaine", "Amande", vec(1, 0, 0), tag="a", ref_id="refdup")  # same photos
    assert exc.value.extra["reference_id"] == first.id
    assert not (tmp_path / "refblobs" / "refdup").exists()  # its blobs were removed again
    assert store.known_hashes([first.content_hash, "other"]) == {first.content_hash}

    deleted = store.delete(first.id, "sold to a customer")
    assert deleted.deleted_at is not None and deleted.deleted_reason == "sold to a customer"
    assert store.delete(first.id, "again").deleted_reason == "sold to a customer"  # no-op
    assert store.live_with_hash(first.content_hash) is None
    # A deleted photo set may be enrolled again (a new reference), and stays on record.
    row = ReferenceRow(id="refa2", product_key=first.product_key, brand="Verlaine", model="Amande",
                       created_at=datetime.now(UTC), content_hash=first.content_hash, body={}, seq=0)
    store.add(row, V1, vec(1, 0, 0), {"front.jpg": b"a"})
    assert store.get(first.id).deleted_at is not None and store.get("refa2").deleted_at is None
    with pytest.raises(ReferenceNotFound):
        store.get("missing")
    with pytest.raises(ReferenceNotFound):
        store.delete("missing", "why")


def test_find_filters_and_cursor_pages(store: ReferenceStore) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        enrol(store, "Verlaine", "Amande", vec(1, i, 0), tag=f"v{i}", when=base.replace(minute=i))
    enrol(store, "Castellan", "Riva", vec(0, 1, 0), tag="c0", when=base.replace(minute=1))
    store.delete("refv4", "withdrawn")
    page, cursor = store.find(brand="verlaine", limit=2)
    seen = [r.id for r in page]
    while cursor:
        page, cursor = store.find(brand="verlaine", limit=2, cursor=cursor)
        seen += [r.id for r in page]
    assert seen == ["refv3", "refv2", "refv1", "refv0"]  # newest first, deleted left out
    assert [r.id for r in store.find(model="Riva")[0]] == ["refc0"]
    assert len(store.find(include_deleted=True, limit=50)[0]) == 6
    for bad in ("!!!", "bm90IGEgY3Vyc29y", "MjAyNi0wMS0wMXx4eXo_Lw"):
        with pytest.raises(InvalidField, match="cursor"):
            store.find(cursor=bad)


def test_two_workers_see_each_others_changes(store: ReferenceStore) -> None:
    """Two indexes on one database (two worker processes) converge through the change counter."""
    a = ReferenceIndex(store, ReferenceSettings(reference_sync_s=0), model_id=V1, model_version=V1, dim=3)
    b = ReferenceIndex(store, ReferenceSettings(reference_sync_s=3600), model_id=V1, model_version=V1, dim=3)
    b.sync(force=True)
    enrol(store, "Verlaine", "Amande", vec(1, 0, 0), tag="a")
    enrol(store, "Verlaine", "Amande", vec(1, 1, 0), tag="b")
    enrol(store, "Castellan", "Riva", vec(0, 0, 1), tag="c")
    ev = a.search(vec(1, 0.1, 0), "Verlaine", "Amande", k=5)
    assert [m.id for m in ev.claimed] == ["refa", "refb"] and ev.claimed_count == 2
    assert ev.best_other is not None and ev.best_other.id == "refc"
    assert ev.best == round(float(vec(1, 0.1, 0) @ vec(1, 0, 0)), 4)  # rounded once, for reasons and JSON
    assert b.count("Verlaine", "Amande") == 0  # within b's sync interval: not yet seen
    b.sync(force=True)
    assert b.count("Verlaine", "Amande") == 2
    store.delete("refa", "counterfeit after all")
    store.put_product("Verlaine", "Amande", {"min_similarity": 0.9})
    b.sync(force=True)
    ev = b.search(vec(1, 0, 0), "verlaine", "amande")
    assert [m.id for m in ev.claimed] == ["refb"] and ev.thresholds == {"min_similarity": 0.9}
    assert ev.as_dict()["claimed"]["matches"][0]["id"] == "refb"


def test_embeddings_of_another_model_version_are_never_searched(store: ReferenceStore) -> None:
    enrol(store, "Verlaine", "Amande", vec(1, 0, 0), tag="a", version=V1)
    new = ReferenceIndex(store, ReferenceSettings(reference_sync_s=0), model_id=V2, model_version=V2, dim=3)
    assert new.search(vec(1, 0, 0), "Verlaine", "Amande").claimed_count == 0
    assert [r.id for r in store.missing_embeddings(V2)] == ["refa"]
    store.add_embedding("refa", V2, vec(0, 1, 0))  # what re-embed does
    assert store.missing_embeddings(V2) == []
    ev = new.search(vec(0, 1, 0), "Verlaine", "Amande")
    assert ev.claimed_count == 1 and ev.best == pytest.approx(1.0)
    old = ReferenceIndex(store, ReferenceSettings(reference_sync_s=0), model_id=V1, model_version=V1, dim=3)
    assert old.search(vec(1, 0, 0), "Verlaine", "Amande").best == pytest.approx(1.0)
    assert sorted(store.embedded_with(["refa"])["refa"]) == [V1, V2]
    assert store.counts(V2) == {"live": 1, "embedded": 1, "view_features": 0}


CHECK = ViewCheckParams(features_id="fit1", components=0, counts=(1,), floors={"front": (0.5,)},
                        loose={"front": (0.5,)}, margins={"front": (0.0,)}, quantile=0.001,
                        loose_quantile=0.1, margin_quantile=0.999)


def test_per_view_descriptors_are_kept_and_filled_later(store: ReferenceStore) -> None:
    """References keep their per-view descriptors; one enrolled without them (before revision
    0006), or with another fit's, skips the per-view check for its product, saying how many lack
    them, until re-embed fills them — on every worker's index."""
    index = ReferenceIndex(store, ReferenceSettings(reference_sync_s=0), model_id=V1, model_version=V1, dim=3,
                           view_check=CHECK)
    other = ReferenceIndex(store, ReferenceSettings(reference_sync_s=0), model_id=V1, model_version=V1, dim=3,
                           view_check=CHECK)
    front = {"front": np.asarray([4.0, 1.0, 0.0, 9.0], np.float32)}
    enrol(store, "Verlaine", "Amande", vec(1, 0, 0), tag="a", views=ViewFeatures("fit1", front))
    enrol(store, "Castellan", "Riva", vec(0, 1, 0), tag="c", views=ViewFeatures(
        "fit1", {"front": np.asarray([0.0, 1.0, 4.0, 1.0], np.float32)}))
    ev = index.search(vec(1, 0, 0), "Verlaine", "Amande", view_descriptors=front)
    assert ev.views.status == "checked"
    [match] = ev.views.matches
    assert match.reference_id == "refa" and match.similarity == pytest.approx(1.0, abs=1e-4)
    assert match.finding is None
    foreign = index.search(vec(1, 0, 0), "Verlaine", "Amande",
                           view_descriptors={"front": np.asarray([0.0, 1.0, 4.0, 1.0], np.float32)})
    assert [m.finding for m in foreign.views.matches] == ["unlike_references"]
    assert foreign.as_dict()["views"]["matches"][0]["finding"] == "unlike_references"
    assert index.search(vec(1, 0, 0), "Verlaine", "Amande").views.status == "unavailable"

    enrol(store, "Verlaine", "Amande", vec(1, 0.1, 0), tag="b")  # as enrolled before 0006
    enrol(store, "Verlaine", "Amande", vec(1, 0.2, 0), tag="d",
          views=ViewFeatures("an older fit", front))
    assert store.counts(V1) == {"live": 4, "embedded": 4, "view_features": 3}
    assert store.missing_embeddings(V1) == []
    assert [r.id for r in store.missing_embeddings(V1, features_id="fit1")] == ["refb", "refd"]
    for ix in (index, other):
        skipped = ix.search(vec(1, 0, 0), "Verlaine", "Amande", view_descriptors=front).views
        assert (skipped.status, skipped.lacking, skipped.matches) == ("not_filled", 2, [])
    # the other product's references all have theirs: its check still runs
    riva = index.search(vec(0, 1, 0), "Castellan", "Riva", view_descriptors=front).views
    assert riva.status == "checked"

    for ref in ("refb", "refd"):  # what re-embed does
        store.add_embedding(ref, V1, vec(1, 0.1, 0), ViewFeatures("fit1", front))
    assert store.missing_embeddings(V1, features_id="fit1") == []
    for ix in (index, other):
        ev = ix.search(vec(1, 0, 0), "Verlaine", "Amande", view_descriptors=front)
        assert ev.views.status == "checked" and ev.claimed_count == 3
    for ref in ("refa", "refb", "refd"):
        store.delete(ref, "withdrawn")
    gone = index.search(vec(1, 0, 0), "Verlaine", "Amande", view_descriptors=front)
    assert gone.claimed_count == 0 and gone.views.status == "no_references"


def test_a_reference_folder_made_in_a_spreadsheet_is_read_like_a_training_folder(
        tmp_path: Path) -> None:
    """``enroll`` reads labels.csv with the dataset check's reader: Excel's UTF-8 with a BOM,
    ';' separators and header aliases (issue 18 found enroll misreading them)."""
    from authentiq.pipeline.enrolment import read_folder

    for item in ("bag-1", "bag-2"):
        (tmp_path / item).mkdir()
        (tmp_path / item / "logo.jpg").write_bytes(b"jpeg")
    (tmp_path / "labels.csv").write_bytes(
        "\ufeffItem ID;Verdict;Brand;Model;Source\r\n"
        "bag-1;Genuine;Castellan;Riva;boutique\r\n"
        "bag-2;Fake;Castellan;Riva;\r\n".encode())
    folder = read_folder(tmp_path)
    assert [(i.name, i.brand, i.model, i.source) for i in folder.items] == [
        ("bag-1", "Castellan", "Riva", "boutique")]
    assert folder.left_out == {"bag-2": "counterfeit"}
    assert set(folder.items[0].files) == {"logo"}
