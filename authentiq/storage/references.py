"""The reference database: products, enrolled genuine items and their embeddings (SQLModel).

A *reference* is a genuine item of one product (brand/model): its photos (blobs), quality
results and metadata. Its *embeddings* live in a table of their own, one row per model version,
so a new model never compares against vectors another model produced (``authentiq re-embed``
adds the rows for the current one). Each row also keeps the model's per-view descriptors of the
reference (``view_features``, for the per-view check) and which fit of the check made them
(``features_id``); rows written before they were kept (schema revision 0006), or by another fit,
are filled by ``authentiq re-embed``. Deletes are soft: the row stays, marked with when and why.

Every change (enrol, delete, new embedding, product thresholds) takes the next value of one
counter in the same transaction and stamps it on the changed row (``seq``); a search index in any
worker process catches up by reading the rows stamped after the last value it saw. The counter
row is locked by the writing transaction until commit, so values become visible in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, Column, Index, LargeBinary, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from authentiq.errors import DuplicateReference, ReferenceNotFound, UnknownProduct
from authentiq.storage.blobs import Blobs
from authentiq.storage.db import Counter, ensure_counter
from authentiq.storage.pagination import keyset_page

COUNTER = "references"


def product_key(brand: str, model: str) -> str:
    return f"{brand.strip().casefold()}/{model.strip().casefold()}"


def content_hash(photos: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over the views' names and bytes, in view-name order."""
    h = hashlib.sha256()
    for name, data in sorted(photos):
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


class ProductRow(SQLModel, table=True):
    __tablename__ = "products"
    key: str = Field(primary_key=True, max_length=260)
    brand: str = Field(max_length=128)
    model: str = Field(max_length=128)
    thresholds: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    seq: int = Field(default=0, index=True)


