"""What the service would answer, measured offline (``authentiq evaluate --verdicts/--ood``).

Items go through the service's own steps — decode and quality check (photos), stitching, the
backend, the view gate, the reference comparison and :func:`authentiq.pipeline.verdict.decide` — so the
figures are those of the verdicts clients get, not of the classifier alone. The reference
comparison is exact (numpy) against a folder of genuine references, as the flat index does.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import ModelSpec
from authentiq.errors import AuthentiqError
from authentiq.inference.backends.base import Outputs
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets
from authentiq.modelling.synthetic.distractors import Distractor
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check
from authentiq.pipeline.reference_index import Evidence, Match, ViewEvidence, by_view
from authentiq.pipeline.stitch import build_input
from authentiq.pipeline.verdict import Verdict, decide
from authentiq.pipeline.view_gate import assess
from authentiq.pipeline.view_references import ViewReferences
from authentiq.pipeline.view_references import check as check_views
from authentiq.settings import InspectionSettings, QualitySettings, Settings


@dataclass(frozen=True)
class References:
    """Genuine reference embeddings [N, D] and their products (``brand/model``); with the
    model's per-view check, the references' per-view descriptors as the service keeps them."""

    embedding: np.ndarray
    products: list[str]
    views: ViewReferences | None = None
    spec: ModelSpec | None = None

    @classmethod
    def load(cls, backend: OnnxRuntimeBackend, folder: Path) -> References:
        spec = backend.spec
        return cls.of(backend, datasets.folder_tiles(datasets.folder_items(folder),
                                                     spec.view_names, spec.tile_size, required=()))

    @classmethod
    def of(cls, backend: OnnxRuntimeBackend, ts: datasets.TileSet) -> References:
        """Folder items as enrolled references (``ts.notes``: their ``brand/model``)."""
        spec = backend.spec
        views = ViewReferences() if spec.view_check is not None else None
        embeddings = []
        for i in range(len(ts)):
            out = backend.run(build_input(spec, ts.tiles_of(i))[None])
            embeddings.append(out.embedding[0])
            present = [v for v, t in ts.tiles_of(i).items() if t is not None]
            found = by_view(spec, out.view_descriptors, present)
            if views is not None and found is not None:
                views.put(str(i), ts.notes[i], found)
        return cls(np.asarray(embeddings, np.float32), list(ts.notes), views, spec)

    def view_evidence(self, product: str, count: int,
                      features: Mapping[str, np.ndarray] | None) -> ViewEvidence:
        """What :meth:`ReferenceIndex.search` reports for the per-view check."""
        params = self.spec.view_check if self.spec else None
        if params is None or self.views is None or features is None:
            return ViewEvidence("unavailable")
        if count == 0:
            return ViewEvidence("no_references")
        return ViewEvidence("checked", check_views(params, self.views, product, features))

    def evidence(self, embedding: np.ndarray, product: str, version: str, k: int,
                 view_features: Mapping[str, np.ndarray] | None = None) -> Evidence:
        sims = self.embedding @ embedding
        brand, model = product.split("/", 1)
        mine = [i for i, p in enumerate(self.products) if p == product]
        claimed = sorted(mine, key=lambda i: -sims[i])[:k]
        best_other: dict[str, int] = {}
        for i, p in enumerate(self.products):
            if p != product and (p not in best_other or sims[i] > sims[best_other[p]]):
                best_other[p] = i
        others = sorted(best_other.values(), key=lambda i: -sims[i])[:3]

        def match(i: int) -> Match:
            b, m = self.products[i].split("/", 1)
            return Match(str(i), b, m, round(float(sims[i]), 4))

        return Evidence(version, brand, model, k, len(mine), [match(i) for i in claimed],
                        [match(i) for i in others],
                        views=self.view_evidence(product, len(mine), view_features))


def verdict_for(backend: OnnxRuntimeBackend, tiles: Mapping[str, np.ndarray | None],
                unusable: dict[str, str], product: str, refs: References | None) -> Verdict:
    """One item's verdict from its usable tiles, as the service reaches it."""
    out = backend.run(build_input(backend.spec, tiles)[None])
    return decide_outputs(backend.spec, out, tiles, unusable, product, refs)


