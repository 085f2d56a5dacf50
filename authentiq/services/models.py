"""The model registry at work: reading a model file into a registration (its id, flavour and
acceptance), the file a server serves (the promoted release's flavour for its backend), the
first start on a database where nothing is promoted yet, and a running worker noticing a
promotion (``ModelWatch``). The store is :mod:`authentiq.storage.models`; the commands are
``authentiq models ...`` (:mod:`authentiq.cli.models`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from authentiq.contract.model_spec import PREFIX, model_id, read_spec
from authentiq.errors import ModelContractError, ModelNotPromoted, ModelRefused
from authentiq.settings import ModelSettings
from authentiq.storage.models import ModelRegistry, ModelRow, Registration
from authentiq.storage.references import ReferenceStore

log = logging.getLogger(__name__)
MIN_POLL_S = 0.5  # the watch's shortest interval between two reads of the promoted release
RETRY_FIRST_S = 5.0  # a failed switch is tried again after this, then after twice as long ...
RETRY_MAX_S = 300.0  # ... up to this
ACCEPTANCE_KEY = PREFIX + "acceptance"  # written by `authentiq train`'s acceptance gate
FIRST_START = "server (first start: AUTHENTIQ_MODEL_PATH, nothing promoted yet)"
# A release without the configured file's flavour: what each backend's file falls back to
FALLBACK = {"model_path": ("int8-cpu", "fp32", "int8-trt"),
            "tensorrt_model_path": ("int8-trt", "fp32", "int8-cpu")}


@dataclass(frozen=True)
class Acceptance:
    state: Literal["passed", "failed", "missing"]
    failed: tuple[str, ...] = ()  # the thresholds that failed, in words
    forced: bool = False  # train --force exported it despite them
    record: dict[str, Any] | None = None  # the metadata as written


def read_acceptance(props: dict[str, str]) -> Acceptance:
    """The model's ``authentiq.acceptance`` metadata (``{"passed": bool, "forced": bool,
    "thresholds": {...}, "figures": {...}, "failed": [...]}``); an unreadable value counts as
    missing."""
    raw = props.get(ACCEPTANCE_KEY)
    if raw is None:
        return Acceptance("missing")
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        return Acceptance("missing")
    if not isinstance(record, dict) or not isinstance(record.get("passed"), bool):
        return Acceptance("missing")
    failed = tuple(_threshold(f) for f in record.get("failed") or [])
    return Acceptance("passed" if record["passed"] else "failed", failed,
                      bool(record.get("forced")), record)


def _threshold(item: Any) -> str:
    """One failed threshold in words, whatever shape the gate wrote it in."""
    if not isinstance(item, dict):
        return str(item)
    name = item.get("name") or item.get("threshold") or item.get("metric") or "threshold"
    rest = ", ".join(f"{k} {v}" for k, v in item.items() if k not in ("name", "threshold", "metric"))
    return f"{name} ({rest})" if rest else str(name)


def describe(path: Path, *, force: bool = False) -> Registration:
    """What the registry keeps of the model file at ``path``; refused (without ``force``) when
    its acceptance failed or is missing, naming the failed thresholds."""
    path = path.expanduser().resolve()
    spec = read_spec(path)  # the contract first: a broken file is refused, naming what it lacks
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    acceptance = read_acceptance(props)
    if acceptance.state != "passed" and not force:
        if acceptance.state == "missing":
            raise ModelRefused(
                f"{path}: the model carries no acceptance record ({ACCEPTANCE_KEY}: `authentiq "
                f"train` writes it after scoring the held-out test split), so nothing says it "
                f"is good enough to serve; register it with --force to take it anyway")
        raise ModelRefused(
            f"{path}: the model failed its acceptance gate: "
            f"{'; '.join(acceptance.failed) or 'no threshold named'}; register it with --force "
            f"to take it anyway")
    summary = {
        "views": list(spec.view_names), "grid": list(spec.grid), "tile_size": spec.tile_size,
        "embedding_size": spec.embedding_size, "products": [list(p) for p in spec.products],
        "fusion": spec.fusion is not None, "gate": spec.gate is not None,
        "view_check": spec.view_check.features_id if spec.view_check else None,
        "calibration": spec.calibration.temperature if spec.calibration else None,
        "data_card": spec.data_card[:500], "acceptance": acceptance.record,
    }
    return Registration(id=model_id(path), name=spec.model_name, version=spec.model_version,
                        precision=spec.precision, path=str(path), size_bytes=path.stat().st_size,
                        acceptance=acceptance.state, forced=acceptance.state != "passed",
                        summary=summary)


def register(registry: ModelRegistry, paths: list[Path], *, force: bool, by: str
             ) -> list[ModelRow]:
    """Register ``paths`` as one release (the flavours of one model: one name and version)."""
    entries = [describe(p, force=force) for p in paths]
    names = {f"{e.name}@{e.version}" for e in entries}
    if len(names) > 1:
        raise ModelRefused(f"one release is one model's flavours, but these files name "
                           f"{', '.join(sorted(names))}; register them one by one")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise ModelRefused("the same model file was given twice")
    return registry.register(entries, by)


def cli_identity() -> str:
    """Who ran a command, as the operating system says (the CLI has no API key)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container), no login
        user = "unknown user"
    return f"{user}@{socket.gethostname()} (cli)"


