"""Report PDFs rendered once, off the API's threads, a few at a time.

Rendering a PDF costs ~0.1–1 s of matplotlib (which holds the GIL much of that time). Before this
module every ``GET /v1/reports/{id}.pdf`` rendered again, on the thread pool that also checks API
keys and reads reports, so one key looping on PDFs slowed every other client and ``/readyz``.

- **Cached in the blob store**, beside the reports (``pdf/<report id>/v<version>.l<layout>.pdf``): the
  report's review version is in the name, so a cached file is never served for a later version,
  in any worker; a review removes the report's cached files (:meth:`PdfCache.invalidate`).
- **Rendered on a dedicated executor** of ``AUTHENTIQ_PDF_WORKERS`` threads (default 1), not on
  the event loop's default pool.
- **Concurrency-limited**: concurrent requests for the same version share one render; at most
  ``AUTHENTIQ_PDF_QUEUE`` distinct renders wait or run, past that 503 ``pdf-busy`` with
  ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from authentiq.contract.report import Heatmaps
from authentiq.errors import PdfBusy, ReportNotFound
from authentiq.settings import PdfSettings
from authentiq.storage.blobs import Blobs
from authentiq.storage.reports import ReportFiles
from authentiq.web.heatmap_images import HeatmapImages
from authentiq.web.report_pdf import ReferencePhoto, render_pdf

log = logging.getLogger(__name__)


class PdfCache:
    def __init__(self, cache: Blobs, report_blobs: Blobs, config: PdfSettings,
                 heatmaps: HeatmapImages, *, reference_photo: ReferencePhoto | None = None) -> None:
        self.cache, self.report_blobs, self.heatmaps = cache, report_blobs, heatmaps
        self.reference_photo = reference_photo  # the compared references' photos page, if set
        self.max_pending = config.pdf_queue
        self._executor = ThreadPoolExecutor(config.pdf_workers, thread_name_prefix="authentiq-pdf")
        self._pending: dict[tuple[str, int], asyncio.Future[bytes]] = {}
        self.renders = 0  # how many PDFs this process rendered (the rest came from the cache)

    async def get(self, report: dict[str, Any]) -> bytes:
        """The PDF of ``report`` (a stored report with its ``review`` state)."""
        key = (report["id"], int(report["review"]["version"]))
        try:
            return await asyncio.to_thread(self.cache.get, key[0], _name(key[1]))
        except ReportNotFound:
            pass
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise PdfBusy(f"{len(self._pending)} PDFs are being rendered; retry shortly",
                              retry_after=2)
            pending = asyncio.ensure_future(self._render(key, report))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)  # one caller leaving does not cancel the others'

    def invalidate(self, report_id: str) -> None:
        """Forget every cached version of a report (after a review changed it)."""
        self.cache.delete(report_id)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> PdfCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _render(self, key: tuple[str, int], report: dict[str, Any]) -> bytes:
        loop = asyncio.get_running_loop()
        pdf = await loop.run_in_executor(self._executor, self._pdf, report)
        self.renders += 1
        await asyncio.to_thread(self._store, key, pdf)
        return pdf

    def _pdf(self, report: dict[str, Any]) -> bytes:
        files = ReportFiles(report["id"], report["stored_files"],
                            Heatmaps.model_validate(report["heatmaps"]))
        return render_pdf(report, self.report_blobs, self.reference_photo,
                          heatmaps=self.heatmaps.all(files))

    def _store(self, key: tuple[str, int], pdf: bytes) -> None:
        report_id, version = key
        try:
            self.cache.put_many(report_id, {_name(version): pdf})
        except FileExistsError:
            # Another version's file (a render that raced a review, or another worker's): a
            # cached file is named after its version, so replacing the folder loses nothing.
            self.cache.delete(report_id)
            try:
                self.cache.put_many(report_id, {_name(version): pdf})
            except FileExistsError:
                log.info("PDF of report %s v%d cached meanwhile by another worker", *key)


LAYOUT = 3  # bumped when the PDF's pages change: files cached for an older layout are not served


def _name(version: int) -> str:
    return f"v{version}.l{LAYOUT}.pdf"
