"""Trustworthy verdicts through the real app and the shipped model: the view gate, no "authentic"
without references, the claim check without references, and the kiosk's per-photo check.

The out-of-distribution photos here are drawn by this file (not by the distractor generator
``authentiq evaluate --ood`` measures with), so the two check each other.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import text

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.modelling.synthetic import CATALOG, VIEWS, SyntheticItem, find_spec, make_item, passes_quality
from authentiq.settings import DEFAULT_REFERENCES
from tests.conftest import make_settings


def encode(img: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def noise_photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)))


def page_photo(seed: int) -> bytes:
    """A printed page: lines of text on paper, slightly rotated."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (900, 1200), (246, 244, 238))
    draw = ImageDraw.Draw(img)
    for y in range(60, 1140, 34):
        words = " ".join("".join(rng.choice(list("etaoinshrdlucmfw"), int(rng.integers(2, 9))))
                         for _ in range(9))
        draw.text((60, y), words, fill=(30, 30, 35), font_size=24)
    return encode(img.rotate(float(rng.uniform(-4, 4)), fillcolor=(120, 110, 100)))


def circuit_photo(seed: int) -> bytes:
    """Another kind of object: a green circuit board with chips and traces."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (1200, 900), (20, 90, 40))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y = rng.integers(0, 1200), rng.integers(0, 900)
        draw.line((x, y, x + rng.integers(-300, 300), y), fill=(200, 170, 60), width=4)
    for _ in range(12):
        x, y = rng.integers(0, 1050), rng.integers(0, 800)
        draw.rectangle((x, y, x + rng.integers(60, 150), y + rng.integers(40, 100)), fill=(25, 25, 28))
    return encode(img.filter(ImageFilter.GaussianBlur(1)))


def genuine(seed: int, spec_index: int = 0) -> SyntheticItem:
    while True:
        item = make_item(seed, counterfeit=False, spec=CATALOG[spec_index])
        if passes_quality(item.views):
            return item
        seed += 1


def post(client: TestClient, photos: dict[str, bytes], brand: str, model: str) -> dict:  # type: ignore[type-arg]
    files = [(v, (f"{v}.jpg", data, "image/jpeg")) for v, data in photos.items()]
    r = client.post("/v1/inspections", files=files, data={"brand": brand, "model": model})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def codes(report: dict) -> set[str]:  # type: ignore[type-arg]
    return {r["code"] for r in report["reasons"]}


@pytest.fixture(scope="module")
def with_refs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped default: the 30 shipped references enrolled at start-up."""
    settings = make_settings(tmp_path_factory.mktemp("trust"), reference_seed_dir=DEFAULT_REFERENCES)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def no_refs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Where every user-trained model starts: no references at all."""
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("norefs")))) as client:
        yield client


MAKERS = {"noise": noise_photo, "page": page_photo, "circuit": circuit_photo}


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize("refs", ["with_refs", "no_refs"])
def test_not_a_product_is_never_decided(kind: str, refs: str, request: pytest.FixtureRequest) -> None:
    client: TestClient = request.getfixturevalue(refs)
    photos = {v: MAKERS[kind](seed) for seed, v in enumerate(VIEWS)}
    report = post(client, photos, "Verlaine", "Amande")
    assert report["verdict"] == "inconclusive" and report["confidence"] is None
    assert report["retake"], "a retake request names the views"
    reasons = {r["reason"] for r in report["retake"]}
    assert reasons <= {"not_a_product", "wrong_view", "blurred", "glare", "underexposed",
                       "overexposed", "too_small", "overcompressed", "upscaled"}
    assert "not_a_product" in reasons
    gated = [v for v in report["views"] if v["gate"] is not None]
    assert gated and all(v["gate"]["finding"] is not None for v in gated)
    # a photo the gate refuses is reported unusable, with the gate's reason (as /v1/quality says)
    assert all(not v["usable"] and v["reason"] == v["gate"]["finding"] and v["message"] for v in gated)
    assert report["gate"]["applied"] is True


def test_swapped_views_are_wrong_views(with_refs: TestClient) -> None:
    item = genuine(910_000_000)
    order = list(VIEWS)
    swapped = dict(zip(order, [item.views[v] for v in order[1:] + order[:1]], strict=True))
    report = post(with_refs, swapped, item.brand, item.model)
    assert report["verdict"] == "inconclusive"
    wrong = {r["view"]: r for r in report["retake"] if r["reason"] == "wrong_view"}
    assert len(wrong) >= 4, report["retake"]
    # the stitching slot holds the logo photo: the message says what it looks like
    assert "looks like the" in wrong.get("logo", next(iter(wrong.values())))["message"]


def transformed(photo: bytes, op: Image.Transpose) -> bytes:
    return encode(Image.open(io.BytesIO(photo)).transpose(op))


def test_upside_down_genuine_item_is_not_accused(with_refs: TestClient) -> None:
    """Every photo turned upside down (a phone that lost its orientation): the classifier alone
    calls such items counterfeit; the gate asks for the photos again instead."""
    for seed, op in ((910_000_700, Image.Transpose.ROTATE_180), (910_000_750, Image.Transpose.FLIP_TOP_BOTTOM)):
        item = genuine(seed, spec_index=seed % len(CATALOG))
        report = post(with_refs, {v: transformed(d, op) for v, d in item.views.items()}, item.brand,
                      item.model)
        assert report["verdict"] == "inconclusive" and report["confidence"] is None
        found = {r["view"]: r["reason"] for r in report["retake"]}
        assert sum(reason in ("misoriented_view", "not_a_product", "wrong_view")
                   for reason in found.values()) >= 4, found
        assert "misoriented_view" in found.values(), found


def test_upside_down_or_ruined_label_is_a_retake(with_refs: TestClient) -> None:
    item = genuine(910_000_800, spec_index=3)
    label = Image.open(io.BytesIO(item.views["label"])).convert("RGB")
    w, h = label.size
    ruined = {  # finding → photo (a single mirrored view is mostly missed: docs/performance.md)
        "misoriented_view": encode(label.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
        "degraded_view": encode(label.resize((30, round(30 * h / w)), Image.Resampling.BOX)
                                .resize((w, h), Image.Resampling.NEAREST)),
    }
    for finding, photo in ruined.items():
        report = post(with_refs, {**item.views, "label": photo}, item.brand, item.model)
        assert report["verdict"] == "inconclusive", (finding, report["verdict"])
        # the distance findings are stronger statements and win where they also hold
        allowed = {finding, "wrong_view", "not_a_product"} | (
            {"upscaled"} if finding == "degraded_view" else set())  # the quality check's word
        label = [r["reason"] for r in report["retake"] if r["view"] == "label"]
        assert label and label[0] in allowed, report["retake"]
        label_view = next(v for v in report["views"] if v["view"] == "label")
        assert not label_view["usable"] and label_view["reason"] == label[0]
        if label[0] == "upscaled":  # refused before the gate saw it: a required photo to retake
            assert "retake_required" in codes(report) and label_view["gate"] is None
        else:
            assert label[0] in codes(report) and label_view["gate"]["finding"] == label[0]
    untouched = post(with_refs, item.views, item.brand, item.model)
    assert untouched["verdict"] == "authentic" and not untouched["retake"]


def test_a_view_from_another_products_item_is_not_authentic(with_refs: TestClient) -> None:
    """One genuine photo of another product among the claimed product's own genuine photos:
    every whole-item check passes it, the per-view reference check does not."""
    item = genuine(910_000_900, CATALOG.index(find_spec("Castellan", "Riva")))
    other = genuine(910_000_950, CATALOG.index(find_spec("Noor & Kessler", "Atlas")))
    untouched = post(with_refs, item.views, item.brand, item.model)
    assert untouched["verdict"] == "authentic"
    checked = untouched["references"]["views"]
    assert checked["status"] == "checked" and len(checked["matches"]) == len(VIEWS)
    assert all(m["finding"] is None and m["similarity"] >= m["floor"] for m in checked["matches"])
    assert "unlike_references" not in codes(untouched)

    report = post(with_refs, {**item.views, "label": other.views["label"]}, item.brand, item.model)
    assert report["verdict"] == "inconclusive" and report["confidence"] is None
    assert report["retake"] == [{"view": "label", "reason": "unlike_references", "message": (
        "This photo does not look like the label of the genuine Castellan/Riva references. If it "
        "is a photo of this item, a reviewer will compare it; if not, photograph this item's label "
        "and upload it again.")}]
    [reason] = [r for r in report["reasons"] if r["code"] == "unlike_references"]
    assert reason["view"] == "label" and "not called authentic" in reason["detail"]
    assert "the label photo is unlike the genuine references" in report["review_advised"]
    [label] = [m for m in report["references"]["views"]["matches"] if m["view"] == "label"]
    assert label["finding"] == "unlike_references"
    listed = with_refs.get("/v1/reports", params={"needs_review": "true"}).json()
    assert report["id"] in {i["id"] for i in listed["items"]}
    page = with_refs.get(f"/reports/{report['id']}").text  # what the auditor reads
    row = page[page.index("<td>label</td>"):]
    assert "unlike the genuine references" in row[:row.index("</tr>")]


def test_references_without_view_features_skip_the_check_until_re_embed(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """References embedded before their per-view descriptors were kept (schema revision 0006):
    the check is skipped for their product, and every report says so, until `authentiq
    re-embed` fills them; it never crashes and never passes as if it had checked."""
    tmp = tmp_path_factory.mktemp("unfilled")
    settings = make_settings(tmp, reference_seed_dir=DEFAULT_REFERENCES)
    item = genuine(910_000_900, CATALOG.index(find_spec("Castellan", "Riva")))
    foreign = {**item.views, "label": genuine(910_000_950, CATALOG.index(
        find_spec("Noor & Kessler", "Atlas"))).views["label"]}
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.references.engine  # type: ignore[attr-defined]
        with engine.begin() as conn:  # what the 0006 upgrade leaves on existing rows
            conn.execute(text("UPDATE reference_embeddings SET view_features = NULL, "
                              "feature_views = NULL, features_id = NULL"))
    with TestClient(create_app(settings)) as client:
        report = post(client, foreign, item.brand, item.model)
        assert report["references"]["views"] == {"status": "not_filled", "lacking": 5,
                                                 "matches": []}
        [skipped] = [r for r in report["reasons"] if r["code"] == "view_check_skipped"]
        assert "5 of its 5 references" in skipped["detail"] and "authentiq re-embed" in skipped["detail"]
        assert "unlike_references" not in codes(report)

    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(settings.storage.blob_dir))
    assert main(["re-embed", "--database-url", settings.storage.database_url, "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("re-embedded 30 references with authentiq-default@")
    with TestClient(create_app(settings)) as client:
        report = post(client, foreign, item.brand, item.model)
        assert report["references"]["views"]["status"] == "checked"
        assert report["verdict"] == "inconclusive"
        assert [r["reason"] for r in report["retake"]] == ["unlike_references"]


def test_one_photo_in_every_slot_is_a_duplicate(no_refs: TestClient) -> None:
    item = genuine(910_000_100)
    report = post(no_refs, dict.fromkeys(VIEWS, item.views["logo"]), item.brand, item.model)
    assert report["verdict"] == "inconclusive"
    found = {r["view"]: r["reason"] for r in report["retake"]}
    assert sum(reason == "duplicate_view" for reason in found.values()) >= 5
    assert "duplicate_view" in codes(report)


def test_genuine_item_with_references_is_authentic_with_calibrated_confidence(
        with_refs: TestClient) -> None:
    item = genuine(910_000_200)
    report = post(with_refs, item.views, item.brand, item.model)
    assert report["verdict"] == "authentic" and not report["retake"]
    assert report["confidence"] == pytest.approx(report["probabilities"]["authentic"])
    assert report["fusion"]["applied"] and report["fusion"]["temperature"] is not None
    assert all(v["gate"]["finding"] is None and v["gate"]["distance"] <= 1 for v in report["views"])


def test_no_authentic_without_references(no_refs: TestClient) -> None:
    item = genuine(910_000_300)
    report = post(no_refs, item.views, item.brand, item.model)
    assert report["verdict"] == "inconclusive" and report["confidence"] is None
    assert {"no_references", "authentic_needs_references"} <= codes(report)
    assert report["fusion"]["p_counterfeit"] < 0.05  # the classifier alone was sure


def test_classifier_only_products_may_be_authentic(tmp_path_factory: pytest.TempPathFactory) -> None:
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("clf")))) as client:
        item = genuine(910_000_400)
        r = client.put(f"/v1/products/{item.brand}/{item.model}",
                       json={"thresholds": {"allow_classifier_only": True}})
        assert r.status_code == 200, r.text
        report = post(client, item.views, item.brand, item.model)
        assert report["verdict"] == "authentic" and "authentic_needs_references" not in codes(report)
        assert 0.95 < report["confidence"] <= 1


def test_claim_check_runs_for_a_product_without_references(with_refs: TestClient) -> None:
    r = with_refs.put("/v1/products/Maison Test/Sac", json={"thresholds": {}})
    assert r.status_code == 200, r.text
    amande = genuine(910_000_500, CATALOG.index(find_spec("Verlaine", "Amande")))
    report = post(with_refs, amande.views, "Maison Test", "Sac")
    assert report["verdict"] == "inconclusive"
    mismatch = next(r for r in report["reasons"] if r["code"] == "model_mismatch")
    assert (mismatch["brand"], mismatch["model"]) == ("Verlaine", "Amande")
    assert "no references enrolled" in mismatch["detail"]
    listed = with_refs.get("/v1/reports", params={"needs_review": "true"}).json()
    assert report["id"] in {i["id"] for i in listed["items"]}


def test_counterfeit_reasons_name_a_view_only_when_attention_is_not_flat(with_refs: TestClient) -> None:
    item = make_item(900_000_123, defects=["stitch_pitch"])
    report = post(with_refs, item.views, item.brand, item.model)
    assert report["verdict"] == "counterfeit"
    attention = [r for r in report["reasons"] if r["code"] == "attention"]
    assert len(attention) == 1, "the stitching defect stands out: one view is named"
    r = attention[0]
    assert r["view"] == "stitching" and r["share"] >= 1.5 / len(report["views"])
    assert f"{r['share']:.0%}" in r["detail"]


def test_quality_endpoint_uses_the_gate(with_refs: TestClient) -> None:
    item = genuine(910_000_600)

    def check(view: str, data: bytes) -> dict:  # type: ignore[type-arg]
        r = with_refs.post("/v1/quality", data={"view": view},
                           files={"photo": ("p.jpg", data, "image/jpeg")})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    ok = check("logo", item.views["logo"])
    assert ok["usable"] and ok["gate"]["finding"] is None and ok["gate"]["looks_like"] == "logo"
    page = check("label", page_photo(7))
    assert not page["usable"] and page["reason"] in ("not_a_product", "wrong_view")
    assert "label" in page["message"]
    wrong = check("interior", item.views["hardware"])
    assert not wrong["usable"] and wrong["reason"] == "wrong_view"
    assert "looks like the hardware view" in wrong["message"]


def test_a_mirrored_stitching_photo_is_asked_for_again_not_accused(
        with_refs: TestClient, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mirroring reverses the stitch slant, which reads as the stitch_angle defect: without the
    mirror check a genuine item with a mirrored stitching photo is called counterfeit; with it,
    the photo is asked for again and the item goes to review. A real stitch_angle counterfeit
    mirrored back is still a counterfeit: its verdict stands."""
    settings = make_settings(tmp_path_factory.mktemp("nomirror"), reference_seed_dir=DEFAULT_REFERENCES,
                             mirror_check=False)
    with TestClient(create_app(settings)) as unchecked:
        for seed, spec in ((910_000_903, CATALOG[5]), (910_000_904, CATALOG[0])):
            item = make_item(seed, counterfeit=False, spec=spec)
            assert passes_quality(item.views)
            photos = {**item.views, "stitching": transformed(item.views["stitching"],
                                                             Image.Transpose.FLIP_LEFT_RIGHT)}
            assert post(unchecked, photos, item.brand, item.model)["verdict"] == "counterfeit"
            report = post(with_refs, photos, item.brand, item.model)
            assert report["verdict"] == "inconclusive" and report["confidence"] is None
            assert [(r["view"], r["reason"]) for r in report["retake"]] == [("stitching",
                                                                            "misoriented_view")]
            assert report["review_advised"], report["reasons"]
            [stitching] = [v for v in report["views"] if v["view"] == "stitching"]
            assert not stitching["usable"] and stitching["reason"] == "misoriented_view"
    # Mirrored back, these two fall short of authentic (fused 0.008, held by the per-view check,
    # and 0.061, inside the band), yet close to it (below MIRROR_CLEARS_BELOW): asked for again.
    for seed in (900_000_003, 900_000_029):
        item = make_item(seed, counterfeit=False)
        photos = {**item.views, "stitching": transformed(item.views["stitching"],
                                                         Image.Transpose.FLIP_LEFT_RIGHT)}
        report = post(with_refs, photos, item.brand, item.model)
        assert report["verdict"] == "inconclusive", report["reasons"]
        assert ("stitching", "misoriented_view") in [(r["view"], r["reason"])
                                                     for r in report["retake"]]
        assert report["review_advised"]
    for seed in (910_001_003, 910_001_004):  # stitches slanted 12-25° off: mirrored, still off
        fake = make_item(seed, counterfeit=True, defects=["stitch_angle"], spec=CATALOG[seed % 6])
        report = post(with_refs, dict(fake.views), fake.brand, fake.model)
        assert report["verdict"] == "counterfeit" and report["retake"] == []