def flavour_for(release: list[ModelRow], configured: Path, fallback: tuple[str, ...]
                ) -> ModelRow | None:
    """The release's file for a backend configured with ``configured``: the one of the same
    flavour (precision) as that file, else the first of ``fallback``'s flavours it has; only
    files present on this host."""
    try:
        wanted: tuple[str, ...] = (read_spec(configured).precision, *fallback)
    except ModelContractError:
        wanted = fallback
    present = [row for row in release if Path(row.path).is_file()]
    for precision in wanted:
        for row in present:
            if row.precision == precision:
                return row
    return None


def served_settings(model: ModelSettings, registry: ModelRegistry) -> ModelSettings:
    """``model`` with its files replaced by the promoted release's (for each, the configured
    file's flavour, else the nearest the release has); unchanged when nothing is promoted."""
    promoted = registry.promoted()
    if promoted is None or model.backend == "triton":
        return model
    release = registry.release(promoted.release)
    update: dict[str, Path] = {}
    for field, fallback in FALLBACK.items():
        row = flavour_for(release, getattr(model, field), fallback)
        if row is not None:
            update[field] = Path(row.path)
    chosen = update.get("model_path")
    if chosen is not None and model.model_path.is_file() \
            and model_id(model.model_path) not in {r.id for r in release}:
        log.warning("AUTHENTIQ_MODEL_PATH names %s, which is not in the promoted release %s: "
                    "serving that release's %s instead. To serve it: `authentiq models register "
                    "%s` and `authentiq models promote ID`", model.model_path, promoted.release,
                    chosen, model.model_path)
    if "model_path" not in update:
        log.error("no file of the promoted release %s is on this host (%s); the configured %s "
                  "will be refused", promoted.release,
                  ", ".join(f"{r.precision}: {r.path}" for r in release), model.model_path)
    return model.model_copy(update=update)


def first_start(registry: ModelRegistry, references: ReferenceStore, path: Path,
                version_key: str) -> str | None:
    """Nothing promoted yet (a new database, or the first start after revision 0007): register
    and promote the model this server serves (``path``), recorded as such, and adopt the
    reference embeddings of its ``name@version`` made before model ids. The release id, or
    None when another worker did it first."""
    try:
        [row] = registry.register([describe(path, force=True)], FIRST_START)
    except ModelRefused:  # registered already (by another worker starting at once, or earlier)
        row = registry.get(model_id(path))
    if registry.promoted() is not None:
        return None
    registry.promote(row.release, action="first start", by=FIRST_START,
                     note=f"AUTHENTIQ_MODEL_PATH={path}")
    adopted = references.adopt(version_key, row.id)
    log.warning("model registry: nothing was promoted, so the served model %s (%s, %s) was "
                "registered and promoted%s", row.id, version_key, path,
                f"; {adopted} reference embeddings of {version_key} are now its" if adopted else "")
    return row.release


