"""One inspection from uploaded views to a stored report — the service's spine, free of HTTP.

Stages: validate names/product → decode + quality check (worker pool, one task per view) →
stitch + normalise (worker pool) → dynamic batcher → reference search → verdict fusion →
persist (worker pool). The event loop only routes; every CPU-heavy step runs in the pool.
Enrolment (:mod:`authentiq.pipeline.enrolment`) shares everything up to the batcher (:meth:`Inspector.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from authentiq.contract.deadline import Deadline, time_left
from authentiq.contract.model_spec import ModelSpec, softmax_fake
from authentiq.contract.report import (
    ATTENTION_FILE,
    REPORT_SCHEMA_VERSION,
    Classifier,
    Fusion,
    GateCheck,
    GateSummary,
    Heatmaps,
    Probabilities,
    Reason,
    ReferenceEvidence,
    Report,
    Retake,
    Submitter,
    ViewQuality,
    ViewResult,
    statement,
)
from authentiq.errors import (
    DeadlineExceeded,
    DuplicateView,
    ImageTooLarge,
    MissingView,
    UnknownProduct,
    UnknownView,
)
from authentiq.inference.backends.base import BackendInfo
from authentiq.inference.batcher import Batcher, Priority, Result
from authentiq.pipeline import heatmap
from authentiq.pipeline.admission import DecodeGate
from authentiq.pipeline.heatmap import Attention, classes_to_render
from authentiq.pipeline.preprocess import DecodedView, Probe, decode_probed, probe, release_memory
from authentiq.pipeline.quality import Quality, check
from authentiq.pipeline.reference_index import Evidence, ReferenceIndex, by_view
from authentiq.pipeline.stitch import build_input
from authentiq.pipeline.verdict import Verdict, decide
from authentiq.pipeline.view_gate import ViewCheck, assess
from authentiq.settings import InspectionSettings, QualitySettings
from authentiq.storage.reports import ReportStore

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}
# a view is tried mirrored back before a counterfeit verdict (_mirrored_back) when it carries at
# least this share of the counterfeit evidence: a single mirrored view carried 0.91-1.00 of it
# (25 genuine items), counterfeits as taken a median 0.70
MIRROR_MIN_SHARE = 0.8
# ... and asked for again when, mirrored back, the item comes out authentic or close to it (fused
# counterfeit probability below this): requiring authentic missed 4 of 40 genuine items whose
# mirrored-back item fell short of it (0.008-0.061: held by another check, or inside the band);
# every step up to 0.5 only adds real counterfeits asked for a retake (2,000 held-out items: 14
# at 0.1, 23 at 0.5). Only a fused probability counts: without references (no fusion) nothing
# is authentic, and the classifier's own probability is on another scale (not measured).
MIRROR_CLEARS_BELOW = 0.1
LARGE_DECODE = 16 * 2**20  # working bytes: a large decode (its own low-priority threads, memory
# returned to the OS after it, at most all decode slots but one per client)


ReportObserver = Callable[[Report, str | None], None]


class Upload(NamedTuple):
    """One photo as uploaded, for one view."""

    view: str
    data: bytes


@dataclass(frozen=True)
class _Prepared:
    view: str
    data: bytes  # the photo as uploaded: what the report stores
    decoded: DecodedView
    quality: Quality
    decode_s: float
    quality_s: float


@dataclass(frozen=True)
class Run:
    """One item through decode, quality, stitching and the model."""

    prepared: dict[str, _Prepared]
    result: Result
    stitch_s: float
    spec: ModelSpec

    @property
    def p_counterfeit(self) -> float:
        return float(softmax_fake(self.result.outputs.logits[:1])[0])

    def gate(self, *, single: bool = False) -> dict[str, ViewCheck] | None:
        """The view gate's check of every usable photo; None when the model has no gate."""
        scores = self.result.outputs.view_scores
        tiles = {v: p.decoded.tile for v, p in self.prepared.items() if p.quality.usable}
        return assess(self.spec, None if scores is None else scores[0], tiles, single=single)

    def ordered(self) -> list[_Prepared]:
        return [self.prepared[v] for v in self.spec.view_names if v in self.prepared]

    def photo_files(self) -> dict[str, bytes]:
        """The uploaded photos as stored: ``<view>.<format's extension>``."""
        return {f"{v}.{EXTENSIONS.get(p.decoded.format, 'bin')}": p.data
                for v, p in self.prepared.items()}


