"""Reference embeddings of a model that is not served, kept in memory (a shadow's candidate).

Embeddings are per model: a candidate compared with the served model's vectors would compare
two different spaces. A shadow evaluation therefore embeds every live reference with the
candidate, in memory, through the candidate's own pipeline (decode, quality, stitch, model:
:meth:`~authentiq.pipeline.inspection.Inspector.run`) — every one at start, then those enrolled
since as it runs — and its
:class:`~authentiq.pipeline.reference_index.ReferenceIndex` reads them from here. Nothing is
written to the database: a candidate under evaluation leaves the reference tables as they were.
Products and their threshold overrides are the database's, so the candidate decides under the
same per-product settings as the served model.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable

from authentiq.inference.batcher import Priority
from authentiq.pipeline.enrolment import descriptors
from authentiq.pipeline.inspection import Inspector, Upload
from authentiq.storage.blobs import Blobs
from authentiq.storage.references import Change, ProductRow, ReferenceRow, ReferenceStore, Upsert

log = logging.getLogger(__name__)


class MemoryReferences:
    """A :class:`~authentiq.pipeline.reference_index.ReferenceSource` of one model's embeddings
    of the live references: every one by :meth:`fill`, then those enrolled or deleted since by
    :meth:`catch_up` (the live shadow calls it as it runs, so a long-running candidate searches
    the references the served model searches)."""

    def __init__(self, store: ReferenceStore, model_id: str) -> None:
        self.store, self.model_id = store, model_id
        self.upserts: dict[str, Upsert] = {}  # reference id → its embedding by this model
        self._seen = -1  # the database's change counter, for products' overrides
        self._refs_seen = -1  # ... for references: what fill and catch_up have embedded
        # what catch_up found since the index last asked, and how many times it found any
        self._added: list[Upsert] = []
        self._removed: list[str] = []
        self._bumps = 0
        self._lock = threading.Lock()  # catch_up (the event loop) against changes (the index's)

    def changes(self, model_id: str, since: int) -> Change:
        """Every vector at the first call; afterwards those :meth:`catch_up` embedded or
        removed since, and whether a product changed in the database (an override set
        meanwhile applies to the candidate too)."""
        if model_id != self.model_id:
            return Change(since, [], [], False)
        head, products_changed = self.store.product_changes(self._seen)
        self._seen = head
        with self._lock:
            added, removed = self._added, self._removed
            self._added, self._removed = [], []
            # moves whenever the database's counter or this one's catch-ups do
            seq = head + 1 + self._bumps
            if since < 0:
                return Change(seq, list(self.upserts.values()), [], True)
        return Change(seq, added, removed, products_changed)

    def products(self) -> list[ProductRow]:
        return self.store.products()

    def __len__(self) -> int:
        return len(self.upserts)

    async def fill(self, inspector: Inspector,
                   progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every live reference with ``inspector``'s model (from its stored photos), before
        the index's first sync; returns how many."""
        loop = asyncio.get_running_loop()
        head, rows, _ = await loop.run_in_executor(inspector.pool, self.store.reference_changes, -1)
        for n, row in enumerate(rows, start=1):
            up = await self._embed(inspector, row)
            self.upserts[up.reference_id] = up
            if progress:
                progress(n, len(rows))
        self._refs_seen = head
        return len(rows)

    async def catch_up(self, inspector: Inspector) -> int:
        """Embed the references enrolled since the last look and drop those deleted; the index
        applies them at its next sync. Returns how many changed (0 costs one small query)."""
        loop = asyncio.get_running_loop()
        head, rows, gone = await loop.run_in_executor(inspector.pool,
                                                      self.store.reference_changes,
                                                      self._refs_seen)
        new = []
        for row in rows:
            if row.id in self.upserts:
                continue
            try:
                new.append(await self._embed(inspector, row))
            except Exception:  # one reference this model cannot take must not stop the rest
                log.warning("the candidate could not embed reference %s; it is left out of its "
                            "search", row.id, exc_info=True)
        with self._lock:
            for up in new:
                self.upserts[up.reference_id] = up
            dropped = {ref for ref in gone if self.upserts.pop(ref, None) is not None}
            # one enrolled and deleted between two of the index's syncs is not handed to it
            self._added = [up for up in self._added if up.reference_id not in dropped] + new
            self._removed += dropped
            self._bumps += bool(new or dropped)
        self._refs_seen = head
        return len(new) + len(dropped)

    async def _embed(self, inspector: Inspector, row: ReferenceRow) -> Upsert:
        """One reference as ``inspector``'s model embeds it, from its stored photos."""
        loop = asyncio.get_running_loop()
        names = row.body.get("stored_files", [])
        photos = await loop.run_in_executor(inspector.pool, functools.partial(
            read_files, self.store.blobs, row.id, names))
        uploads = [Upload(name.split(".")[0], data) for name, data in zip(names, photos, strict=True)]
        run = await inspector.run(uploads, priority=Priority.BULK)
        outputs = run.result.outputs
        views = descriptors(inspector.spec, outputs,
                            [v for v, p in run.prepared.items() if p.quality.usable])
        return Upsert(row.id, row.product_key, outputs.embedding[0].copy(),
                      None if views is None else dict(views.vectors),
                      None if views is None else views.features_id)


def read_files(blobs: Blobs, folder: str, names: list[str]) -> list[bytes]:
    return [blobs.get(folder, name) for name in names]
