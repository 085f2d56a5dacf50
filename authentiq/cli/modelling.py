"""Making and checking models: synth, train, export, calibrate, evaluate, fit-* (gate, view
check, temperature, embedding, fusion)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from authentiq.cli.progress import progress_for
from authentiq.errors import DatasetError
from authentiq.modelling.training.train import TrainConfig

DEFAULTS = TrainConfig()
SYNTHETIC_CARD = "Procedurally generated photos"  # how a model trained on synthetic items says so
TRAIN_EPILOG = """\
On a folder (--data DIR), one command makes a complete model in OUT: training, FP32 ONNX, both
INT8 flavours (calibrated on training items), the embedding head, the verdict fusion (authentic
training items as references), the view gate, the confidence temperature and the per-view check
(on validation items), the evaluation on the held-out test items, MODEL_CARD.md and the
acceptance gate. Finished stages are recorded in OUT/stages.json and kept when the same command
runs again; an interrupted training resumes from its last epoch.

exit status: 0 accepted (or forced), 1 refused by the acceptance gate, 2 an error
"""


def fraction(text: str) -> float:
    """A threshold between 0 and 1 (0.97), or a percentage (97%)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 0.95 or 95%") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must lie between 0 and 1 (or 0% and 100%)")
    return value


def share(text: str) -> float:
    """A share of the items for --val-share / --test-share: 0 < x < 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 0.15") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{text} must lie between 0 and 0.5 (e.g. 0.15)")
    return value


def add_split_options(p: argparse.ArgumentParser) -> None:
    """The split's options, shared by `dataset check` and `train` (one split, one meaning)."""
    p.add_argument("--val-share", type=share, default=DEFAULTS.val_share,
                   help="share of the items held out for validation (folder only)")
    p.add_argument("--test-share", type=share, default=DEFAULTS.test_share,
                   help="share of the items held out for the final test (folder only)")
    p.add_argument("--by-product", action="store_true",
                   help="split whole products, not items: the test then scores products the "
                        "model never saw (folder only)")


def synth(args: argparse.Namespace) -> int:
    from authentiq.modelling.synthetic import write_dataset

    seeds = range(args.first_seed, args.first_seed + args.items)
    csv_path = write_dataset(Path(args.out), seeds, short_side=args.short_side,
                             quality=args.quality, genuine=args.genuine, balanced=args.balanced,
                             clean=args.clean, workers=args.workers)
    print(f"wrote {args.items} items to {args.out} (labels: {csv_path})")
    return 0

