"""Reference embeddings of a model that is not served, kept in memory (a shadow's candidate).

Embeddings are per model: a candidate compared with the served model's vectors would compare
two different spaces. A shadow evaluation therefore embeds every live reference with the
candidate once, in memory, through the candidate's own pipeline (decode, quality, stitch, model:
:meth:`~authentiq.pipeline.inspection.Inspector.run`), and its
:class:`~authentiq.pipeline.reference_index.ReferenceIndex` reads them from here. Nothing is
written to the database: a candidate under evaluation leaves the reference tables as they were.
Products and their threshold overrides are the database's, so the candidate decides under the
same per-product settings as the served model.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from authentiq.inference.batcher import Priority
from authentiq.pipeline.enrolment import descriptors
from authentiq.pipeline.inspection import Inspector, Upload
from authentiq.storage.blobs import Blobs
from authentiq.storage.references import Change, ProductRow, ReferenceStore, Upsert


class MemoryReferences:
    """A :class:`~authentiq.pipeline.reference_index.ReferenceSource` of one model's embeddings
    of the live references, made once by :meth:`fill`."""

    def __init__(self, store: ReferenceStore, model_id: str) -> None:
        self.store, self.model_id = store, model_id
        self.upserts: list[Upsert] = []
        self._seen = -1  # the database's change counter, for products' overrides

    def changes(self, model_id: str, since: int) -> Change:
        """The vectors once (they never change); afterwards only whether a product changed in
        the database (an override set meanwhile applies to the candidate too). A reference
        enrolled after the embedding is not searched by the candidate."""
        if model_id != self.model_id:
            return Change(since, [], [], False)
        head, products_changed = self.store.product_changes(self._seen)
        self._seen = head
        if since < 0:
            return Change(head + 1, list(self.upserts), [], True)
        return Change(head + 1, [], [], products_changed)

    def products(self) -> list[ProductRow]:
        return self.store.products()

    def __len__(self) -> int:
        return len(self.upserts)


    async def fill(self, inspector: Inspector,
                   progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every live reference with ``inspector``'s model (from its stored photos), before
        the index's first sync; returns how many."""
        spec = inspector.spec
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(inspector.pool, self.store.live)
        blobs = self.store.blobs
        for n, row in enumerate(rows, start=1):
            names = row.body.get("stored_files", [])
            photos = await loop.run_in_executor(inspector.pool, functools.partial(
                read_files, blobs, row.id, names))
            uploads = [Upload(name.split(".")[0], data)
                       for name, data in zip(names, photos, strict=True)]
            run = await inspector.run(uploads, priority=Priority.BULK)
            outputs = run.result.outputs
            views = descriptors(spec, outputs,
                                [v for v, p in run.prepared.items() if p.quality.usable])
            self.upserts.append(Upsert(row.id, row.product_key, outputs.embedding[0].copy(),
                                       None if views is None else dict(views.vectors),
                                       None if views is None else views.features_id))
            if progress:
                progress(n, len(rows))
        return len(rows)


def read_files(blobs: Blobs, folder: str, names: list[str]) -> list[bytes]:
    return [blobs.get(folder, name) for name in names]
