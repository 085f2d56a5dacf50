"""The ``authentiq`` command line. Each subcommand imports what it needs when it runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from authentiq.errors import AuthentiqError

log = logging.getLogger("authentiq")


def _version(args: argparse.Namespace) -> int:
    from authentiq import __version__

    print(f"authentiq {__version__}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authentiq.api.app import create_app
    from authentiq.settings import Settings

    overrides = {k: v for k, v in (("model_path", args.model), ("database_url", args.database_url))
                 if v is not None}
    settings = Settings(**overrides)
    app = create_app(settings)
    print(f"AuthentiQ serving on http://{args.host}:{args.port}  (API docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=30)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from authentiq.client import inspect_photos

    report = inspect_photos(args.url, args.photos, brand=args.brand, model=args.model,
                            client_ref=args.client_ref, timeout=args.timeout)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    p_fake = report["probabilities"]["counterfeit"]
    print(f"verdict: {report['verdict'].upper()}   (p counterfeit {p_fake:.3f})")
    for reason in report.get("reasons", []):
        print(f"  - {reason['detail']}")
    for q in report.get("views", []):
        state = "ok" if q["usable"] else f"RETAKE: {q['reason']}"
        print(f"  {q['view']:<10} {state}")
    print(f"report: {report['links']['self']}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from authentiq.synthetic import write_dataset

    seeds = range(args.first_seed, args.first_seed + args.items)
    csv_path = write_dataset(Path(args.out), seeds, short_side=args.short_side,
                             quality=args.quality)
    print(f"wrote {args.items} items to {args.out} (labels: {csv_path})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from authentiq.training.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, train_items=args.train_items, val_items=args.val_items,
                      epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                      seed=args.seed, device=args.device, workers=args.workers, lr=args.lr,
                      model_version=args.model_version, cache=args.cache)
    out = Path(args.out)
    summary = train(cfg, out)
    print(json.dumps(summary["validation"], indent=2))
    if not args.no_export:
        from authentiq.training.export import export_onnx, load_checkpoint

        model, spec, _ = load_checkpoint(out / "checkpoint.pt")
        path = export_onnx(model, spec, out / "model.onnx")
        print(f"exported {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from authentiq.training.export import export_onnx, load_checkpoint

    model, spec, _ = load_checkpoint(Path(args.checkpoint))
    print(f"exported {export_onnx(model, spec, Path(args.out))}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from authentiq.calibrate import calibrate

    outputs = calibrate(Path(args.model), Path(args.data), Path(args.out_dir),
                        max_items=args.max_items)
    for flavour, path in outputs.items():
        print(f"{flavour}: {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from authentiq.model_eval import evaluate_models

    table = evaluate_models([Path(m) for m in args.models], items=args.items, data=args.data)
    print(table)
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from authentiq.api.app import create_app
    from authentiq.settings import Settings

    text = json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def _build_engine(args: argparse.Namespace) -> int:
    import dataclasses

    from authentiq.backends.select import build_options, usable_gpu
    from authentiq.backends.tensorrt_lib import import_tensorrt
    from authentiq.engine_build import NO_GPU, load_or_build
    from authentiq.errors import BackendUnavailable
    from authentiq.settings import Settings

    given = {"tensorrt_model_path": args.model, "engine_dir": args.engine_dir,
             "max_batch_size": args.max_batch, "trt_workspace_mib": args.workspace_mib,
             "trt_optimization_level": args.opt_level,
             "trt_hardware_compatibility": args.hardware_compat,
             "trt_version_compatible": args.version_compat, "tensorrt_flavour": args.flavour}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    options = build_options(settings)
    if args.opt_batch is not None:
        options = dataclasses.replace(options, opt_batch=args.opt_batch)
    trt = import_tensorrt(None if settings.tensorrt_flavour == "auto" else settings.tensorrt_flavour)
    try:
        gpu = usable_gpu(settings.gpu_index).label
    except BackendUnavailable as exc:
        print(f"no GPU ({exc.detail}); building ahead of time", file=sys.stderr)
        gpu = NO_GPU
    engine = load_or_build(settings.tensorrt_model_path, settings.engine_dir, trt, gpu, options,
                           force=args.force)
    state = "built" if engine.built else "cache hit"
    print(f"{state}: {engine.path} ({len(engine.plan) / 1e6:.1f} MB, {engine.seconds:.1f} s)")
    print(f"  {trt.flavour} {trt.version} · GPU: {gpu} · key {engine.key[:16]}")
    profile = engine.fields["profile"]
    print(f"  profile batch {profile['min'][0]}/{profile['opt'][0]}/{profile['max'][0]} "
          f"(min/opt/max) · options {engine.fields['options']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="authentiq", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("version", help="print the version").set_defaults(func=_version)

    s = sub.add_parser("serve", help="run the HTTP service (settings from AUTHENTIQ_* env)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--model", help="ONNX model (default: AUTHENTIQ_MODEL_PATH or the shipped one)")
    s.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./var)")
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=_serve)

    o = sub.add_parser("openapi", help="print (or --out write) the OpenAPI document")
    o.add_argument("--out")
    o.set_defaults(func=_openapi)

    i = sub.add_parser("inspect", help="send photos to a running server and print the verdict")
    i.add_argument("photos", nargs="+", metavar="VIEW=PHOTO",
                   help="e.g. logo=logo.jpg (a bare path uses its file name as the view)")
    i.add_argument("--brand", required=True)
    i.add_argument("--model", required=True)
    i.add_argument("--client-ref")
    i.add_argument("--url", default="http://127.0.0.1:8000")
    i.add_argument("--timeout", type=float, default=60.0)
    i.add_argument("--json", action="store_true", help="print the whole report as JSON")
    i.set_defaults(func=_inspect)

    g = sub.add_parser("synth", help="write synthetic items in the training folder layout")
    g.add_argument("--out", required=True)
    g.add_argument("--items", type=int, default=100)
    g.add_argument("--first-seed", type=int, default=0)
    g.add_argument("--short-side", type=int, help="scale photos down to this short side")
    g.add_argument("--quality", type=int, default=90, help="JPEG quality with --short-side")
    g.set_defaults(func=_synth)

    t = sub.add_parser("train", help="train a model (needs the [train] extra)")
    t.add_argument("--data", default="synthetic",
                   help="'synthetic' or a folder of photos in the documented layout")
    t.add_argument("--out", required=True, help="output folder (checkpoint, log, model.onnx)")
    t.add_argument("--train-items", type=int, default=12000, help="synthetic only")
    t.add_argument("--val-items", type=int, default=1500, help="synthetic only")
    t.add_argument("--epochs", type=int, default=160)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--workers", type=int)
    t.add_argument("--model-version", default="0.1.0")
    t.add_argument("--cache", help="folder keeping decoded synthetic tiles between runs")
    t.add_argument("--no-export", action="store_true")
    t.set_defaults(func=_train)

    e = sub.add_parser("export", help="checkpoint → ONNX (needs the [train] extra)")
    e.add_argument("checkpoint")
    e.add_argument("out")
    e.set_defaults(func=_export)

    c = sub.add_parser("calibrate", help="INT8 calibration: one pass, TensorRT and CPU flavours")
    c.add_argument("--model", required=True, help="the FP32 ONNX model")
    c.add_argument("--data", default="calibration_data", help="folder of item folders")
    c.add_argument("--out-dir", default="engines")
    c.add_argument("--max-items", type=int)
    c.set_defaults(func=_calibrate)

    v = sub.add_parser("evaluate", help="accuracy of ONNX models on held-out items")
    v.add_argument("models", nargs="+")
    v.add_argument("--items", type=int, default=2000, help="held-out synthetic items")
    v.add_argument("--data", help="a folder of labelled items instead of synthetic ones")
    v.set_defaults(func=_evaluate)

    b = sub.add_parser("build-engine", help="build (or find cached) the TensorRT engine plan; "
                                            "needs the [tensorrt] or [tensorrt-rtx] extra")
    b.add_argument("--model", type=Path, help="TensorRT-flavour ONNX (default: the shipped int8-trt)")
    b.add_argument("--engine-dir", type=Path, help="where plans and timing caches live (engines/)")
    b.add_argument("--flavour", choices=["auto", "tensorrt", "tensorrt_rtx"])
    b.add_argument("--max-batch", type=int, help="profile max batch (AUTHENTIQ_MAX_BATCH_SIZE)")
    b.add_argument("--opt-batch", type=int, help="profile optimum (largest preferred batch size)")
    b.add_argument("--workspace-mib", type=int)
    b.add_argument("--opt-level", type=int, choices=range(6), help="builder optimisation level")
    b.add_argument("--hardware-compat", choices=["none", "ampere_plus", "same_compute_capability"])
    b.add_argument("--version-compat", action="store_true", default=None)
    b.add_argument("--force", action="store_true", help="rebuild even when the cache matches")
    b.set_defaults(func=_build_engine)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except AuthentiqError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
