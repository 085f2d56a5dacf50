"""``authentiq train --data DIR --out OUT``: a folder of photos to a complete, gated model.

Stages, in order (each recorded in ``OUT/stages.json`` once finished, and not redone while its
inputs are unchanged; :mod:`authentiq.modelling.workflow.ledger`):

1. ``train``: the network on the training items, the inconclusive band on the validation items
   (:func:`authentiq.modelling.training.train.train`; resumes from its last epoch);
2. ``export``: FP32 ONNX (``OUT/model.fp32.onnx``) with the model's name and version;
3. ``calibrate``: both INT8 flavours, calibrated on training items;
4. ``embedding``: the embedding head on the training items (product × authenticity);
5. ``fusion``: classifier + references, a few authentic training items a product as references
   (as many as a deployment enrols: ``fusion_references``), fitted on the validation items;
6. ``gate``, ``temperature``, ``view_check``: the view gate, the confidence temperature and the
   per-view reference check, on the validation items (the gate's alteration head learns from
   training items as taken and altered; its thresholds come from the validation items);
7. ``evaluate``: the three flavours on the test items — decoded here for the first time;
8. ``verdicts``: what the service answers (served flavour, view gate, fusion, a few training
   items a product as references) on the test items, and on out-of-distribution submissions
   made of noise, documents, objects ... and of the test items' own photos submitted wrongly;
9. ``accept``: the acceptance gate; its outcome in every flavour's metadata and ``MODEL_CARD.md``.

Every fit reuses the function of its separate command (``calibrate``, ``fit-embedding`` ...),
given the folder's items instead of synthetic ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.errors import DatasetError, ModelContractError
from authentiq.modelling import datasets, splits
from authentiq.modelling.progress import SILENT, Progress
from authentiq.modelling.training.train import TrainConfig, TrainingData, load_data
from authentiq.modelling.workflow import card
from authentiq.modelling.workflow.acceptance import (
    Acceptance,
    AcceptanceThresholds,
    Figures,
    judge,
    stamp,
)
from authentiq.modelling.workflow.ledger import Ledger, digest, folder_fingerprint
from authentiq.settings import Settings

STAGES = ("train", "export", "calibrate", "embedding", "fusion", "gate", "temperature",
          "view_check", "evaluate", "verdicts", "accept")
OOD_SEED = 800_000_000  # first seed of the verdicts stage's out-of-distribution submissions


def default_version() -> str:
    """A version unique to the second it was made (UTC), e.g. ``2026.12.01-114135``."""
    return time.strftime("%Y.%m.%d-%H%M%S", time.gmtime())


@dataclass(frozen=True)
class WorkflowConfig:
    train: TrainConfig  # train.data: the folder
    out: Path
    thresholds: AcceptanceThresholds = field(default_factory=AcceptanceThresholds)
    force: bool = False
    calibration_items: int = 128  # training items, spread evenly over them
    min_gate_items: int = 20  # validation items with every view the view gate needs at least
    alteration_items: int = 1500  # training items the gate's alteration head learns from (0: none)
    fusion_references: int = 5  # authentic training items per product the fusion is fitted against
    alteration_epochs: int = 12
    ood_items: int = 240  # out-of-distribution submissions the verdicts stage answers (0: none)
    command: str = ""


@dataclass
class Outcome:
    acceptance: Acceptance
    files: dict[str, Path]
    card: Path
    kept: list[str] = field(default_factory=list)  # stages found done, not redone
    evaluation: list[dict[str, Any]] = field(default_factory=list)


class Workflow:
    """One run of the stages over one output folder."""

    def __init__(self, cfg: WorkflowConfig, progress: Progress = SILENT) -> None:
        self.cfg, self.progress = cfg, progress
        self.out = cfg.out
        self.root = Path(cfg.train.data)
        self.items = datasets.folder_items(self.root)
        plan = splits.SplitPlan(cfg.train.val_share, cfg.train.test_share, cfg.train.seed,
                                cfg.train.by_product)
        self.split, errors, _ = splits.splits_for(self.root, self.items, plan)
        datasets.refuse(errors or splits.problems(self.items, self.split), self.root, "its split")
        self.ledger = Ledger(self.out)
        self.ledger.put("model_version", cfg.train.model_version)  # a resumed run keeps it
        self.files = {f: self.out / f"model.{f}.onnx" for f in ("fp32", "int8-cpu", "int8-trt")}
        self.models = [self.files["int8-cpu"], self.files["fp32"], self.files["int8-trt"]]
        names = [it.name for it in self.items]
        self.dataset = folder_fingerprint(self.root, names, [it.folder for it in self.items])
        self.fingerprint = digest(self.dataset, self.split.assignment)
        self.kept: list[str] = []
        self.redoing = False  # a stage ran: the later ones cannot be kept
        self._data: TrainingData | None = None
        self._test: datasets.TileSet | None = None

    # --- helpers -------------------------------------------------------------------------------

    @property
    def data(self) -> TrainingData:
        """Training and validation items, decoded on first use (never the test items)."""
        if self._data is None:
            names = self.split.of(self.items)
            self.progress.note(f"    decoding {int((names == 'train').sum())} training and "
                               f"{int((names == 'val').sum())} validation items")
            self._data = load_data(self.cfg.train)
        return self._data

    def _items_of(self, part: str) -> list[datasets.LabelledItem]:
        return [it for it in self.items if self.split.assignment[it.name] == part]

    def stage(self, name: str, title: str, params: Any, fn: Callable[[], dict[str, Any]],
              outputs: Sequence[Path] = ()) -> dict[str, Any]:
        """Run stage ``name`` unless it finished on the same inputs and its ``outputs`` are
        there (then say so). Once a stage runs, every later one runs too: they rewrite the
        models in place."""
        number = f"[{STAGES.index(name) + 1}/{len(STAGES)}]"
        self.fingerprint = digest(self.fingerprint, name, params)
        record = None if self.redoing else self.ledger.done(name, self.fingerprint)
        if record is not None and not all(p.is_file() for p in outputs):
            self.progress.note(f"{number} {title}: finished before, but "
                               f"{', '.join(p.name for p in outputs if not p.is_file())} is gone")
            record = None
        if record is not None:
            self.kept.append(name)
            self.progress.note(f"{number} {title}: finished before on the same inputs, kept")
            return record
        self.progress.note(f"{number} {title}")
        self.redoing = True
        start = time.perf_counter()
        found = fn()
        record = self.ledger.finish(name, self.fingerprint, time.perf_counter() - start, **found)
        summary = f"not fitted: {found['skipped']}" if found.get("skipped") else found.get("summary", "")
        self.progress.note(f"    {summary + '; ' if summary else ''}{record['seconds']:.0f} s")
        return record

    # --- the stages ----------------------------------------------------------------------------

    def run(self) -> Outcome:
        cfg = self.cfg
        # The verdicts stage answers as a server started here would (its quality settings and
        # pixel limit are inputs: changing one answers again); read now, so that a variable the
        # settings refuse stops the command before training, not after it.
        served = Settings()
        train_params = {k: v for k, v in asdict(cfg.train).items()
                        if k not in ("data", "model_name", "model_version", "data_card", "workers",
                                     "cache", "device")}
        models = list(self.files.values())
        self.stage("train", f"training ({cfg.train.epochs} epochs)", train_params, self._train,
                   [self.out / "checkpoint.pt"])
        self.stage("export", "exporting FP32 ONNX",
                   [cfg.train.model_name, cfg.train.model_version], self._export, models[:1])
        self.stage("calibrate", "INT8 flavours (int8-cpu U8S8, int8-trt S8S8)",
                   cfg.calibration_items, self._calibrate, models)
        self.stage("embedding", "embedding head on the training items", None, self._embedding,
                   models)
        self.stage("fusion", "verdict fusion (references: authentic training items)",
                   cfg.fusion_references, self._fusion, models)
        self.stage("gate", "view gate on the validation items, alteration head on the "
                           "training items", [cfg.min_gate_items, cfg.alteration_items,
                                              cfg.alteration_epochs], self._gate, models)
        self.stage("temperature", "confidence temperature on the validation items", None,
                   self._temperature, models)
        self.stage("view_check", "per-view reference check on the validation items", None,
                   self._view_check, models)
        evaluation = self.stage("evaluate", "evaluating on the held-out test items", None,
                                self._evaluate, models)
        verdicts = self.stage("verdicts", "the service's answers: test items with a few "
                                          "references, out-of-distribution submissions",
                              [cfg.fusion_references, cfg.ood_items, "wrong answers",
                               served.quality.model_dump(mode="json"),
                               served.inspection.max_pixels],
                              lambda: self._verdicts(served))
        accepted = self.stage("accept", "acceptance gate and model card",
                              [cfg.thresholds.model_dump(), cfg.force, cfg.command],
                              lambda: self._accept(evaluation, verdicts),
                              [*models, self.out / card.CARD_FILE])
        return Outcome(Acceptance.model_validate(accepted["acceptance"]), self.files,
                       self.out / card.CARD_FILE, self.kept, evaluation["rows"])

    def _train(self) -> dict[str, Any]:
        from authentiq.modelling.training.train import train

        data = self.data  # a photo that cannot be decoded stops here, before OUT is written
        self.ledger.save()  # the version: an interrupted training resumes under the same one
        summary = train(self.cfg.train, self.out, self.progress, data=data)
        history = summary["history"]
        val = summary["validation"]
        return {"epochs": len(history), "final_loss": history[-1]["loss"] if history else None,
                "validation": val,
                "summary": f"validation accuracy {val['accuracy']:.2%}, AUC {val['roc_auc']:.4f}"}

    def _export(self) -> dict[str, Any]:
        from authentiq.modelling.training.export import export_onnx, load_checkpoint

        model, spec, _ = load_checkpoint(self.out / "checkpoint.pt")
        spec = spec.model_copy(update={"model_name": self.cfg.train.model_name,
                                       "model_version": self.cfg.train.model_version})
        export_onnx(model, spec, self.files["fp32"])
        return {"summary": f"{self.files['fp32'].name} ({spec.version_key})"}

    def _calibrate(self) -> dict[str, Any]:
        from authentiq.modelling.calibrate import calibrate

        folders = [it.folder for it in self._items_of("train")]
        step = max(1, len(folders) // self.cfg.calibration_items)
        chosen = folders[::step][:self.cfg.calibration_items]
        calibrate(self.files["fp32"], self.root, self.out, items=chosen, progress=self.progress)
        return {"fitted_on": f"{len(chosen)} of the {len(folders)} training items"
                             + (f" (every {step}th)" if step > 1 else ""),
                "summary": f"calibrated on {len(chosen)} training items"}

    def _embedding(self) -> dict[str, Any]:
        from authentiq.modelling.training.embedding_head import fit_embedding

        counts = fit_embedding([self.files["fp32"], self.files["int8-cpu"], self.files["int8-trt"]],
                               version=self.cfg.train.model_version, tiles=self.data.train)
        return {"fitted_on": f"{int(counts.sum())} training items, {int((counts > 0).sum())} "
                             f"classes (product × authenticity)",
                "summary": f"{int(counts.sum())} items"}

    def _fusion(self) -> dict[str, Any]:
        from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
        from authentiq.modelling.training.fusion import fit, score, write_fusion

        train_set, val_set = self.data.train, self.data.val
        per_product = self.cfg.fusion_references
        refs_ts = train_set.subset(references_per_product(train_set, per_product,
                                                          self.cfg.train.seed))
        backend = OnnxRuntimeBackend(self.files["int8-cpu"])
        try:
            refs, items = score(backend, refs_ts), score(backend, val_set)
        finally:
            backend.close()
        source = (f"{len(val_set)} validation items against {len(refs_ts)} authentic training "
                  f"items as references of their products ({per_product} a product at most, as "
                  f"a deployment enrols them), scored by {self.files['int8-cpu'].name}")
        try:
            params = fit(items, refs, fitted_on=source)
        except np.linalg.LinAlgError as exc:
            return {"skipped": f"the fit did not converge on {len(val_set)} items ({exc})"}
        except ModelContractError as exc:
            return {"skipped": exc.detail}
        for path in self.models:
            write_fusion(path, params)
        return {"fitted_on": source, "summary": f"similarity floor {params.min_similarity}, "
                                                f"band [{params.authentic_below}, "
                                                f"{params.counterfeit_above})"}

    def _gate(self) -> dict[str, Any]:
        from authentiq.modelling.training.gate import fit_gate

        source = f"{len(self.data.val)} validation items of {self.root.name}"
        complete = int(self.data.val.present.all(axis=1).sum())
        if complete < self.cfg.min_gate_items:
            return {"skipped": f"{complete} validation items have every view; the view gate is "
                               f"fitted on at least {self.cfg.min_gate_items} (--min-gate-items)"}
        # the alteration head learns from training items as taken and altered (mirrored,
        # turned, re-saved at JPEG quality 1-5, upscaled, stretched); its thresholds come from
        # the validation items, which it never saw
        altered = [it.folder for it in self._items_of("train")][:self.cfg.alteration_items]
        try:
            params = fit_gate(self.models, tiles=self.data.val, source=source,
                              alteration_items=len(altered), alteration_folders=altered,
                              epochs=self.cfg.alteration_epochs, min_items=self.cfg.min_gate_items)
        except ModelContractError as exc:
            return {"skipped": exc.detail}
        rough = len(self.data.val) < 100
        head = ", alteration head" if params.alteration_thresholds else ", no alteration head"
        return {"fitted_on": params.fitted_on + ("; under 100 items: rough thresholds" if rough else ""),
                "summary": f"fitted on {len(self.data.val)} items{head}" + (" (rough)" if rough else "")}

    def _temperature(self) -> dict[str, Any]:
        from authentiq.modelling.training.temperature import fit

        found = fit(self.models, tiles=self.data.val,
                    source=f"{len(self.data.val)} validation items of {self.root.name}")
        t, before, after = found[self.files["fp32"].name]
        return {"fitted_on": f"{len(self.data.val)} validation items; FP32 temperature {t:.4f}, "
                             f"ECE {before:.4f} → {after:.4f} on them",
                "summary": f"temperature {t:.4f}"}

    def _view_check(self) -> dict[str, Any]:
        from authentiq.modelling.training.view_check import fit_view_check

        if "skipped" in self.ledger.stages.get("gate", {}):
            return {"skipped": "it is built on the view gate's features, and the gate was left out"}
        try:
            params = fit_view_check(self.models, tiles=self.data.val,
                                    source=f"the validation items of {self.root.name}")
        except ModelContractError as exc:
            return {"skipped": exc.detail}
        return {"fitted_on": params.fitted_on, "summary": f"counts {list(params.counts)}"}

    def _test_tiles(self) -> datasets.TileSet:
        """The test items, decoded on first use (by the last stages only)."""
        if self._test is None:
            test = self._items_of("test")
            self.progress.note(f"    decoding {len(test)} test items")
            self._test = datasets.folder_tiles(test, self.cfg.train.views,
                                               self.cfg.train.tile_size, required=(),
                                               workers=self.cfg.train.workers)
        return self._test

    def _evaluate(self) -> dict[str, Any]:
        from authentiq.modelling.model_eval import score_models

        ts = self._test_tiles()
        rows = score_models([self.files[f] for f in ("fp32", "int8-cpu", "int8-trt")], ts,
                            self.progress)
        out = [{"precision": r.precision, "file": r.name, "metrics": _clean(r.metrics.as_dict()),
                "ece_raw": r.ece_raw, "ece_calibrated": r.ece_calibrated, "drift": r.drift}
               for r in rows]
        (self.out / "evaluation.json").write_text(json.dumps(
            {"test_items": len(ts), "rows": out}, indent=1) + "\n")
        fp32 = rows[0].metrics
        return {"rows": out, "test_items": len(ts),
                "summary": f"{len(ts)} test items: AUC {fp32.roc_auc:.4f}, decided accuracy "
                           f"{fp32.decided_accuracy:.2%}, inconclusive {fp32.inconclusive_share:.2%}"}

    def _verdicts(self, settings: Settings) -> dict[str, Any]:
        """What the service answers with the served flavour, gate, fusion and a deployment's few
        references (``fusion_references`` authentic training items a product, drawn afresh): on
        the test items, each claimed as its own product, and on ``ood_items`` submissions that a
        confident answer would be wrong for."""
        from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
        from authentiq.modelling.verdict_eval import (
            ITEM_ALTERATIONS,
            References,
            folder_distractors,
            held_out_verdicts,
            ood_table,
            outcome,
            photo_verdict,
            wrong,
        )

        products = datasets.folder_products(self.items)
        if not products:
            return {"skipped": "the folder names no products (no brand and model columns), so "
                               "no references can be enrolled and nothing is ever authentic"}
        cfg = self.cfg
        chosen = reference_items(self._items_of("train"), cfg.fusion_references, cfg.train.seed)
        views, tile = cfg.train.views, cfg.train.tile_size
        named = [i for i, it in enumerate(self._items_of("test")) if it.brand and it.model]
        if not named:
            return {"skipped": "no test item names both its brand and model, so none can be "
                               "claimed as a product"}
        test = self._test_tiles().subset(np.asarray(named))
        backend = OnnxRuntimeBackend(self.files["int8-cpu"])
        try:
            refs = References.of(backend, datasets.folder_tiles(chosen, views, tile, required=(),
                                                                workers=cfg.train.workers))
            held = held_out_verdicts(backend, test, refs, claims=test.notes,
                                     rows={"service": {}})["service"]
            ood = [outcome(d.kind, photo_verdict(backend, d.views, f"{d.brand}/{d.model}", refs,
                                                 settings.inspection, settings.quality))
                   for d in folder_distractors(cfg.ood_items, OOD_SEED, self._items_of("test"),
                                               tuple(v for v in views
                                                     if v not in cfg.train.optional_views),
                                               cfg.train.workers)]
        finally:
            backend.close()
        figures = held.figures()
        answered = [o for o in ood if wrong(o)]
        authentic = [o for o in ood if o.verdict == "authentic"]
        result = {
            "fitted_on": f"{len(test)} test items against {len(chosen)} authentic training items "
                         f"as references ({cfg.fusion_references} a product at most), "
                         f"{self.files['int8-cpu'].name}; {len(ood)} out-of-distribution "
                         f"submissions (seeds {OOD_SEED:,}+)",
            "held_out": figures,
            "ood": {"items": len(ood), "answered": len(answered),
                    "authentic": sum(o.kind not in ITEM_ALTERATIONS for o in authentic),
                    "altered_authentic": sum(o.kind in ITEM_ALTERATIONS for o in authentic),
                    "table": ood_table(ood) if ood else ""},
        }
        (self.out / "verdicts.json").write_text(json.dumps(result, indent=1) + "\n")
        acc = figures["decided_accuracy"]
        result["summary"] = (f"decided accuracy {'—' if acc is None else f'{acc:.2%}'}, "
                             f"inconclusive {figures['inconclusive_share']:.2%}; "
                             f"{len(answered)} of {len(ood)} out-of-distribution answered "
                             f"wrongly")
        return result

    def _accept(self, evaluation: dict[str, Any], verdicts: dict[str, Any]) -> dict[str, Any]:
        rows = {r["precision"]: r for r in evaluation["rows"]}
        fp32 = rows["fp32"]["metrics"]
        drop = max(fp32["accuracy"] - rows[f]["metrics"]["accuracy"] for f in ("int8-cpu", "int8-trt"))
        figures = Figures(auc=fp32["roc_auc"], accuracy=fp32["accuracy"],
                          decided_accuracy=fp32["decided_accuracy"],
                          inconclusive_share=fp32["inconclusive_share"],
                          ece=rows["fp32"]["ece_calibrated"], int8_drop_points=round(100 * drop, 4),
                          **service_figures(verdicts))
        acceptance = judge(figures, self.cfg.thresholds, force=self.cfg.force,
                           test_items=evaluation["test_items"], dataset=self.root.name,
                           command=self.cfg.command)
        stamp(list(self.files.values()), acceptance)
        counts = self.split.counts(self.items)
        plan = self.split.plan.describe() if self.split.plan else f"pinned in {self.split.source}"
        text = card.render(
            name=self.cfg.train.model_name, version=self.cfg.train.model_version,
            acceptance=acceptance, stages=self.ledger.stages, files=self.files,
            data={"root": str(self.root), "items": len(self.items), "fingerprint": self.dataset,
                  "photos": sum(1 for it in self.items for p in it.folder.iterdir() if p.is_file()),
                  "split": plan, "counts": counts,
                  "products": datasets.folder_products(self.items)})
        (self.out / card.CARD_FILE).write_text(text, encoding="utf-8")
        return {"acceptance": acceptance.model_dump(mode="json"), "summary": acceptance.status}


def service_figures(verdicts: dict[str, Any]) -> dict[str, Any]:
    """The acceptance figures of the verdicts stage's record (none when it was skipped)."""
    if verdicts.get("skipped"):
        return {}
    held, ood = verdicts["held_out"], verdicts["ood"]
    return {"service_decided_accuracy": held["decided_accuracy"],
            "service_inconclusive_share": held["inconclusive_share"],
            "ood_items": ood["items"], "ood_answered": ood["answered"],
            "ood_authentic": ood["authentic"]}


