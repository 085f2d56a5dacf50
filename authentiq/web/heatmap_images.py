"""Heatmap images drawn the first time they are asked for, then kept in the blob store.

An inspection stores the model's attention map (``attention.npz``, a few KB) beside the photos
instead of drawing images nobody may look at: drawing was the largest share of the answer path
(issue 20's profile: 42% of the busy samples at saturation). The first request for any of a
report's heatmaps draws all of them at once — each photo is decoded once (as the inspection
decoded it), every class and view blended and encoded — on a small executor of its own, and
stores them together in the cache (``heatmaps/<report id>/``, one folder per report, written all
or nothing). Concurrent requests for one report share that draw; a page that shows a dozen
heatmaps costs one draw, a client that never asks costs nothing. Reports stored by releases that
drew at inspection keep their images in the report's own folder and are served from there.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from authentiq.contract.report import ATTENTION_FILE, heatmap_file, photo_of
from authentiq.errors import ReportNotFound
from authentiq.pipeline.heatmap import Attention, render
from authentiq.pipeline.preprocess import decode_view
from authentiq.storage.blobs import Blobs
from authentiq.storage.reports import ReportFiles

log = logging.getLogger(__name__)

UNLIMITED = 2**62  # the photos were accepted within the limits of their day: draw them as they are


class HeatmapImages:
    def __init__(self, cache: Blobs, report_blobs: Blobs, *, workers: int = 2) -> None:
        self.cache, self.report_blobs = cache, report_blobs
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="authentiq-heatmaps")
        self._pending: dict[str, asyncio.Future[dict[str, bytes]]] = {}
        self.draws = 0  # reports whose heatmaps this process drew (the rest came from the cache)

    async def get(self, files: ReportFiles, cls: str, view: str) -> bytes:
        """One heatmap image (WebP) of the report; 404 for a class or view it does not have."""
        name = _offered(files, cls, view)
        if ATTENTION_FILE not in files.stored:  # drawn at inspection by an earlier release
            return await asyncio.to_thread(self.report_blobs.get, files.report_id, name)
        try:
            return await asyncio.to_thread(self.cache.get, files.report_id, name)
        except ReportNotFound:
            pass
        pending = self._pending.get(files.report_id)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(loop.run_in_executor(self._executor, self.all, files))
            self._pending[files.report_id] = pending
            pending.add_done_callback(lambda _: self._pending.pop(files.report_id, None))
        images = await asyncio.shield(pending)  # one caller leaving does not cancel the others'
        return images[name]

    def all(self, files: ReportFiles) -> dict[str, bytes]:
        """Every heatmap image of the report, from the cache or drawn now (blocking)."""
        names = files.heatmaps.files()
        if ATTENTION_FILE not in files.stored:
            return {n: self.report_blobs.get(files.report_id, n) for n in names if n in files.stored}
        try:
            return {n: self.cache.get(files.report_id, n) for n in names}
        except ReportNotFound:
            pass
        images = self.draw(files)
        try:
            self.cache.put_many(files.report_id, images)
        except FileExistsError:  # another worker drew them meanwhile: the same pixels
            log.debug("heatmaps of report %s cached meanwhile by another worker", files.report_id)
        return images

    def draw(self, files: ReportFiles) -> dict[str, bytes]:
        attention = Attention.from_bytes(self.report_blobs.get(files.report_id, ATTENTION_FILE))
        displays = {}
        for view in files.heatmaps.views:
            photo = photo_of(files.stored, view)
            if photo is None:  # "overview", or a view without a photo
                continue
            displays[view] = decode_view(self.report_blobs.get(files.report_id, photo),
                                         tile_size=attention.tile_size, max_pixels=UNLIMITED,
                                         view=view).display
        self.draws += 1
        return render(attention, displays, list(files.heatmaps.classes))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _offered(files: ReportFiles, cls: str, view: str) -> str:
    if cls not in files.heatmaps.classes or view not in files.heatmaps.views:
        raise ReportNotFound(f"report {files.report_id} has no {cls} heatmap of {view!r}")
    return heatmap_file(cls, view)
