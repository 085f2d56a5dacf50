"""Making and checking models: synth, train, export, calibrate, evaluate, fit-* (gate, view
check, temperature, embedding, fusion)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from authentiq.modelling.training.train import TrainConfig

DEFAULTS = TrainConfig()


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
                             clean=args.clean)
    print(f"wrote {args.items} items to {args.out} (labels: {csv_path})")
    return 0

def train(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, train_items=args.train_items, val_items=args.val_items,
                      epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                      seed=args.seed, device=args.device, workers=args.workers, lr=args.lr,
                      model_version=args.model_version, cache=args.cache,
                      val_share=args.val_share, test_share=args.test_share,
                      by_product=args.by_product)
    out = Path(args.out)
    summary = train(cfg, out)
    print(json.dumps(summary["validation"], indent=2))
    if not args.no_export:
        from authentiq.modelling.training.export import export_onnx, load_checkpoint

        model, spec, _ = load_checkpoint(out / "checkpoint.pt")
        path = export_onnx(model, spec, out / "model.onnx")
        print(f"exported {path}")
    return 0

def export(args: argparse.Namespace) -> int:
    from authentiq.modelling.training.export import export_onnx, load_checkpoint

    model, spec, _ = load_checkpoint(Path(args.checkpoint))
    print(f"exported {export_onnx(model, spec, Path(args.out))}")
    return 0

def calibrate(args: argparse.Namespace) -> int:
    from authentiq.modelling.calibrate import calibrate

    outputs = calibrate(Path(args.model), Path(args.data), Path(args.out_dir),
                        max_items=args.max_items)
    for flavour, path in outputs.items():
        print(f"{flavour}: {path}")
    return 0

def evaluate(args: argparse.Namespace) -> int:
    from authentiq.modelling.model_eval import evaluate_models

    table = evaluate_models([Path(m) for m in args.models], items=args.items, data=args.data)
    print(table)
    if args.references or args.no_references or args.ood:
        from authentiq.contract.model_spec import read_spec
        from authentiq.modelling.model_eval import held_out
        from authentiq.modelling.verdict_eval import trust_report

        first = Path(args.models[0])
        spec = read_spec(first)
        ts = held_out(args.items, spec.view_names, spec.tile_size,
                      Path(f"var/heldout-{args.items}.npz"), args.data)
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

    counts = fit([Path(m) for m in args.models], items=args.items, version=args.version,
                 cache=Path(args.cache) if args.cache else None)
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
    refs, n_refs = _scored_references(backend, args.references)
    seeds = range(datasets.FUSION_SEED_BASE, datasets.FUSION_SEED_BASE + args.items)
    items = score(backend, datasets.synthetic_tiles(seeds, spec.view_names, spec.tile_size))
    params = fit(items, refs, k=args.k, fitted_on=(
        f"{args.items} synthetic items (seeds {seeds.start:,}+) against {n_refs} references "
        f"({args.references}), scored by {models[0].name}"))
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
