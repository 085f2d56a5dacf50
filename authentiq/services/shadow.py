"""Shadow evaluation: a candidate model scores inspections the served model already answered.

:func:`open_candidate` opens the candidate beside the served model — its own ONNX Runtime
session, batcher and worker threads (at a lower CPU priority), an
:class:`~authentiq.pipeline.inspection.Inspector` of its own, and a reference index of the live
references embedded with the candidate in memory (:mod:`authentiq.pipeline.memory_references`):
so its verdicts come from the very pipeline the server runs (decode, quality and gate, stitch,
model, references, fusion, verdict), and nothing it does is stored as a report.

:func:`rescore` re-scores stored inspections from their stored photos (`authentiq models
shadow`); the live shadow (:mod:`authentiq.services.shadow_live`) scores each new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from authentiq.contract.model_spec import ModelSpec, model_id, read_spec
from authentiq.contract.report import ATTENTION_FILE, Report
from authentiq.errors import AuthentiqError, CandidateMismatch, ReportNotFound
from authentiq.inference.batcher import Batcher, Priority
from authentiq.inference.select import open_backend
from authentiq.pipeline.inspection import Inspector, Upload, lower_priority
from authentiq.pipeline.memory_references import MemoryReferences, read_files
from authentiq.pipeline.reference_index import ReferenceIndex
from authentiq.services.shadow_summary import Outcome
from authentiq.settings import Settings
from authentiq.storage.references import ReferenceStore
from authentiq.storage.reports import ReportFilter, ReportRow, ReportStore
from authentiq.storage.tenants import Visible


@dataclass(frozen=True)
class Candidate:
    """A model under evaluation, ready to score items without storing them."""

    path: Path
    id: str  # model_id: a hash of its graph and weights
    spec: ModelSpec
    inspector: Inspector
    memory: MemoryReferences  # the live references as it embedded them

    @property
    def name(self) -> str:
        return f"{self.id} ({self.spec.version_key})"

    @property
    def references(self) -> int:
        """Live references embedded with it."""
        return len(self.memory)

    async def catch_up(self) -> int:
        """Embed references enrolled since the last look, drop deleted ones (how many)."""
        return await self.memory.catch_up(self.inspector)

    async def score(self, uploads: list[Upload], *, brand: str, model: str,
                    client_ref: str | None, report_id: str) -> Report:
        """The candidate's report of one item (bulk priority, never stored)."""
        scored = await self.inspector.score(uploads, brand=brand, model=model,
                                            client_ref=client_ref, priority=Priority.BULK,
                                            report_id=report_id, client="shadow")
        return scored.report


def check_views(candidate: ModelSpec, views: Iterable[str], what: str) -> None:
    """Refuse a candidate that cannot score items photographed for other views: a view of
    ``views`` it does not know, or a view it requires that ``views`` lack."""
    given = set(views)
    unknown = sorted(given - set(candidate.view_names))
    missing = sorted(set(candidate.required_views) - given)
    if unknown or missing:
        said = [f"the candidate has no {', '.join(unknown)} view" if unknown else "",
                f"it requires {', '.join(missing)}, missing from {what}" if missing else ""]
        raise CandidateMismatch(
            f"the candidate's views ({', '.join(candidate.view_names)}) differ from those of "
            f"{what}: " + "; ".join(s for s in said if s))


@asynccontextmanager
async def open_candidate(path: Path, settings: Settings, *, reports: ReportStore,
                         references: ReferenceStore, threads: int = 1,
                         ort_threads: int | None = None,
                         progress: Callable[[int, int], None] | None = None
                         ) -> AsyncIterator[Candidate]:
    """The candidate at ``path`` on ONNX Runtime (the served backend's device), with
    ``threads`` worker threads at a lower CPU priority than the server's and ``ort_threads``
    ONNX Runtime threads (default: AUTHENTIQ_ORT_THREADS)."""
    spec = read_spec(path)  # a missing file or one that is not a model: ModelContractError
    ident = await asyncio.to_thread(model_id, path)
    model = settings.model.model_copy(update={
        "backend": "onnxruntime", "model_path": path,
        "ort_threads": settings.model.ort_threads if ort_threads is None else ort_threads})
    backend = await asyncio.to_thread(open_backend, model, settings.batcher,
                                      timeout_s=settings.inspection.request_timeout_s)
    pool = ThreadPoolExecutor(threads, initializer=lower_priority,
                              thread_name_prefix="authentiq-shadow")
    # Its inference threads too: with one ONNX Runtime thread the model runs on the batcher's
    # own thread, so all of the candidate's work yields to the served model's.
    batcher = Batcher(backend, settings.batcher, thread_initializer=lower_priority)
    inspector: Inspector | None = None
    try:
        await batcher.start()
        memory = MemoryReferences(references, ident)
        index = ReferenceIndex(memory, settings.references, model_id=ident,
                               model_version=spec.version_key, dim=spec.embedding_size,
                               k=spec.fusion.k if spec.fusion else 5, view_check=spec.view_check)
        inspector = Inspector(settings.inspection, settings.quality, spec, backend.info, batcher,
                              reports, pool, index)
        await memory.fill(inspector, progress)
        index.sync(force=True)
        yield Candidate(path, ident, spec, inspector, memory)
    finally:
        await batcher.close()
        pool.shutdown(wait=True)
        if inspector is not None:
            inspector.close()
        backend.close()


