"""The live shadow (``AUTHENTIQ_SHADOW_MODEL``): a candidate scores every inspection off the
answer path, and what it decided is stored beside the report, never returned.

The server offers each stored inspection after its answer is sent (a sync request's background
task, an async job once finished). :meth:`LiveShadow.offer` never waits: it puts the report's id
on a bounded queue, or drops it and counts the drop when the queue is full, so a slow candidate
costs the client nothing. One task scores the queue in order with the candidate's own batcher
and worker thread (lower CPU priority than the server's), at bulk priority. The candidate is
opened by that task — its references embedded first — so start-up does not wait for it; what is
offered meanwhile waits in the queue. References enrolled or deleted later are caught up with
before the next item (at most every ``AUTHENTIQ_REFERENCE_SYNC_S``), so the candidate searches
what the served model searches. Outcomes are counted for ``/metrics``
(``authentiq_shadow_inspections_total{outcome}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from authentiq.errors import AuthentiqError
from authentiq.pipeline.inspection import Upload
from authentiq.pipeline.memory_references import read_files
from authentiq.services.shadow import Candidate, open_candidate, stored_views
from authentiq.settings import Settings
from authentiq.storage.references import ReferenceStore
from authentiq.storage.reports import ReportStore
from authentiq.storage.shadow_results import ShadowResult, ShadowResults

log = logging.getLogger(__name__)
OUTCOMES = ("agree", "disagree", "refused", "failed", "dropped")


class ShadowObserver(Protocol):
    def shadow_outcome(self, outcome: str) -> None: ...


@dataclass(frozen=True)
class Pending:
    report_id: str
    tenant_id: str
    uploads: list[Upload] | None  # None: read the stored photos


class LiveShadow:
    def __init__(self, settings: Settings, *, reports: ReportStore, references: ReferenceStore,
                 results: ShadowResults, observer: ShadowObserver | None = None) -> None:
        path = settings.shadow.shadow_model
        if path is None:
            raise ValueError("LiveShadow needs AUTHENTIQ_SHADOW_MODEL")
        self.path, self.settings = path, settings
        self.reports, self.references, self.results = reports, references, results
        self.observer = observer
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(settings.shadow.shadow_queue)
        self.counts: Counter[str] = Counter()
        self.candidate: Candidate | None = None
        self.stopped = False  # the candidate could not be opened: offers are counted, not queued
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="authentiq-shadow")

    def offer(self, report_id: str, tenant_id: str, uploads: list[Upload] | None = None) -> bool:
        """Queue a stored inspection for the candidate; False (counted) when the queue is full."""
        self.counts["offered"] += 1
        if self.stopped:
            self._count("failed")
            return False
        try:
            self.queue.put_nowait(Pending(report_id, tenant_id, uploads))
        except asyncio.QueueFull:
            self._count("dropped")
            return False
        return True

    async def drain(self) -> None:
        """Wait until everything offered so far is scored (tests, shutdown)."""
        await self.queue.join()

    async def close(self) -> None:
        """Stop at once: what is still queued is not scored (a shadow is a sample)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            # One decoding thread and one ONNX Runtime thread: the shadow takes at most about a
            # core from the served model, whatever the load.
            async with open_candidate(self.path, self.settings, reports=self.reports,
                                      references=self.references, threads=1,
                                      ort_threads=1) as candidate:
                self.candidate = candidate
                log.info("live shadow: candidate %s, %d references embedded", candidate.name,
                         candidate.references)
                looked = time.monotonic()
                while True:
                    pending = await self.queue.get()
                    try:
                        if time.monotonic() - looked >= self.settings.references.reference_sync_s:
                            await self._catch_up(candidate)
                            looked = time.monotonic()
                        self._count(await self._score(candidate, pending))
                    finally:
                        self.queue.task_done()
        except asyncio.CancelledError:
            raise
        except Exception:  # the candidate could not be opened: the service goes on without it
            log.exception("live shadow stopped: the candidate %s could not be used", self.path)
            self.stopped = True
            while not self.queue.empty():
                self.queue.get_nowait()
                self.queue.task_done()
                self._count("failed")

    @staticmethod
    async def _catch_up(candidate: Candidate) -> None:
        """References enrolled or deleted since the last look, before the next item (at most
        every AUTHENTIQ_REFERENCE_SYNC_S): the candidate searches what the served model does."""
        try:
            if changed := await candidate.catch_up():
                log.info("live shadow: %d references enrolled or deleted since; the candidate "
                         "now has %d", changed, candidate.references)
        except Exception:  # a database hiccup: the next item tries again
            log.warning("live shadow: could not catch up with the references", exc_info=True)

    async def _score(self, candidate: Candidate, pending: Pending) -> str:
        try:
            row = await asyncio.to_thread(self.reports.row, pending.report_id,
                                          tenant=pending.tenant_id)
            uploads = pending.uploads
            if uploads is None:
                files = stored_views(row)
                photos = await asyncio.to_thread(read_files, self.reports.blobs, row.id,
                                                 list(files.values()))
                uploads = [Upload(v, data) for v, data in zip(files, photos, strict=True)]
            report = await candidate.score(uploads, brand=row.brand, model=row.model,
                                           client_ref=row.client_ref, report_id=row.id)
            result = ShadowResult(row.id, candidate.id, candidate.spec.version_key, report.verdict,
                                  report.probabilities.counterfeit, report.confidence,
                                  [str(r.code) for r in report.reasons])
            await asyncio.to_thread(self.results.save, result, tenant_id=pending.tenant_id)
        except AuthentiqError as exc:
            log.info("live shadow: the candidate refused report %s: %s", pending.report_id,
                     exc.detail)
            return "refused"
        except Exception:  # never the client's problem; logged and counted
            log.exception("live shadow: report %s could not be scored", pending.report_id)
            return "failed"
        return "agree" if report.verdict == row.verdict else "disagree"

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        if self.observer is not None:
            self.observer.shadow_outcome(outcome)