class ModelWatch:
    """Whether this worker still serves the promoted release: read at start, then every
    ``interval_s`` in the background. When another release is promoted, a worker that can
    switch (``on_promotion`` set: the server's :class:`authentiq.services.switch.ServedModel`)
    is told, and serves on until it has switched; otherwise — or when the switch fails, e.g. no
    file of that release on this host yet — it refuses inspections (503 ``model-not-promoted``).
    A failed switch is tried again: as soon as a file of the release appears on this host (a
    file copied there later is served without a restart), or, where a file was there and did not
    load, after ``RETRY_FIRST_S`` and then at doubling intervals up to ``RETRY_MAX_S``. A worker
    that cannot switch loads the promoted model when restarted.

    :meth:`refresh` runs on a worker thread, the rest on the event loop: the state they share
    changes under one lock."""

    def __init__(self, registry: ModelRegistry | None, served_id: str, interval_s: float) -> None:
        self.registry, self.served_id, self.interval_s = registry, served_id, interval_s
        self.promoted_release: str | None = None
        self.promoted_ids: frozenset[str] = frozenset()
        self.refusal: str | None = None
        self.pending: str | None = None  # why this worker must switch, while it switches
        self.on_promotion: Callable[[], None] | None = None
        self._paths: list[Path] = []  # the promoted release's files
        self._retry_s = RETRY_FIRST_S
        self._retry_at: float | None = None  # when to try a failed switch again, if it can be
        self._had_file = True  # whether a file of the release was here at the last look
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    def refresh(self) -> None:
        if self.registry is None:
            return
        promoted = self.registry.promoted()
        if promoted is None:
            with self._lock:
                self.refusal = self.pending = self._retry_at = None
            return
        if promoted.release != self.promoted_release:
            rows = self.registry.release(promoted.release)
            ids = frozenset(r.id for r in rows)
            stale = None if self.served_id in ids else (
                f"this worker serves model {self.served_id}, but release {promoted.release} is "
                f"promoted ({promoted.action} by {promoted.promoted_by}); "
                + ("it switches once a file of that release on this host loads (tried again "
                   "automatically), or when restarted" if self.on_promotion is not None else
                   "restart it to serve the promoted model"))
            with self._lock:
                self.promoted_release, self.promoted_ids = promoted.release, ids
                self._paths = [Path(r.path) for r in rows]
                self._retry_s, self._retry_at = RETRY_FIRST_S, None
                if self.on_promotion is not None:  # serve on while switching; refuse if it fails
                    self.pending, self.refusal = stale, None
                    return
                news = stale if stale and stale != self.refusal else None
                self.refusal = stale
            if news:
                log.error("%s", news)
            return
        with self._lock:
            due, paths = self._retry_at is not None and self.refusal is not None, self._paths
        if due:
            here = any(path.is_file() for path in paths)  # a stat each poll while refusing
            with self._lock:
                if self._retry_at is not None and here and (
                        not self._had_file or time.monotonic() >= self._retry_at):
                    self.pending, self._retry_at = self.refusal, None  # try again, refusing
                self._had_file = here

    def poke(self) -> None:
        """After :meth:`refresh`, on the event loop: ask for the switch a promotion calls for."""
        with self._lock:
            ask = self.on_promotion if self.pending is not None else None
        if ask is not None:
            ask()

    def refuse(self) -> None:
        """The switch failed: refuse inspections, and try the switch again later."""
        with self._lock:
            why = self.pending
            if why is None:
                return
            self.refusal, self.pending = why, None
            wait = self._retry_s
            self._retry_at = time.monotonic() + wait
            self._retry_s = min(2 * wait, RETRY_MAX_S)
            self._had_file = True  # until the next look says otherwise
        log.error("%s; trying again as soon as a file of that release is on this host, or in "
                  "%.0f s if one is and did not load", why, wait)

    def check(self) -> None:
        """Raise ``ModelNotPromoted`` while this worker's model is not the promoted one."""
        if self.refusal is not None:
            raise ModelNotPromoted(self.refusal, retry_after=max(1, round(self.interval_s)),
                                   served_model_id=self.served_id,
                                   promoted_release=self.promoted_release)

    async def start(self) -> None:
        if self.registry is not None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._poll(self._stop), name="authentiq-model-watch")

    async def _poll(self, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # AUTHENTIQ_REFERENCE_SYNC_S=0: no busy loop
                await asyncio.wait_for(stop.wait(), max(self.interval_s, MIN_POLL_S))
                return
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a database hiccup: keep the last state, try again next time
                log.warning("model registry: could not read the promoted model", exc_info=True)
            else:
                self.poke()

    async def close(self) -> None:
        """Stop polling; a read in progress finishes first (the database closes after)."""
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task