def decide_outputs(spec: ModelSpec, out: Outputs, tiles: Mapping[str, np.ndarray | None],
                   unusable: dict[str, str], product: str, refs: References | None,
                   *, gate_on: bool = True, view_check_on: bool = True) -> Verdict:
    """The verdict from one item's model outputs (``gate_on=False``: as before the view gate;
    ``view_check_on=False``: as before the per-view reference check)."""
    present = {v for v, t in tiles.items() if t is not None}
    usable = {v: t for v, t in tiles.items() if t is not None}
    scores = out.view_scores[0] if out.view_scores is not None and gate_on else None
    gate = assess(spec, scores, usable)
    k = spec.fusion.k if spec.fusion else 5
    brand, model = product.split("/", 1)
    features = by_view(spec, out.view_descriptors, present) if view_check_on else None
    evidence = refs.evidence(out.embedding[0], product, spec.version_key, k, features) if refs \
        else Evidence(spec.version_key, brand, model, k, 0, [], [], views=ViewEvidence(
            "no_references" if spec.view_check and features is not None else "unavailable"))
    return decide(spec, out.logits[0], out.cam[0], unusable, present, evidence, gate)


def photo_verdict(backend: OnnxRuntimeBackend, photos: Mapping[str, bytes], product: str,
                  refs: References | None, inspection: InspectionSettings,
                  quality: QualitySettings) -> Verdict | str:
    """A submission of photos; a string when the service would refuse it with an error."""
    spec = backend.spec
    tiles: dict[str, np.ndarray | None] = {}
    unusable: dict[str, str] = {}
    for view, data in photos.items():
        try:
            decoded = decode_view(data, tile_size=spec.tile_size, max_pixels=inspection.max_pixels,
                                  view=view)
        except AuthentiqError as exc:
            return f"rejected ({exc.slug})"
        q = check(decoded, quality)
        tiles[view] = decoded.tile if q.usable else None
        if not q.usable:
            unusable[view] = q.reason or ""
    return verdict_for(backend, tiles, unusable, product, refs)


@dataclass(frozen=True)
class Outcome:
    kind: str  # the distractor kind, or "genuine" / "counterfeit"
    verdict: str  # authentic | counterfeit | inconclusive | rejected (...)
    confident: bool  # a decided verdict (authentic or counterfeit)
    retake: tuple[str, ...]  # reason codes of the retake requests
    flagged: bool


# Distractor kinds that alter the claimed genuine item's own photo: "authentic" is right about
# the item (if not supported by a sound photo); "counterfeit" accuses a genuine item.
ITEM_ALTERATIONS = ("mirrored_view", "turned_view", "upside_down", "degraded_view")


def wrong(o: Outcome) -> bool:
    """Whether the answer to an out-of-distribution submission is wrong: any verdict on a
    non-product, mixed-up views or another product's view; counterfeit on a genuine item's own
    altered photo."""
    return o.confident and (o.kind not in ITEM_ALTERATIONS or o.verdict == "counterfeit")


def outcome(kind: str, v: Verdict | str) -> Outcome:
    if isinstance(v, str):
        return Outcome(kind, v, False, (), False)
    return Outcome(kind, v.verdict, v.verdict != "inconclusive",
                   tuple(sorted({r["reason"] for r in v.retake})), bool(v.review))