def model_name_for(out: Path) -> str:
    """The default model name: the output folder's name, in characters a name keeps."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("-.")
    return name or "model"


def train(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.train import TrainConfig, train
    from authentiq.modelling.workflow.run import default_version

    out = Path(args.out)
    cfg = TrainConfig(data=args.data, train_items=args.train_items, val_items=args.val_items,
                      epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                      seed=args.seed, device=args.device, workers=args.workers, lr=args.lr,
                      model_name=args.model_name or model_name_for(out),
                      model_version=args.model_version or "", cache=args.cache,
                      val_share=args.val_share, test_share=args.test_share,
                      by_product=args.by_product)
    progress = progress_for(args.quiet)
    if args.data != "synthetic" and not args.no_export:
        return _workflow(args, cfg, progress)
    cfg = replace(cfg, model_version=cfg.model_version or default_version())
    summary = train(cfg, out, progress)
    print(json.dumps(summary["validation"], indent=2))
    if not args.no_export:
        from authentiq.modelling.training.export import export_onnx, load_checkpoint

        model, spec, _ = load_checkpoint(out / "checkpoint.pt")
        path = export_onnx(model, spec, out / "model.onnx")
        print(f"exported {path}")
    return 0


def _workflow(args: argparse.Namespace, cfg: Any, progress: Any) -> int:
    """The whole chain on a folder; exit 1 when the acceptance gate refuses the model."""
    from authentiq.modelling.workflow.acceptance import AcceptanceThresholds
    from authentiq.modelling.workflow.run import WorkflowConfig, run_workflow

    thresholds = AcceptanceThresholds(min_auc=args.min_auc, min_decided_accuracy=args.min_accuracy,
                                      max_int8_drop_points=args.max_int8_drop,
                                      min_service_accuracy=args.min_service_accuracy,
                                      max_ood_answered=args.max_ood_answered,
                                      max_ood_authentic=args.max_ood_authentic)
    command = "authentiq " + shlex.join(args.argv) if getattr(args, "argv", None) else ""
    started = time.perf_counter()
    outcome = run_workflow(WorkflowConfig(cfg, Path(args.out), thresholds, force=args.force,
                                          calibration_items=args.calibration_items,
                                          min_gate_items=args.min_gate_items,
                                          alteration_items=args.alteration_items,
                                          fusion_references=args.fusion_references,
                                          ood_items=args.ood_items, command=command), progress)
    acc = outcome.acceptance
    f = acc.figures
    decided = "nothing decided" if f.decided_accuracy is None else f"{f.decided_accuracy:.2%}"
    print(f"test ({acc.test_items} items): AUC {f.auc:.4f}, decided accuracy {decided}, "
          f"inconclusive {f.inconclusive_share:.2%}, ECE {f.ece:.4f}, INT8 drop "
          f"{f.int8_drop_points:.2f} points")
    if f.service_inconclusive_share is not None:
        service = ("nothing decided" if f.service_decided_accuracy is None
                   else f"{f.service_decided_accuracy:.2%}")
        print(f"service's answers: decided accuracy {service}, inconclusive "
              f"{f.service_inconclusive_share:.2%}; out-of-distribution: {f.ood_answered} of "
              f"{f.ood_items} answered wrongly, {f.ood_authentic} authentic")
    for flavour, path in outcome.files.items():
        print(f"{flavour}: {path}")
    print(f"model card: {outcome.card}")
    if outcome.kept:
        print(f"kept from an earlier run: {', '.join(outcome.kept)}")
    seconds = time.perf_counter() - started
    if acc.forced:
        print(f"FORCED: the model failed the acceptance gate ({'; '.join(acc.failed)}) and was "
              f"let through by --force ({seconds:.0f} s)")
        return 0
    if not acc.passed:
        print(f"REFUSED: {'; '.join(acc.failed)} (thresholds: --min-auc, --min-accuracy, "
              f"--max-int8-drop, --min-service-accuracy, --max-ood-answered, "
              f"--max-ood-authentic; --force to accept anyway)", file=sys.stderr)
        return 1
    print(f"ACCEPTED ({seconds:.0f} s)")
    return 0

def export(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.export import export_onnx, load_checkpoint

    model, spec, _ = load_checkpoint(Path(args.checkpoint))
    print(f"exported {export_onnx(model, spec, Path(args.out))}")
    return 0

def calibrate(args: argparse.Namespace) -> int:
    from authentiq.modelling.calibrate import calibrate

    outputs = calibrate(Path(args.model), Path(args.data), Path(args.out_dir),
                        max_items=args.max_items, progress=progress_for(args.quiet))
    for flavour, path in outputs.items():
        print(f"{flavour}: {path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from authentiq.contract.model_spec import read_spec
    from authentiq.modelling import datasets
    from authentiq.modelling.model_eval import evaluate_models, folder_test_items, held_out

    first = Path(args.models[0])
    spec = read_spec(first)
    progress = progress_for(args.quiet)
    ts = None
    if args.data:
        items, said = folder_test_items(Path(args.data), Path(args.splits) if args.splits else None,
                                        every=args.all_items)
        print(said)
        ts = datasets.folder_tiles(items, spec.view_names, spec.tile_size, required=())
    elif args.splits:
        raise DatasetError("--splits names the test items of a folder: give the folder with --data")
    elif not spec.data_card.startswith(SYNTHETIC_CARD):
        print(f"warning: {first.name} was trained on {spec.data_card!r}; scoring it on synthetic "
              f"items says little about how it does on those photos: give them with --data",
              file=sys.stderr)
    print(evaluate_models([Path(m) for m in args.models], items=args.items, tiles=ts,
                          progress=progress))
    if args.references or args.no_references or args.ood:
        from authentiq.modelling.verdict_eval import trust_report

        if ts is None:
            ts = held_out(args.items, spec.view_names, spec.tile_size,
                          Path(f"var/heldout-{args.items}.npz"))
        print()
        print(trust_report(first, ts, Path(args.references) if args.references else None,
                           ood=args.ood, plots=Path(args.plots) if args.plots else None,
                           first_seed=args.ood_seed,
                           kinds=tuple(args.ood_kinds.split(",")) if args.ood_kinds else None))
    return 0


def fit_gate(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.gate import fit_gate as fit

    params = fit([Path(m) for m in args.models], items=args.items, quantile=args.quantile,
                 data=args.data, cache=Path(args.cache) if args.cache else None,
                 alteration_items=args.alteration_items, epochs=args.epochs,
                 alteration_quantile=args.alteration_quantile)
    print(json.dumps(params.model_dump(), indent=2))
    return 0


def fit_view_check(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.view_check import fit_view_check as fit

    params = fit([Path(m) for m in args.models], items=args.items, data=args.data,
                 cache=Path(args.cache) if args.cache else None, quantile=args.quantile,
                 loose_quantile=args.loose_quantile, margin_quantile=args.margin_quantile,
                 draws=args.draws, components=args.components, shrinkage=args.shrinkage)
    print(json.dumps(params.model_dump(), indent=2))
    return 0


def fit_temperature(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.temperature import fit

    for name, (t, before, after) in fit([Path(m) for m in args.models], items=args.items,
                                        cache=Path(args.cache) if args.cache else None,
                                        data=args.data).items():
        print(f"{name}: temperature {t:.4f}; ECE on the fit items {before:.4f} → {after:.4f}")
    return 0


def fit_embedding(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.embedding_head import fit_embedding as fit

    tiles = None
    if args.data:
        from authentiq.contract.model_spec import read_spec
        from authentiq.modelling import datasets

        spec = read_spec(Path(args.models[0]))
        tiles = datasets.folder_tiles(datasets.folder_items(Path(args.data)), spec.view_names,
                                      spec.tile_size, required=())
    counts = fit([Path(m) for m in args.models], items=args.items, version=args.version,
                 cache=Path(args.cache) if args.cache else None, tiles=tiles)
    print(f"fitted on {int(counts.sum())} items ({len(counts)} classes); wrote version "
          f"{args.version} into {', '.join(args.models)}")
    return 0


def _scored_references(backend: Any, folder: str) -> Any:
    """Score a reference folder, grouped like synthetic items (catalogue order)."""
    import numpy as np

    from authentiq.modelling import datasets
    from authentiq.modelling.synthetic import CATALOG, find_spec
    from authentiq.modelling.training.fusion import score

    spec = backend.spec
    refs = datasets.folder_tiles(datasets.folder_items(Path(folder)), spec.view_names,
                                 spec.tile_size, required=())
    refs.groups = np.asarray([CATALOG.index(find_spec(*n.split("/", 1))) for n in refs.notes])
    return score(backend, refs), len(refs)


def fit_fusion(args: argparse.Namespace) -> int:
    from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
    from authentiq.modelling import datasets
    from authentiq.modelling.training.fusion import fit, score, write_fusion

    models = [Path(m) for m in args.models]
    backend = OnnxRuntimeBackend(models[0])
    spec = backend.spec
    if args.data:  # a folder of labelled items, its products numbered as the references' are
        refs_ts = datasets.folder_tiles(datasets.folder_items(Path(args.references)),
                                        spec.view_names, spec.tile_size, required=())
        items_ts = datasets.folder_tiles(datasets.folder_items(Path(args.data)), spec.view_names,
                                         spec.tile_size, required=())
        datasets.same_products(refs_ts, items_ts)
        refs, n_refs, items = score(backend, refs_ts), len(refs_ts), score(backend, items_ts)
        source = f"{len(items_ts)} items of {args.data}"
    else:
        refs, n_refs = _scored_references(backend, args.references)
        seeds = range(datasets.FUSION_SEED_BASE, datasets.FUSION_SEED_BASE + args.items)
        items = score(backend, datasets.synthetic_tiles(seeds, spec.view_names, spec.tile_size))
        source = f"{args.items} synthetic items (seeds {seeds.start:,}+)"
    params = fit(items, refs, k=args.k, fitted_on=(
        f"{source} against {n_refs} references ({args.references}), scored by {models[0].name}"))
    for path in models:
        write_fusion(path, params)
    print(json.dumps(params.model_dump(), indent=2))
    return 0


def evaluate_fusion(args: argparse.Namespace) -> int:
    from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
    from authentiq.modelling.model_eval import held_out
    from authentiq.modelling.training.fusion import evaluate_fusion as evaluate
    from authentiq.modelling.training.fusion import score

    backend = OnnxRuntimeBackend(Path(args.model))
    spec = backend.spec
    refs, _ = _scored_references(backend, args.references)
    items = held_out(args.items, spec.view_names, spec.tile_size,
                     cache=Path(f"var/heldout-{args.items}.npz"))
    print(evaluate(spec, score(backend, items), refs).table())
    return 0