@dataclass(frozen=True)
class Scored:
    """One item as a model decides it, before anything is stored."""

    report: Report
    files: dict[str, bytes]  # the uploaded photos, named as stored
    cam: np.ndarray  # the model's class activation maps of the item ([2, h, w])


class Inspector:
    def __init__(self, settings: InspectionSettings, quality: QualitySettings, spec: ModelSpec,
                 info: BackendInfo, batcher: Batcher, store: ReportStore, pool: Executor,
                 references: ReferenceIndex, *, on_report: ReportObserver | None = None,
                 guard: Callable[[], None] | None = None) -> None:
        """``on_report``: called with every stored report and its product's name as the database
        spells it (None: a product the database does not know), e.g. for drift metrics.
        ``guard``: raises when this process must not inspect now (its model is no longer the
        promoted one); checked before any work."""
        self.settings, self.quality, self.spec, self.info = settings, quality, spec, info
        self.on_report, self.guard = on_report, guard
        self.batcher, self.store, self.pool = batcher, store, pool
        self.references = references
        self._products = {(b.lower(), m.lower()) for b, m in spec.products}
        self.decodes = DecodeGate(settings.preprocess_workers, settings.decode_memory_bytes,
                                  small_bytes=LARGE_DECODE)
        # Large decodes run on threads of lower CPU priority (nice 10): on a busy machine the
        # kernel gives the cores to interactive work first (the event loop, inference, other
        # clients' photos); the large decode uses what is left. Created lazily: one thread.
        self._large_pool: ThreadPoolExecutor | None = None

    # --- validation (cheap, before any decoding) ----------------------------------------------

    def check_views(self, names: list[str]) -> None:
        known = set(self.spec.view_names)
        seen: set[str] = set()
        for name in names:
            if name not in known:
                raise UnknownView(
                    f"{name!r} is not a view of this model; views are {', '.join(self.spec.view_names)}",
                    view=name)
            if name in seen:
                raise DuplicateView(f"the {name} view was uploaded more than once", view=name)
            seen.add(name)
        missing = [v for v in self.spec.required_views if v not in seen]
        if missing:
            raise MissingView(f"no photo of {', '.join(missing)}; every item needs one of each "
                              f"of {', '.join(self.spec.required_views)}",
                              missing_views=missing)

    def check_product(self, brand: str, model: str) -> None:
        """Products the model declares, plus those created in the database, are served."""
        if not self.settings.restrict_products or not self._products:
            return
        if (brand.lower(), model.lower()) in self._products or self.references.known_product(brand, model):
            return
        known = ", ".join(f"{b}/{m}" for b, m in self.references.product_names() or self.spec.products)
        raise UnknownProduct(f"{brand}/{model} is not supported by this deployment; "
                             f"supported: {known}")

    # --- the pipeline -------------------------------------------------------------------------

    async def inspect(self, uploads: list[Upload], *, brand: str, model: str,
                      client_ref: str | None, priority: Priority = Priority.INTERACTIVE,
                      deadline: Deadline | None = None, key_id: str | None = None,
                      tenant_id: str, report_id: str | None = None,
                      client: str | None = None) -> Report:
        """``deadline``: the request's, up to inference (None: no deadline).
        ``report_id``: the id to store under (an async job's own id); default a new one.
        ``tenant_id``: whose report it is (the submitting key's tenant; not in the body).
        ``client``: whom decodes and batches are shared fairly between (default the key)."""
        started = time.perf_counter()
        if self.guard is not None:
            self.guard()
        scored = await self.score(uploads, brand=brand, model=model, client_ref=client_ref,
                                  priority=priority, deadline=deadline, key_id=key_id,
                                  report_id=report_id, client=client)
        report = scored.report
        # The stored report carries every timing except its own persistence and the total,
        # which only the response can know.
        # Shielded: once inference ran, the report is stored even if the client has gone.
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        await asyncio.shield(loop.run_in_executor(
            self.pool, self._persist, report, scored.files, scored.cam, tenant_id))
        report.timings["persist_ms"] = _ms(time.perf_counter() - t)
        report.timings["total_ms"] = _ms(time.perf_counter() - started)
        if self.on_report is not None:
            self.on_report(report, self.references.product_label(brand, model))
        return report

    async def score(self, uploads: list[Upload], *, brand: str, model: str,
                    client_ref: str | None, priority: Priority = Priority.INTERACTIVE,
                    deadline: Deadline | None = None, key_id: str | None = None,
                    report_id: str | None = None, client: str | None = None) -> Scored:
        """Everything :meth:`inspect` does but storing: the report as this model decides it,
        with the photos and the attention map it would store. A shadow evaluation scores
        stored inspections with a candidate model through here (:mod:`authentiq.services.shadow`)."""
        self.check_views([u.view for u in uploads])
        self.check_product(brand, model)
        client = client or (f"key:{key_id}" if key_id else "-")
        run = await self.run(uploads, priority=priority, deadline=deadline, client=client)
        prepared, result = run.prepared, run.result
        outputs = result.outputs
        loop = asyncio.get_running_loop()
        unusable = {v: p.quality.reason or "" for v, p in prepared.items() if not p.quality.usable}
        present = {v for v, p in prepared.items() if p.quality.usable}
        t = time.perf_counter()
        evidence = await loop.run_in_executor(self.pool, functools.partial(
            self.references.search, outputs.embedding[0], brand, model,
            view_descriptors=by_view(self.spec, outputs.view_descriptors, present)))
        search_s = time.perf_counter() - t
        gate = run.gate()
        verdict = decide(self.spec, outputs.logits[0], outputs.cam[0], unusable, present, evidence,
                         gate)
        if verdict.verdict == "counterfeit" and gate is not None and self.settings.mirror_check:
            mirrored = await self._mirrored_back(run, verdict.attention, brand, model, unusable,
                                                 present, priority=priority, deadline=deadline,
                                                 client=client)
            if mirrored is not None:  # asked for again, as the gate asks for a mirrored photo
                gate = {**gate, mirrored: replace(gate[mirrored], finding="misoriented_view")}
                verdict = decide(self.spec, outputs.logits[0], outputs.cam[0], unusable, present,
                                 evidence, gate)

        report_id = report_id or uuid.uuid4().hex
        classes = classes_to_render(verdict.verdict)
        report = self._report(report_id, datetime.now(UTC), brand, model, client_ref, run, verdict,
                              gate, evidence, key_id, classes, present)
        files = run.photo_files()
        report.stored_files = sorted([*files, ATTENTION_FILE])
        report.timings.update({
            "decode_ms": _ms(sum(p.decode_s for p in prepared.values())),
            "quality_ms": _ms(sum(p.quality_s for p in prepared.values())),
            "stitch_ms": _ms(run.stitch_s), "queue_ms": _ms(result.queued_s),
            "inference_ms": _ms(result.inference_s), "batch_size": result.batch_size,
            "reference_search_ms": _ms(search_s),
        })
        return Scored(report, files, outputs.cam[0])

    async def _mirrored_back(self, run: Run, attention: dict[str, float], brand: str, model: str,
                             unusable: dict[str, str], present: set[str], *, priority: Priority,
                             deadline: Deadline | None, client: str) -> str | None:
        """The view whose photo, mirrored back, makes a counterfeit item authentic or close to
        it (``MIRROR_CLEARS_BELOW``); None if none.

        A mirrored photo (a front camera's, an edited one) reverses what a slant or a print
        shows: a genuine item's mirrored stitching reads as stitches slanted the wrong way, and
        the alteration head, which does not know the claimed product, misses it (25 of 40 genuine
        items were called counterfeit: docs/performance.md, "Altered photos"). A counterfeit's
        defect mirrored is still a defect, so its verdict stands; a defect that is itself a
        mirror image (a reversed print) becomes a retake request with the item in the review
        queue, never a verdict. Only the view carrying ``MIRROR_MIN_SHARE`` of the counterfeit
        evidence is tried (at most one can): one altered view decides the item alone, while a
        counterfeit's evidence is usually spread (three in four are not tried)."""
        tiles = {v: p.decoded.tile for v, p in run.prepared.items() if p.quality.usable}
        view = max(tiles, key=lambda v: attention.get(v, 0.0), default=None)
        if view is None or attention.get(view, 0.0) < MIRROR_MIN_SHARE:
            return None
        loop = asyncio.get_running_loop()
        flipped = {**tiles, view: np.ascontiguousarray(tiles[view][:, ::-1])}
        x = await loop.run_in_executor(self.pool, build_input, self.spec,
                                       {v: flipped.get(v) for v in run.prepared})
        out = (await self.batcher.submit(x, priority=priority, deadline=deadline,
                                         client=client)).outputs
        evidence = await loop.run_in_executor(self.pool, functools.partial(
            self.references.search, out.embedding[0], brand, model,
            view_descriptors=by_view(self.spec, out.view_descriptors, present)))
        gate = assess(self.spec, None if out.view_scores is None else out.view_scores[0], flipped)
        back = decide(self.spec, out.logits[0], out.cam[0], unusable, present, evidence, gate)
        cleared = back.verdict == "authentic" or (back.fused and back.verdict == "inconclusive"
                                                  and back.p_counterfeit < MIRROR_CLEARS_BELOW)
        return view if cleared else None

    def _persist(self, report: Report, photos: dict[str, bytes], cam: np.ndarray,
                 tenant_id: str) -> None:
        """Store the report with its photos and the model's attention map (a few KB): the
        heatmaps are drawn from it when first asked for (authentiq.web.heatmap_images)."""
        files = {**photos, ATTENTION_FILE: Attention.of(self.spec, cam).to_bytes()}
        self.store.save(report, files, tenant_id=tenant_id)

    async def run(self, uploads: list[Upload], *, priority: Priority = Priority.INTERACTIVE,
                  deadline: Deadline | None = None, client: str = "-") -> Run:
        """Decode and check every view, stitch, and run the model through the batcher.

        Decoding is bounded: every header is read first and the decoded bytes are checked per
        view and per request before any pixel is decoded; each decode then waits for its turn
        at the shared :class:`DecodeGate` (fair between clients, within the memory budget) and
        for its thread, both within ``deadline``."""
        self.batcher.check_capacity()  # refuse before decoding when the queue is already full
        loop = asyncio.get_running_loop()
        probes = await asyncio.gather(
            *(loop.run_in_executor(self.pool, self._probe, u) for u in uploads),
            return_exceptions=True)
        for r in probes:  # first failing view in upload order decides the error
            if isinstance(r, BaseException):
                raise r
        headers = [p for p in probes if isinstance(p, Probe)]
        total = sum(p.decoded_bytes for p in headers)
        budget = self.settings.max_decoded_bytes_per_request
        if total > budget:
            raise ImageTooLarge(f"the photos decode to {total / 2**20:,.0f} MiB together; the limit "
                                f"per request is {budget / 2**20:,.0f} MiB (send JPEGs, or fewer "
                                f"pixels)", decoded_bytes=total)
        results = await asyncio.gather(
            *(self._prepare(u, p, client, deadline) for u, p in zip(uploads, headers, strict=True)),
            return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome
        prepared = {p.view: p for p in results if isinstance(p, _Prepared)}

        t = time.perf_counter()
        usable: Mapping[str, np.ndarray | None] = {
            v: (p.decoded.tile if p.quality.usable else None) for v, p in prepared.items()}
        views = await loop.run_in_executor(self.pool, build_input, self.spec, usable)
        stitch_s = time.perf_counter() - t
        result = await self.batcher.submit(views, priority=priority, deadline=deadline,
                                           client=client)
        return Run(prepared, result, stitch_s, self.spec)

    async def _prepare(self, upload: Upload, header: Probe, client: str,
                       deadline: Deadline | None) -> _Prepared:
        loop = asyncio.get_running_loop()
        ticket = await self.decodes.admit(client, header.working_bytes, deadline)
        future = loop.run_in_executor(self._pool_for(header), self._decode, upload, header)
        future.add_done_callback(lambda _: ticket.release())  # when the thread is done with it
        try:
            return await asyncio.wait_for(asyncio.shield(future), time_left(deadline))
        except TimeoutError:
            raise DeadlineExceeded(f"the request's deadline passed while the {upload.view} "
                                   f"photo was being decoded") from None

    def _pool_for(self, header: Probe) -> Executor:
        if header.working_bytes <= LARGE_DECODE:
            return self.pool
        if self._large_pool is None:
            self._large_pool = ThreadPoolExecutor(
                max(1, self.settings.preprocess_workers - 1), initializer=lower_priority,
                thread_name_prefix="authentiq-large-decode")
        return self._large_pool

    def close(self) -> None:
        if self._large_pool is not None:
            self._large_pool.shutdown(wait=True)

    def _probe(self, upload: Upload) -> Probe:
        return probe(upload.data, max_pixels=self.settings.max_pixels, view=upload.view,
                     max_decoded_bytes=self.settings.max_decoded_bytes_per_view)

    def _decode(self, upload: Upload, header: Probe) -> _Prepared:
        t0 = time.perf_counter()
        try:
            decoded = decode_probed(header, tile_size=self.spec.tile_size)
        finally:
            if header.working_bytes > LARGE_DECODE:
                release_memory()  # give the freed raster back to the OS now, not someday
        t1 = time.perf_counter()
        quality = check(decoded, self.quality)
        return _Prepared(upload.view, upload.data, decoded, quality, t1 - t0, time.perf_counter() - t1)

    @staticmethod
    def view_result(p: _Prepared) -> ViewQuality:
        return view_result(p.view, p.decoded, p.quality)

    def _report(self, report_id: str, created: datetime, brand: str, model: str,
                client_ref: str | None, run: Run, verdict: Verdict,
                gate: dict[str, ViewCheck] | None, evidence: Evidence, key_id: str | None,
                classes: list[str], present: set[str]) -> Report:
        views = [ViewResult(**with_gate(self.view_result(p), gate.get(p.view) if gate else None)
                            .model_dump(), attention=round(verdict.attention.get(p.view, 0.0), 4))
                 for p in run.ordered()]
        spec = self.spec
        return Report(
            schema_version=REPORT_SCHEMA_VERSION, id=report_id, created_at=created.isoformat(),
            client_ref=client_ref, brand=brand, model=model, verdict=verdict.verdict,  # type: ignore[arg-type]
            confidence=None if verdict.confidence is None else round(verdict.confidence, 6),
            probabilities=Probabilities(authentic=round(1 - verdict.p_counterfeit, 6),
                                        counterfeit=round(verdict.p_counterfeit, 6)),
            reasons=[Reason.model_validate(r) for r in verdict.reasons],
            retake=[Retake.model_validate(r) for r in verdict.retake],
            review_advised=verdict.review,
            gate=GateSummary(applied=gate is not None,
                             fitted_on=spec.gate.fitted_on if spec.gate else None),
            fusion=Fusion(applied=verdict.fused, p_classifier=round(verdict.p_classifier, 6),
                          p_classifier_calibrated=round(verdict.p_classifier_calibrated, 6),
                          temperature=spec.calibration.temperature if spec.calibration else None,
                          p_counterfeit=round(verdict.p_counterfeit, 6),
                          thresholds=verdict.thresholds),
            references=ReferenceEvidence.model_validate(evidence.as_dict()),
            views=views,
            missing_views=[v for v in spec.view_names if v not in run.prepared],
            classifier=Classifier(name=spec.model_name, version=spec.model_version,
                                  precision=spec.precision, backend=self.info.name,
                                  device=self.info.device, engine_id=self.info.engine_id,
                                  thresholds=spec.thresholds.model_dump(),
                                  model_id=self.info.model_id or None),
            heatmaps=Heatmaps(classes=classes, colormap=heatmap.COLORMAP,  # type: ignore[arg-type]
                              notice=heatmap.NOTICE,
                              views=[v for v in spec.view_names if v in present] + ["overview"]),
            submitted_by=Submitter(key_id=key_id),
            statement_of_reasons=statement(report_id),
            timings={}, stored_files=[])


def view_result(view: str, decoded: DecodedView, q: Quality) -> ViewQuality:
    """One photo's facts and quality verdict, as reports and the quality endpoint show them."""
    return ViewQuality(
        view=view, usable=q.usable, reason=q.reason, message=q.message,  # type: ignore[arg-type]
        format=decoded.format, width=decoded.width, height=decoded.height,
        sharpness=round(q.sharpness, 2), brightness=round(q.brightness, 1),
        glare=round(q.glare, 4), jpeg_quality=q.jpeg_quality)


def with_gate(result: ViewQuality, check: ViewCheck | None) -> ViewQuality:
    """A photo's result with the view gate's facts; a photo the gate refuses is unusable, with
    the gate's reason and message (as ``/v1/quality`` says it)."""
    if check is None:
        return result
    update: dict[str, Any] = {"gate": GateCheck(distance=check.distance, looks_like=check.looks_like,
                                                finding=check.finding, other_view=check.other)}
    if check.finding is not None:
        update.update(usable=False, reason=check.finding, message=check.message)
    return result.model_copy(update=update)


def lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: ``setpriority`` on a thread id affects
    that thread only); elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


__all__ = ["Inspector", "Scored", "Upload", "view_result"]
