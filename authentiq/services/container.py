"""Everything a running AuthentiQ owns, opened and closed in one place.

``open_services(settings)`` is used by the app's lifespan and by the CLI commands that need the
model and the database without HTTP (``enroll``, ``re-embed``): backend, batcher, worker pool,
the stores on one database engine (``storage.db``), the reference index, the inspector, the
enroller, the job runner and the webhook dispatcher. Closing drains the batcher first, so every
accepted request finishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from authentiq.contract.model_spec import ModelSpec, read_spec
from authentiq.contract.report import Report
from authentiq.errors import AuthentiqError
from authentiq.inference.backends.base import Backend
from authentiq.inference.batcher import Batcher, BatchObserver
from authentiq.inference.select import open_backend
from authentiq.pipeline.admission import InFlight
from authentiq.pipeline.enrolment import Enroller, enrol_folder, folder_references
from authentiq.pipeline.heatmap import lookup_table
from authentiq.pipeline.inspection import Inspector
from authentiq.pipeline.reference_index import ReferenceIndex
from authentiq.services.dispatcher import Dispatcher
from authentiq.services.job_runner import JobRunner
from authentiq.services.models import ModelWatch, first_start, served_settings
from authentiq.services.ratelimit import RateLimiter
from authentiq.services.shadow import check_views
from authentiq.services.shadow_live import LiveShadow
from authentiq.settings import ModelSettings, Settings
from authentiq.storage.blobs import Blobs, open_blobs
from authentiq.storage.db import open_database
from authentiq.storage.idempotency import Idempotency
from authentiq.storage.jobs import EventBody, JobRow, JobStore
from authentiq.storage.keys import KeyRing, server_secret
from authentiq.storage.models import ModelRegistry
from authentiq.storage.references import ReferenceRow, ReferenceStore
from authentiq.storage.reports import ReportRow, ReportStore
from authentiq.storage.reviews import Reviews
from authentiq.storage.sessions import Sessions
from authentiq.storage.shadow_results import ShadowResults
from authentiq.storage.share_links import ShareLinks
from authentiq.storage.webhooks import Deliveries

log = logging.getLogger(__name__)
R = TypeVar("R")
SHIPPED_SOURCE = "shipped synthetic reference set"


@dataclass
class Services:
    settings: Settings
    backend: Backend
    batcher: Batcher
    store: ReportStore
    references: ReferenceStore
    index: ReferenceIndex
    inspector: Inspector
    enroller: Enroller
    idempotency: Idempotency
    keys: KeyRing
    session_secret: bytes
    rate_limiter: RateLimiter
    jobs: JobStore
    runner: JobRunner
    dispatcher: Dispatcher
    in_flight: InFlight
    share_links: ShareLinks
    reviews: Reviews
    deliveries: Deliveries
    sessions: Sessions
    models: ModelWatch
    shadow: LiveShadow | None = None  # AUTHENTIQ_SHADOW_MODEL: a candidate beside the served model
    background: bool = True  # the watch and webhooks run (the server), not only jobs
    users: Users = field(default_factory=lambda: Users())  # requests holding these services
    retired: bool = field(default=False, init=False)

    async def start(self) -> None:
        """Start the background work: the model watch, job claiming, webhooks, the live shadow."""
        if self.background:
            await self.models.start()
        await self.runner.start()
        if self.background:
            await self.dispatcher.start()
        if self.shadow is not None:
            self.shadow.start()

    async def retire(self) -> None:
        """Stop the background work: the model watch, job claiming (running jobs finish; queued
        ones wait in the database), webhooks, the live shadow. Twice is once; a step that fails
        does not keep the others from running."""
        if self.retired:
            return
        self.retired = True
        self.models.on_promotion = None  # a retired set switches nothing
        try:
            await self.models.close()
        finally:
            try:
                await self.runner.close()
            finally:
                try:
                    await self.dispatcher.close()
                finally:
                    if self.shadow is not None:
                        await self.shadow.close()


class Users:
    """How many requests hold a :class:`Services` (``authentiq.api.deps``), so that a switch to
    another model closes the old one only once they are done."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def idle(self, timeout_s: float) -> bool:
        """Whether every request let go within ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class ServiceObserver(BatchObserver, Protocol):
    """What the service reports beyond the batcher (Prometheus in the app)."""

    def job_finished(self, status: str) -> None: ...
    def webhook_attempt(self, outcome: str) -> None: ...
    def shadow_outcome(self, outcome: str) -> None: ...
    def report_made(self, report: Report, product: str | None) -> None: ...


def no_events(job: JobRow, report: Report | None) -> dict[str, Any]:
    """The CLI's services finish no jobs (``background=False``), so make no webhook bodies."""
    raise RuntimeError(f"job {job.id} finished in a process opened without event bodies")