class ReferenceRow(SQLModel, table=True):
    __tablename__ = "reference_items"
    __table_args__ = (
        # One live reference per photo set; a deleted one may be enrolled again.
        Index("uq_reference_live_hash", "content_hash", unique=True,
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
    )
    id: str = Field(primary_key=True, max_length=32)
    product_key: str = Field(index=True, max_length=260)
    brand: str = Field(max_length=128)
    model: str = Field(max_length=128)
    created_at: datetime = Field(index=True)
    source: str | None = Field(default=None, max_length=128)
    notes: str | None = Field(default=None, max_length=2000)
    content_hash: str = Field(max_length=64)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # views, warnings, scores
    deleted_at: datetime | None = None
    deleted_reason: str | None = Field(default=None, max_length=2000)
    seq: int = Field(index=True)


class EmbeddingRow(SQLModel, table=True):
    __tablename__ = "reference_embeddings"
    reference_id: str = Field(primary_key=True, foreign_key="reference_items.id", max_length=32)
    # the model's id (contract.model_spec.model_id); rows written before revision 0007 that
    # were not adopted by the model that made them keep their name@version (never served)
    model_id: str = Field(primary_key=True, max_length=200)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32 little-endian
    # The model's view_descriptors of each view the reference has: float32
    # [len(feature_views), D]; NULL: not kept yet (enrolled before revision 0006, or by a model
    # without the per-view check). features_id: the check's fit that made them.
    view_features: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    feature_views: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    features_id: str | None = Field(default=None, max_length=64)
    created_at: datetime
    seq: int = Field(index=True)


@dataclass(frozen=True)
class ViewFeatures:
    """A reference's per-view descriptors (view → vector) and the check's fit that made them."""

    features_id: str
    vectors: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Upsert:
    """A live reference's embedding (and per-view descriptors, None when not kept) to index."""

    reference_id: str
    product_key: str
    vector: np.ndarray
    view_features: dict[str, np.ndarray] | None
    features_id: str | None = None


@dataclass(frozen=True)
class Change:
    """What a search index must apply to catch up to ``seq``."""

    seq: int
    upserts: list[Upsert]
    removals: list[str]
    products_changed: bool


class ReferenceStore:
    def __init__(self, engine: Engine, blobs: Blobs) -> None:
        self.engine, self.blobs = engine, blobs
        ensure_counter(engine, COUNTER)

    @staticmethod
    def _head(session: Session) -> int:
        """The change counter's value now (0 before the first change)."""
        counter = session.get(Counter, COUNTER)
        return counter.value if counter is not None else 0

    @staticmethod
    def _next_seq(session: Session) -> int:
        session.execute(update(Counter).where(col(Counter.name) == COUNTER)
                        .values(value=Counter.value + 1))  # type: ignore[arg-type]
        counter = session.get(Counter, COUNTER, populate_existing=True)
        if counter is None:
            raise RuntimeError("change counter row missing")
        return counter.value

    # --- products -----------------------------------------------------------------------------

    def ensure_products(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Create the products a model declares (idempotent; existing ones keep their thresholds)."""
        with Session(self.engine) as session:
            known = set(session.exec(select(ProductRow.key)))
            fresh = {product_key(b, m): (b, m) for b, m in pairs}
            missing = {k: v for k, v in fresh.items() if k not in known}
            if not missing:
                return
            seq = self._next_seq(session)
            now = datetime.now(UTC)
            for key, (brand, model) in missing.items():
                session.add(ProductRow(key=key, brand=brand, model=model, created_at=now, seq=seq))
            try:
                session.commit()
            except IntegrityError:  # a concurrent worker created them; theirs stand
                session.rollback()

    def products(self) -> list[ProductRow]:
        with Session(self.engine) as session:
            return list(session.exec(select(ProductRow).order_by(col(ProductRow.brand),
                                                                 col(ProductRow.model))))

    def product(self, brand: str, model: str) -> ProductRow:
        with Session(self.engine) as session:
            row = session.get(ProductRow, product_key(brand, model))
        if row is None:
            raise UnknownProduct(f"{brand}/{model} is not a known product; create it with "
                                 f"PUT /v1/products/{{brand}}/{{model}} first")
        return row

    def put_product(self, brand: str, model: str, thresholds: dict[str, float]) -> ProductRow:
        """Create the product or replace its threshold overrides."""
        key = product_key(brand, model)
        with Session(self.engine) as session:
            seq = self._next_seq(session)
            row = session.get(ProductRow, key)
            if row is None:
                row = ProductRow(key=key, brand=brand.strip(), model=model.strip(),
                                 created_at=datetime.now(UTC), seq=seq)
            row.thresholds, row.seq = dict(thresholds), seq
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    # --- references ---------------------------------------------------------------------------

    def live_with_hash(self, digest: str) -> ReferenceRow | None:
        with Session(self.engine) as session:
            return session.exec(select(ReferenceRow).where(
                ReferenceRow.content_hash == digest, col(ReferenceRow.deleted_at).is_(None))).first()

    def known_hashes(self, digests: Sequence[str]) -> set[str]:
        """Which of these photo sets were ever enrolled (deleted ones included)."""
        with Session(self.engine) as session:
            return set(session.exec(select(ReferenceRow.content_hash).where(
                col(ReferenceRow.content_hash).in_(list(digests)))))

    def add(self, row: ReferenceRow, model_id: str, vector: np.ndarray,
            photos: dict[str, bytes], view_features: ViewFeatures | None = None) -> ReferenceRow:
        """Blobs first, then item + embedding in one transaction; nothing is left on failure."""
        self.blobs.put_many(row.id, photos)
        try:
            with Session(self.engine) as session:
                row.seq = self._next_seq(session)
                session.add(row)
                session.flush()  # the item before its embedding (foreign key)
                session.add(EmbeddingRow(reference_id=row.id, model_id=model_id,
                                         vector=_pack(vector), created_at=row.created_at,
                                         seq=row.seq, **_pack_views(view_features)))
                session.commit()
                session.refresh(row)
                return row
        except IntegrityError as exc:
            self.blobs.delete(row.id)
            existing = self.live_with_hash(row.content_hash)
            if existing is None:
                raise
            raise DuplicateReference(
                f"these photos are already enrolled as reference {existing.id}",
                reference_id=existing.id) from exc
        except BaseException:
            self.blobs.delete(row.id)
            raise

    def add_embedding(self, reference_id: str, model_id: str, vector: np.ndarray,
                      view_features: ViewFeatures | None = None) -> None:
        """Write (or replace) a reference's embedding row for ``model_id``."""
        with Session(self.engine) as session:
            seq = self._next_seq(session)
            session.merge(EmbeddingRow(reference_id=reference_id, model_id=model_id,
                                       vector=_pack(vector), created_at=datetime.now(UTC), seq=seq,
                                       **_pack_views(view_features)))
            session.commit()

    def get(self, reference_id: str) -> ReferenceRow:
        with Session(self.engine) as session:
            row = session.get(ReferenceRow, reference_id)
        if row is None:
            raise ReferenceNotFound(f"no reference with id {reference_id!r}")
        return row

    def embedded_with(self, reference_ids: Sequence[str]) -> dict[str, list[str]]:
        with Session(self.engine) as session:
            pairs = session.exec(select(EmbeddingRow.reference_id, EmbeddingRow.model_id).where(
                col(EmbeddingRow.reference_id).in_(list(reference_ids))))
            out: dict[str, list[str]] = {}
            for ref, identity in pairs:
                out.setdefault(ref, []).append(identity)
        return out

    def find(self, *, brand: str | None = None, model: str | None = None,
             source: str | None = None, include_deleted: bool = False, limit: int = 50,
             cursor: str | None = None) -> tuple[list[ReferenceRow], str | None]:
        """Newest first; returns the page and the cursor of the next one (None at the end)."""
        query = self._matching(select(ReferenceRow), brand, model, source, include_deleted)
        return keyset_page(self.engine, query, ReferenceRow, limit=limit, cursor=cursor)

    def count(self, *, brand: str | None = None, model: str | None = None,
              source: str | None = None, include_deleted: bool = False) -> int:
        """How many :meth:`find` pages through (with the same filters)."""
        query = self._matching(select(func.count()).select_from(ReferenceRow), brand, model, source,
                               include_deleted)
        with Session(self.engine) as session:
            return int(session.exec(query).one())

    @staticmethod
    def _matching(query: Any, brand: str | None, model: str | None, source: str | None,
                  include_deleted: bool) -> Any:
        if brand is not None:
            query = query.where(ReferenceRow.product_key.startswith(brand.strip().casefold() + "/"))  # type: ignore[attr-defined]
        if model is not None:
            query = query.where(ReferenceRow.product_key.endswith("/" + model.strip().casefold()))  # type: ignore[attr-defined]
        if source is not None:
            query = query.where(ReferenceRow.source == source)
        if not include_deleted:
            query = query.where(col(ReferenceRow.deleted_at).is_(None))
        return query

    def delete(self, reference_id: str, reason: str) -> ReferenceRow:
        """Soft delete; the photos and rows stay for audit. Deleting twice is a no-op."""
        with Session(self.engine) as session:
            row = session.get(ReferenceRow, reference_id)
            if row is None:
                raise ReferenceNotFound(f"no reference with id {reference_id!r}")
            if row.deleted_at is None:
                row.seq = self._next_seq(session)
                row.deleted_at, row.deleted_reason = datetime.now(UTC), reason
                session.add(row)
                session.commit()
                session.refresh(row)
            return row

    def adopt(self, version_key: str, model_id: str) -> int:
        """Re-key embedding rows written before model ids (keyed ``name@version``) as made by
        ``model_id``; how many. Done once, for the model promoted automatically on the first
        start of a registry-less database: the model that was serving, so the one that made
        them (docs/your-own-model.md, "Models")."""
        with Session(self.engine) as session:
            seq = self._next_seq(session)
            done = session.execute(update(EmbeddingRow).where(
                col(EmbeddingRow.model_id) == version_key).values(model_id=model_id, seq=seq))
            session.commit()
        return int(done.rowcount)  # type: ignore[attr-defined]

    def missing_embeddings(self, model_id: str, *, features_id: str | None = None
                           ) -> list[ReferenceRow]:
        """Live references with no embedding from ``model_id`` (what re-embed must do);
        with ``features_id``, also those whose row lacks per-view descriptors of that fit."""
        done = select(EmbeddingRow.reference_id).where(EmbeddingRow.model_id == model_id)
        if features_id is not None:
            done = done.where(col(EmbeddingRow.view_features).is_not(None),
                              EmbeddingRow.features_id == features_id)
        with Session(self.engine) as session:
            return list(session.exec(select(ReferenceRow).where(
                col(ReferenceRow.deleted_at).is_(None), col(ReferenceRow.id).not_in(done))
                .order_by(col(ReferenceRow.created_at))))

    def changes(self, model_id: str, since: int) -> Change:
        with Session(self.engine) as session:
            head = self._head(session)
            if head <= since:
                return Change(since, [], [], False)
            live = session.execute(  # SQLAlchemy's select: sqlmodel's types up to 4 columns
                sa_select(col(EmbeddingRow.reference_id), col(ReferenceRow.product_key),
                          col(EmbeddingRow.vector), col(ReferenceRow.deleted_at),
                          col(EmbeddingRow.view_features), col(EmbeddingRow.feature_views),
                          col(EmbeddingRow.features_id))
                .join(ReferenceRow, col(ReferenceRow.id) == col(EmbeddingRow.reference_id))
                .where(EmbeddingRow.model_id == model_id,  # type: ignore[arg-type]
                       (col(EmbeddingRow.seq) > since) | (col(ReferenceRow.seq) > since),
                       col(EmbeddingRow.seq) <= head, col(ReferenceRow.seq) <= head))
            upserts, removals = [], []
            for ref, key, vector, deleted, features, views, features_id in live:
                if deleted is None:
                    upserts.append(Upsert(ref, key, _unpack(vector), _unpack_views(features, views),
                                          features_id))
                else:
                    removals.append(ref)
            products = session.exec(select(ProductRow.key).where(
                col(ProductRow.seq) > since, col(ProductRow.seq) <= head)).first() is not None
        return Change(head, upserts, removals, products)

    def reference_changes(self, since: int) -> tuple[int, list[ReferenceRow], list[str]]:
        """The change counter now, the live references enrolled after ``since`` and the ids of
        those deleted after it (oldest change first): for an index that embeds references itself
        (a shadow's candidate); ``since=-1``: every live reference."""
        with Session(self.engine) as session:
            head = self._head(session)
            if head <= since:
                return since, [], []
            rows = list(session.exec(select(ReferenceRow).where(
                col(ReferenceRow.seq) > since, col(ReferenceRow.seq) <= head)
                .order_by(col(ReferenceRow.seq))))
        return (head, [r for r in rows if r.deleted_at is None],
                [r.id for r in rows if r.deleted_at is not None])

    def product_changes(self, since: int) -> tuple[int, bool]:
        """The change counter now, and whether a product changed after ``since`` (an index of
        vectors kept elsewhere needs only this)."""
        with Session(self.engine) as session:
            head = self._head(session)
            if head <= since:
                return since, False
            changed = session.exec(select(ProductRow.key).where(
                col(ProductRow.seq) > since, col(ProductRow.seq) <= head)).first() is not None
        return head, changed

    def counts(self, model_id: str) -> dict[str, int]:
        """Live references, those embedded with ``model_id``, and those of them whose
        per-view descriptors are kept (of any fit)."""
        with Session(self.engine) as session:
            live = session.exec(text(
                "SELECT COUNT(*) FROM reference_items WHERE deleted_at IS NULL")).one()[0]  # type: ignore[call-overload]
            embedded, with_views = session.exec(text(
                "SELECT COUNT(*), COUNT(e.view_features) FROM reference_embeddings e "
                "JOIN reference_items r ON r.id = e.reference_id "
                "WHERE r.deleted_at IS NULL AND e.model_id = :v"
            ).bindparams(v=model_id)).one()  # type: ignore[call-overload]
        return {"live": int(live), "embedded": int(embedded), "view_features": int(with_views)}


def _pack(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes()


def _unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _pack_views(features: ViewFeatures | None) -> dict[str, Any]:
    """The columns that keep a reference's per-view descriptors (all None: none kept)."""
    if features is None or not features.vectors:
        return {"view_features": None, "feature_views": None, "features_id": None}
    views = list(features.vectors)
    rows = np.stack([np.asarray(features.vectors[v], dtype="<f4").reshape(-1) for v in views])
    return {"view_features": rows.tobytes(), "feature_views": views,
            "features_id": features.features_id}


def _unpack_views(data: bytes | None, views: list[str] | None) -> dict[str, np.ndarray] | None:
    if data is None or not views:
        return None
    rows = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(len(views), -1)
    return dict(zip(views, rows, strict=True))