def stored_views(row: ReportRow) -> dict[str, str]:
    """A stored report's photos: view → stored file name (not its attention map)."""
    views = {v["view"] for v in row.body.get("views", [])}
    return {name.split(".")[0]: name for name in row.body.get("stored_files", [])
            if name != ATTENTION_FILE and name.split(".")[0] in views}


def report_pages(store: ReportStore, *, since: datetime, tenant: Visible,
                 limit: int | None = None, page_size: int = 200) -> Iterator[list[ReportRow]]:
    """The inspections stored since ``since`` that ``tenant`` may see, newest first, a page at
    a time (only one page's bodies in memory); at most ``limit``."""
    seen, cursor = 0, None
    while limit is None or seen < limit:
        size = page_size if limit is None else min(page_size, limit - seen)
        page, cursor = store.find(ReportFilter(created_from=since), tenant=tenant, limit=size,
                                  cursor=cursor)
        if page:
            yield page
        seen += len(page)
        if cursor is None:
            break


def count_reports(store: ReportStore, *, since: datetime, tenant: Visible,
                  limit: int | None = None) -> int:
    """How many :func:`report_pages` gives."""
    n = store.count(ReportFilter(created_from=since), tenant=tenant)
    return n if limit is None else min(n, limit)


def outcome(row: ReportRow, verdict: str | None, p_counterfeit: float | None = None,
            error: str | None = None) -> Outcome:
    """The candidate's ``verdict`` on the stored inspection ``row`` (None: refused, ``error``)."""
    reviewed = row.final_verdict if row.review_status != "unreviewed" else None
    return Outcome(row.id, row.brand, row.model, row.verdict, verdict, reviewed, p_counterfeit,
                   error)


async def rescore(candidate: Candidate, store: ReportStore, pages: Iterable[list[ReportRow]],
                  total: int, progress: Callable[[int, int], None] | None = None, *,
                  concurrency: int = 4) -> list[Outcome]:
    """Each stored inspection re-scored by ``candidate`` from its stored photos, ``concurrency``
    at a time (so the candidate's batcher can batch them), in the pages' order. The first
    page's views must fit the candidate (else :class:`CandidateMismatch`, before any scoring);
    an item it cannot score (another view, an unknown product, a photo it cannot use, photos no
    longer stored) is an outcome with the reason: counted apart, never a failure of the run."""
    outcomes: list[Outcome] = []
    slots = asyncio.Semaphore(concurrency)
    done = 0

    async def one(row: ReportRow) -> Outcome:
        nonlocal done
        async with slots:
            result = await rescore_one(candidate, store, row)
        done += 1
        if progress:
            progress(done, total)
        return result

    pages = iter(pages)
    while (page := await asyncio.to_thread(next, pages, None)) is not None:
        if not outcomes:
            check_views(candidate.spec, {v for row in page for v in stored_views(row)},
                        "the stored inspections")
        outcomes += await asyncio.gather(*(one(row) for row in page))
    return outcomes


async def rescore_one(candidate: Candidate, store: ReportStore, row: ReportRow) -> Outcome:
    files = stored_views(row)
    try:
        check_views(candidate.spec, files, "this inspection")
    except CandidateMismatch:
        return outcome(row, None, error="other views")
    try:
        photos = await asyncio.to_thread(read_files, store.blobs, row.id, list(files.values()))
    except ReportNotFound:
        return outcome(row, None, error="photos no longer stored")
    uploads = [Upload(view, data) for view, data in zip(files, photos, strict=True)]
    try:
        report = await candidate.score(uploads, brand=row.brand, model=row.model,
                                       client_ref=row.client_ref, report_id=row.id)
    except AuthentiqError as exc:
        return outcome(row, None, error=exc.title)
    return outcome(row, report.verdict, report.probabilities.counterfeit)