@asynccontextmanager
async def open_services(settings: Settings, observer: ServiceObserver | None = None,
                        *, seed: bool = True, background: bool = True, registry: bool = False,
                        event_body: EventBody = no_events,
                        switching: Services | None = None) -> AsyncIterator[Services]:
    """``background``: run async jobs and send webhooks (the server); the CLI's one-off commands
    leave both to the server. ``registry``: serve the promoted model (the server; the CLI runs
    the model it is given). Each part receives its section of ``settings``;
    ``event_body``: a finished job's webhook data (the API's). ``switching``: the services a serving
    worker opens the promoted model beside (:mod:`authentiq.services.switch`): the blocking
    steps run off the event loop, start-up's one-off work (migrations, seeding, the orphan
    sweep, the first start) is left out, the background work waits for :meth:`Services.start`,
    and the per-client counts (rate limits, uploads in flight) carry over."""
    inspection, access, storage = settings.inspection, settings.access, settings.storage
    switch = switching is not None

    async def blocking(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await asyncio.to_thread(fn, *args, **kwargs) if switch else fn(*args, **kwargs)

    engine = await blocking(open_database, storage.database_url,
                            migrate=storage.migrate and not switch)
    try:
        models = ModelRegistry(engine)
        served = await blocking(served_settings, settings.model, models) if registry \
            else settings.model
        backend = await blocking(open_backend, served, settings.batcher,
                                 timeout_s=inspection.request_timeout_s)
    except BaseException:
        engine.dispose()
        raise
    spec, info = backend.spec, backend.info
    blobs = open_blobs(storage)
    store = ReportStore(engine, blobs)
    pool = ThreadPoolExecutor(inspection.preprocess_workers, thread_name_prefix="authentiq-cpu")
    batcher = Batcher(backend, settings.batcher, observer=observer)
    services: Services | None = None
    try:
        lookup_table()  # imports matplotlib's colormaps now, not in the first request
        references = ReferenceStore(engine, blobs.child("references"))
        await blocking(references.ensure_products, spec.products)
        if registry and not switch and info.name != "triton" and models.promoted() is None:
            first_start(models, references, served_file(served, info.name), spec.version_key)
        watch = ModelWatch(models if registry else None, info.model_id,
                           settings.references.reference_sync_s)
        await blocking(watch.refresh)
        index = ReferenceIndex(references, settings.references, model_id=info.model_id,
                               model_version=spec.version_key, dim=spec.embedding_size,
                               k=spec.fusion.k if spec.fusion else 5, view_check=spec.view_check)
        await blocking(index.sync, force=True)
        await batcher.start()
        inspector = Inspector(inspection, settings.quality, spec, info, batcher, store, pool,
                              index, on_report=observer.report_made if observer else None,
                              guard=watch.check)
        enroller = Enroller(inspector, references, index)
        keys = KeyRing(engine, access.auth)
        jobs = JobStore(engine, blobs.child("jobs"), event_body)
        dispatcher = Dispatcher(engine, settings.jobs,
                                on_outcome=observer.webhook_attempt if observer else None)

        shadow = live_shadow(settings, spec, store, references, engine, observer)

        def job_finished(job: JobRow) -> None:
            dispatcher.wake()  # its webhook, if any, goes out now rather than at the next poll
            if observer is not None:
                observer.job_finished(job.status)
            if shadow is not None and job.status == "succeeded":  # its report: the job's id
                shadow.offer(job.id, job.tenant_id)

        runner = JobRunner(jobs, inspector, store, settings.jobs if background else
                           settings.jobs.model_copy(update={"job_workers": 0}), on_finish=job_finished)
        services = Services(settings, backend, batcher, store, references, index, inspector, enroller,
                            Idempotency(engine, stale_s=inspection.request_timeout_s + 60),
                            keys, server_secret(engine),
                            switching.rate_limiter if switching is not None else
                            RateLimiter(access.rate_limit, access.rate_limit_storage),
                            jobs, runner, dispatcher,
                            switching.in_flight if switching is not None else
                            InFlight(settings.uploads.max_in_flight_per_client),
                            ShareLinks(engine, server_secret(engine, "share"),
                                       timedelta(days=access.share_link_days)),
                            Reviews(engine), Deliveries(engine), Sessions(engine), watch,
                            shadow, background)
        if not switch and not keys.enforced and access.auth != "off":
            log.warning("no API key exists yet: the API is open to anyone who can reach it "
                        "(AUTHENTIQ_AUTH=auto). Create one with `authentiq keys create NAME "
                        "--scopes submit,review,admin`; from then on every call needs a key.")
        if seed and not switch and settings.references.reference_seed_dir is not None:
            await seed_references(services)
        swept = [] if switch else sweep_orphans(
            engine, [(store.blobs, ReportRow), (references.blobs, ReferenceRow),
                     (jobs.blobs, JobRow)], storage.orphan_grace_s)
        if swept:
            log.warning("removed %d blob folders with no row (a crash between the files and the "
                        "database write): %s", len(swept), ", ".join(swept[:10]))
        stale = len(await blocking(references.missing_embeddings, info.model_id))
        if stale:
            log.warning("%d references have no embedding from model %s (%s) and are not "
                        "searched; run `authentiq re-embed`", stale, info.model_id,
                        spec.version_key)
        if spec.view_check is not None:
            unfilled = len(await blocking(references.missing_embeddings, info.model_id,
                                          features_id=spec.view_check.features_id)) - stale
            if unfilled:
                log.warning("%d references have no per-view descriptors of %s's check: it is "
                            "skipped for their products until `authentiq re-embed` adds them",
                            unfilled, spec.version_key)
        log.info("reference index: %d references of %d products (model %s, %s)", index.size,
                 len(await blocking(references.products)), info.model_id, spec.version_key)
        if not switch:
            await services.start()
        yield services
    finally:
        if services is not None:
            await services.retire()
        await batcher.close()  # finishes every accepted request first
        pool.shutdown(wait=True)
        if services is not None:
            services.inspector.close()
        backend.close()
        engine.dispose()


def live_shadow(settings: Settings, served: ModelSpec, store: ReportStore,
                references: ReferenceStore, engine: Engine,
                observer: ServiceObserver | None) -> LiveShadow | None:
    """The live shadow when AUTHENTIQ_SHADOW_MODEL is set. The candidate's contract and views
    are checked now, so a wrong file stops start-up naming the variable; the candidate itself is
    opened by the shadow's own task (start-up does not wait for its references' embedding)."""
    path = settings.shadow.shadow_model
    if path is None:
        return None
    try:
        check_views(read_spec(path), served.view_names, "the served model")
    except AuthentiqError as exc:
        raise type(exc)(f"AUTHENTIQ_SHADOW_MODEL: {exc.detail}") from None
    return LiveShadow(settings, reports=store, references=references,
                      results=ShadowResults(engine), observer=observer)


def served_file(model: ModelSettings, backend: str) -> Path:
    """The ONNX file the opened backend runs (TensorRT builds its plan from its own file)."""
    return model.tensorrt_model_path if backend.startswith("tensorrt") else model.model_path


def sweep_orphans(engine: Engine, stores: list[tuple[Blobs, type[SQLModel]]],
                  grace_s: float) -> list[str]:
    """Blob folders whose row (report, reference, job) never got written: the process died
    between the files and the transaction. Only folders older than ``grace_s`` go, so another
    worker's write in progress is left alone."""
    cutoff = time.time() - grace_s
    removed: list[str] = []
    for blobs, row_type in stores:
        old = [folder for folder, mtime in blobs.folders() if mtime <= cutoff]
        for start in range(0, len(old), 500):  # one query per 500 folders, not one per folder
            batch = old[start:start + 500]
            id_column = col(row_type.id)  # type: ignore[attr-defined]
            with Session(engine) as session:
                known = set(session.exec(select(id_column).where(id_column.in_(batch))))
            for folder in batch:
                if folder not in known:
                    blobs.delete(folder)
                    removed.append(folder)
    return removed


async def seed_references(services: Services) -> None:
    """Enrol the shipped reference set once; items ever enrolled (deleted ones too) are skipped."""
    folder = services.settings.references.reference_seed_dir
    if folder is None:
        return
    if not folder.is_dir():
        log.warning("AUTHENTIQ_REFERENCE_SEED_DIR %s is not a folder; no references seeded", folder)
        return
    summary = await enrol_folder(services.enroller, folder_references(folder), source=SHIPPED_SOURCE)
    if summary.enrolled or summary.failed:
        log.info("shipped references: %d enrolled, %d already there, %d failed %s",
                 summary.enrolled, summary.skipped, len(summary.failed), summary.failed or "")