def ood_table(outcomes: Iterable[Outcome]) -> str:
    """Per kind: how often the service answered confidently, and what it said otherwise."""
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    lines = ["| submission | n | authentic | counterfeit | inconclusive or refused | "
             "with a retake request | to review | retake reasons |",
             "|---|---|---|---|---|---|---|---|"]
    total: list[Outcome] = []
    for kind, rows in [*sorted(by_kind.items()), ("all", [])]:
        rows = rows or total
        if kind != "all":
            total += rows
        n = len(rows)
        auth = sum(o.verdict == "authentic" for o in rows)
        fake = sum(o.verdict == "counterfeit" for o in rows)
        retake = sum(bool(o.retake) for o in rows)
        reasons = Counter(r for o in rows for r in o.retake)
        lines.append(f"| {kind} | {n} | {auth} | {fake} | {n - auth - fake} ({(n - auth - fake) / n:.1%}) "
                     f"| {retake} | {sum(o.flagged for o in rows)} | "
                     + ", ".join(f"{r} {c}" for r, c in reasons.most_common()) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class HeldOut:
    """Verdicts on held-out genuine and counterfeit items, each claimed as its own product."""

    labels: np.ndarray  # 1 = counterfeit
    verdicts: list[Verdict]

    def figures(self) -> dict[str, float | int | None]:
        """Accuracy on decided items (None: none decided), the shares inconclusive, with a
        retake request and of genuine items called authentic, and counterfeits called authentic."""
        said = [v.verdict for v in self.verdicts]
        decided = [(v == "counterfeit", bool(y)) for v, y in zip(said, self.labels, strict=True)
                   if v != "inconclusive"]
        n = len(said)
        genuine = [v for v, y in zip(said, self.labels, strict=True) if y == 0]
        return {
            "items": n,
            "decided_accuracy": sum(p == y for p, y in decided) / len(decided) if decided else None,
            "inconclusive_share": 1 - len(decided) / n if n else 0.0,
            "retake_share": sum(bool(v.retake) for v in self.verdicts) / n if n else 0.0,
            "genuine_authentic_share": genuine.count("authentic") / len(genuine) if genuine else 0.0,
            "counterfeit_authentic": sum(v == "authentic" and int(y) == 1
                                         for v, y in zip(said, self.labels, strict=True)),
        }

    def row(self, name: str) -> str:
        f = self.figures()
        acc = f["decided_accuracy"]
        return (f"| {name} | {f['items']} | {'nothing decided' if acc is None else f'{acc:.2%}'} | "
                f"{f['inconclusive_share']:.2%} | {f['retake_share']:.2%} | "
                f"{f['genuine_authentic_share']:.2%} |")

    @staticmethod
    def header() -> str:
        return ("| verdicts | items | accuracy on decided | inconclusive | with a retake request | "
                "genuine items called authentic |\n|---|---|---|---|---|---|")


HELD_OUT_ROWS = {  # verdicts as the service reaches them, and as it did before each check
    "without the view gate": {"gate_on": False, "view_check_on": False},
    "with the view gate": {"view_check_on": False},
    "with the view gate and the per-view reference check": {},
}


def held_out_verdicts(backend: OnnxRuntimeBackend, ts: datasets.TileSet, refs: References | None,
                      batch: int = 64, *, claims: Sequence[str] | None = None,
                      rows: Mapping[str, Mapping[str, bool]] = HELD_OUT_ROWS) -> dict[str, HeldOut]:
    """Each of ``rows`` from one run of the model (the service's own: the last), each item
    claimed as its own product: ``claims[i]`` (``brand/model``), by default the synthetic
    catalogue's product of its group."""
    from authentiq.modelling.synthetic import CATALOG

    if claims is None:
        claims = [f"{CATALOG[g].brand}/{CATALOG[g].model}" for g in ts.groups]
    spec = backend.spec
    verdicts: dict[str, list[Verdict]] = {name: [] for name in rows}
    for start in range(0, len(ts), batch):
        items = range(start, min(start + batch, len(ts)))
        out = backend.run(np.stack([build_input(spec, ts.tiles_of(i)) for i in items]))
        for j, i in enumerate(items):
            row = out.row(j)
            tiles = ts.tiles_of(i)
            for name, switches in rows.items():
                verdicts[name].append(decide_outputs(spec, row, tiles, {}, claims[i], refs,
                                                     **switches))
    return {name: HeldOut(ts.labels, v) for name, v in verdicts.items()}


def trust_report(model: Path, ts: datasets.TileSet, references: Path | None, *, ood: int = 0,
                 plots: Path | None = None, first_seed: int = 0,
                 kinds: tuple[str, ...] | None = None) -> str:
    """Verdict-level figures for one model: held-out verdicts with and without the view gate,
    calibration of the stated confidence (ECE, reliability diagram, risk–coverage) and, with
    ``ood``, what the service answers to that many out-of-distribution submissions (cycling
    through ``kinds``, default every distractor kind)."""
    from authentiq.modelling.reliability import (
        expected_calibration_error,
        reliability_diagram,
        risk_coverage,
        risk_coverage_table,
    )

    backend = OnnxRuntimeBackend(model)
    refs = References.load(backend, references) if references else None
    rows = held_out_verdicts(backend, ts, refs)
    gated = rows[list(HELD_OUT_ROWS)[-1]]
    where = f"against {len(refs.products)} references ({references})" if refs else "without references"
    lines = [f"### Verdicts on {len(ts)} held-out items, {where} ({model.name})", "",
             HeldOut.header(), *(held.row(name) for name, held in rows.items())]
    p = np.asarray([v.p_counterfeit for v in gated.verdicts])
    decided = np.asarray([v.verdict != "inconclusive" for v in gated.verdicts])
    ece_all = expected_calibration_error(ts.labels, p)
    ece_decided = expected_calibration_error(ts.labels[decided], p[decided]) if decided.any() else 0.0
    lines += ["", f"Calibration of the probability verdicts rest on: ECE {ece_all:.4f} on all items, "
                  f"{ece_decided:.4f} on decided items.", "",
              "Risk–coverage (the most confident items decided first; the service decides "
              f"{decided.mean():.1%}):", "",
              risk_coverage_table(risk_coverage(ts.labels, p))]
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        path = reliability_diagram(ts.labels, p, plots / f"reliability-{model.stem}.png",
                                   title=f"{model.name}: verdict probability, "
                                         + (f"{len(refs.products)} references" if refs else "no references"))
        lines += ["", f"Reliability diagram: {path}"]
    if ood:
        from authentiq.modelling.synthetic.distractors import DISTRACTOR_KINDS, distractors

        settings = Settings()
        outcomes = [outcome(d.kind, photo_verdict(backend, d.views, f"{d.brand}/{d.model}", refs,
                                                  settings.inspection, settings.quality))
                    for d in distractors(ood, first_seed, kinds or DISTRACTOR_KINDS)]
        lines += ["", f"### {ood} out-of-distribution submissions (seeds {first_seed:,}+), {where}",
                  "", ood_table(outcomes)]
    backend.close()
    return "\n".join(lines)



def folder_distractors(n: int, first_seed: int, items: Sequence[datasets.LabelledItem],
                       views: tuple[str, ...], workers: int | None = None) -> Iterator[Distractor]:
    """``n`` out-of-distribution submissions for a model of ``items``' products, cycling through
    every distractor kind: things that are not a product (noise, blank frames, documents,
    textures, objects, scene crops) claimed as each product in turn, and genuine ``items``' own
    photos submitted wrongly (swapped, duplicated, mirrored, turned, degraded, another product's
    view). Kinds that need a genuine item with every one of ``views`` (another product's, for
    ``foreign_view``) are left out when the items have none. Drawn by ``workers`` processes
    (``None``: one per CPU), a few at a time; the same whatever their number."""
    from authentiq.contract.layout import view_files
    from authentiq.modelling.synthetic.distractors import DISTRACTOR_KINDS, PAINTED_KINDS

    products = sorted({(it.brand, it.model) for it in items if it.brand and it.model})
    genuine = [(it, files) for it in items if it.label == 0 and it.brand and it.model
               for files in [view_files(it.folder)] if set(views) <= set(files)]
    kinds = [k for k in DISTRACTOR_KINDS if k in PAINTED_KINDS or genuine]
    if len({it.note.casefold() for it, _ in genuine}) < 2:
        kinds = [k for k in kinds if k != "foreign_view"]  # one product only: nothing foreign
    if not products:
        return
    rng = np.random.default_rng([first_seed, 7])
    # Kind i % K claims product i % P; where K and P share a factor that would pin each kind to
    # a few products, so each round of kinds moves the claims on by one.
    turn = 1 if math.gcd(len(kinds), len(products)) > 1 else 0
    jobs: list[_DistractorJob] = []
    for i in range(n):
        seed, kind = first_seed + i, kinds[i % len(kinds)]
        if kind in PAINTED_KINDS:
            claim = products[(i + turn * (i // len(kinds))) % len(products)]
            jobs.append((seed, kind, views, claim, None, None))
            continue
        item, files = genuine[int(rng.integers(0, len(genuine)))]
        foreign = None
        if kind == "foreign_view":
            others = [f for it, f in genuine if it.note.casefold() != item.note.casefold()]
            foreign = others[int(rng.integers(0, len(others)))]
        jobs.append((seed, kind, views, (item.brand, item.model), files, foreign))
    chunk = 8 * (workers or os.cpu_count() or 1)  # photos of a few at a time in memory
    for start in range(0, len(jobs), chunk):
        yield from datasets._map(_distractor, jobs[start:start + chunk], workers)


_DistractorJob = tuple[int, str, tuple[str, ...], tuple[str, str], dict[str, Path] | None,
                       dict[str, Path] | None]


def _distractor(job: _DistractorJob) -> Distractor:
    """One of :func:`folder_distractors`: painted and claimed, or an item's photos rearranged."""
    from authentiq.modelling.synthetic.distractors import make_distractor, rearranged

    seed, kind, views, (brand, model), files, foreign = job
    if files is None:
        d = make_distractor(seed, kind, views)
        return Distractor(d.seed, kind, brand, model, d.views, d.expected)
    return rearranged(seed, kind, {v: files[v].read_bytes() for v in views}, brand, model,
                      {v: p.read_bytes() for v, p in foreign.items() if v in views}
                      if foreign is not None else None)