def reference_items(items: Sequence[datasets.LabelledItem], per_product: int,
                    seed: int) -> list[datasets.LabelledItem]:
    """Up to ``per_product`` authentic items of each product, drawn at random (seeded)."""
    rng = np.random.default_rng([seed, 6])
    by_product: dict[str, list[datasets.LabelledItem]] = {}
    for it in items:
        if it.label == 0 and it.brand and it.model:
            by_product.setdefault(it.note.casefold(), []).append(it)
    return [group[i] for _, group in sorted(by_product.items())
            for i in sorted(rng.permutation(len(group))[:per_product])]


def references_per_product(ts: datasets.TileSet, per_product: int, seed: int) -> np.ndarray:
    """Indices of up to ``per_product`` authentic items of each product, drawn at random (seeded).

    The fusion's similarity is the mean of the closest references of the claimed product, and
    its floor a low quantile of genuine items' best similarity: fitted against every authentic
    training item (a hundred a product), a deployment that enrols 5 saw 16% of held-out items
    inconclusive and 22% of genuine ones flagged below the floor; fitted against 5, 6% and 1.4%,
    and serving with more references only lowered both (docs/your-own-model.md)."""
    rng = np.random.default_rng([seed, 5])
    genuine = np.flatnonzero(ts.labels == 0)
    chosen = [rng.permutation(genuine[ts.groups[genuine] == g])[:per_product]
              for g in np.unique(ts.groups[genuine])]
    return np.sort(np.concatenate(chosen)) if chosen else genuine


def _clean(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN (nothing decided) as None, so that the JSON files stay JSON."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in metrics.items()}


def run_workflow(cfg: WorkflowConfig, progress: Progress = SILENT) -> Outcome:
    """Every stage not yet done on these inputs; refuses a folder the split cannot use."""
    if cfg.train.data == "synthetic":
        raise DatasetError("the whole workflow needs a folder of photos (--data DIR)")
    if not cfg.train.model_version:  # the version an earlier run of this folder chose, or a new one
        version = Ledger(cfg.out).get("model_version") or default_version()
        cfg = replace(cfg, train=replace(cfg.train, model_version=version))
    return Workflow(cfg, progress).run()
