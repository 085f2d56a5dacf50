"""The model registry: every model a deployment may serve, and which release is promoted.

A *model* is one ONNX file, identified by its content hash (``contract.model_spec.model_id``).
A *release* is the models registered together by one ``authentiq models register`` — the
flavours of one training run (fp32, int8-cpu, int8-trt: different files, different ids); its id
is the id of its first file. What is promoted is a release: each server serves the release's
flavour of its own backend's precision, so CPU and GPU workers agree on the model while each
runs the file made for it. Promotions are an append-only history (``model_promotions``); the
promoted release is its last entry, read by every worker from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, Column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.errors import ModelNotFound, ModelRefused

Action = Literal["promote", "rollback", "first start"]
MIN_PREFIX = 4  # `models show 3f2a` like git: a unique prefix of at least this many characters


class ModelRow(SQLModel, table=True):
    __tablename__ = "models"
    id: str = Field(primary_key=True, max_length=64)  # contract.model_spec.model_id
    release: str = Field(index=True, max_length=64)  # the id of the release's first model
    name: str = Field(max_length=200)
    version: str = Field(max_length=200)
    precision: str = Field(max_length=32)  # the flavour: fp32 | int8-cpu | int8-trt
    path: str = Field(max_length=2000)  # absolute, as registered
    size_bytes: int
    # "passed" | "failed" | "missing": the model's authentiq.acceptance metadata
    acceptance: str = Field(max_length=16)
    forced: bool = False  # registered with --force despite its acceptance
    summary: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # metadata digest
    registered_at: datetime
    registered_by: str = Field(max_length=200)


class PromotionRow(SQLModel, table=True):
    __tablename__ = "model_promotions"
    seq: int | None = Field(default=None, primary_key=True)  # append-only; the last one rules
    release: str = Field(foreign_key="models.id", max_length=64)
    action: str = Field(max_length=16)  # promote | rollback | first start
    previous_release: str | None = Field(default=None, max_length=64)
    promoted_at: datetime
    promoted_by: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Registration:
    """One file to register, read and checked by ``services.models`` (the store reads no files)."""

    id: str
    name: str
    version: str
    precision: str
    path: str
    size_bytes: int
    acceptance: str
    forced: bool
    summary: dict[str, Any]


class ModelRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, entries: Sequence[Registration], by: str) -> list[ModelRow]:
        """One release of ``entries`` (its id: the first entry's), all or nothing; a model
        registered before is refused, naming it."""
        if not entries:
            raise ModelRefused("nothing to register")
        known = self.find_ids([e.id for e in entries])
        if known:
            raise ModelRefused("already registered: " + ", ".join(
                f"{row.id} ({row.path}, release {row.release})" for row in known))
        now = datetime.now(UTC)
        rows = [ModelRow(id=e.id, release=entries[0].id, name=e.name, version=e.version,
                         precision=e.precision, path=e.path, size_bytes=e.size_bytes,
                         acceptance=e.acceptance, forced=e.forced, summary=e.summary,
                         registered_at=now, registered_by=by) for e in entries]
        try:
            with Session(self.engine) as session:
                session.add_all(rows)
                session.commit()
                for row in rows:
                    session.refresh(row)
        except IntegrityError as exc:  # another process registered one of them meanwhile
            raise ModelRefused("already registered: " + ", ".join(
                row.id for row in self.find_ids([e.id for e in entries]))) from exc
        return rows

    def find_ids(self, ids: Sequence[str]) -> list[ModelRow]:
        with Session(self.engine) as session:
            return list(session.exec(select(ModelRow).where(col(ModelRow.id).in_(list(ids)))))

    def models(self) -> list[ModelRow]:
        """Every registered model, newest release first, a release's flavours in their order."""
        with Session(self.engine) as session:
            return list(session.exec(select(ModelRow).order_by(
                col(ModelRow.registered_at).desc(), col(ModelRow.release), col(ModelRow.precision))))

    def get(self, id_or_prefix: str) -> ModelRow:
        """A model by its id or a unique prefix of it (at least four characters)."""
        wanted = id_or_prefix.strip().lower()
        if len(wanted) < MIN_PREFIX or not all(c in "0123456789abcdef" for c in wanted):
            # hex digits only: a prefix is matched with LIKE, where % and _ are wildcards
            raise ModelNotFound(f"give at least {MIN_PREFIX} hex digits of a model id, not "
                                f"{id_or_prefix!r}")
        with Session(self.engine) as session:
            found = list(session.exec(select(ModelRow).where(
                col(ModelRow.id).startswith(wanted)).limit(2)))
        if not found:
            raise ModelNotFound(f"no registered model with id {id_or_prefix!r}; `authentiq "
                                f"models list` shows them")
        if len(found) > 1:
            raise ModelNotFound(f"{id_or_prefix!r} names several models ({found[0].id}, "
                                f"{found[1].id}, ...); give more of the id")
        return found[0]

    def release(self, release: str) -> list[ModelRow]:
        """The models of one release, in the order they were registered (first: its id)."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(ModelRow).where(ModelRow.release == release)))
        return sorted(rows, key=lambda r: (r.id != release, r.precision))

    def promoted(self) -> PromotionRow | None:
        """The promotion in force (None: nothing was ever promoted)."""
        with Session(self.engine) as session:
            return session.exec(select(PromotionRow).order_by(
                col(PromotionRow.seq).desc()).limit(1)).first()

    def history(self) -> list[PromotionRow]:
        """Every promotion and rollback, oldest first."""
        with Session(self.engine) as session:
            return list(session.exec(select(PromotionRow).order_by(col(PromotionRow.seq))))

    def rollback_target(self) -> str:
        """The release promoted before the one in force (what ``rollback`` returns to)."""
        history = self.history()
        if not history:
            raise ModelRefused("nothing has been promoted, so there is nothing to roll back")
        current = history[-1].release
        before = [p.release for p in history[:-1] if p.release != current]
        if not before:
            raise ModelRefused(f"release {current} is the only one ever promoted: there is no "
                               f"earlier model to roll back to")
        return before[-1]

    def promote(self, release: str, *, action: Action, by: str,
                note: str | None = None) -> PromotionRow:
        """Append a promotion of ``release`` (a registered release id) to the history."""
        if not self.release(release):
            raise ModelNotFound(f"no registered release {release!r}")
        current = self.promoted()
        row = PromotionRow(release=release, action=action,
                           previous_release=current.release if current else None,
                           promoted_at=datetime.now(UTC), promoted_by=by, note=note)
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        return row
