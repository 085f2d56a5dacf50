"""The ``authentiq`` command line. Each subcommand imports what it needs when it runs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from authentiq import __version__
from authentiq.cli import (
    datasets,
    deploy,
    keys,
    modelling,
    models,
    products,
    references,
    serving,
    tenants,
    training_data,
)
from authentiq.cli.parsing import (
    Parser,
    count,
    describe_subcommands,
    positive_float,
    positive_int,
)
from authentiq.errors import AuthentiqError

log = logging.getLogger("authentiq")
DESCRIPTION = """\
AuthentiQ: counterfeit detection for luxury goods. Serve the API, the kiosk and the
auditor pages; inspect items; manage keys, tenants and references; make and check models.
"""
EPILOG = """\
first steps:
  authentiq serve                                   # http://127.0.0.1:8000/ (kiosk, review, API docs)
  authentiq synth --out /tmp/items --items 2        # two synthetic items to try
  authentiq inspect /tmp/items/item-0000001/*.jpg --brand Castellan --model Riva

`authentiq COMMAND --help` describes each command; settings come from AUTHENTIQ_* variables
(README.md, "Configuration").
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="authentiq", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"authentiq {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("version", help="print the version").set_defaults(func=serving.version)

    s = sub.add_parser("serve", help="run the HTTP service (settings from AUTHENTIQ_* env)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface)")
    s.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    s.add_argument("--model", help="ONNX model (default: AUTHENTIQ_MODEL_PATH or the shipped one)")
    s.add_argument("--database-url", help="SQLAlchemy URL (default: AUTHENTIQ_DATABASE_URL, else "
                                          "SQLite in the data folder, AUTHENTIQ_DATA_DIR)")
    s.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug", "trace"],
                   help="uvicorn's and AuthentiQ's log level")
    s.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes on this port (default: one per available CPU, each "
                        "with its share of the threads; 1: a single process; several hosts "
                        "share a PostgreSQL database: docs/deployment.md)")
    s.set_defaults(func=serving.serve)

    o = sub.add_parser("openapi", help="print (or --out write) the OpenAPI document")
    o.add_argument("--out", help="file to write (default: print to standard output)")
    o.set_defaults(func=serving.openapi)

    rs = sub.add_parser("report-schema", help="write the report's JSON Schema (refuses an "
                                              "unbumped change)")
    rs.add_argument("--out-dir", default="api_schemas", help="folder of the versioned schemas")
    rs.set_defaults(func=serving.report_schema)

    au = sub.add_parser("audit", help="the review log")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    av = au_sub.add_parser("verify", help="check the hash chain of every review (exit 1 if tampered)")
    av.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
    av.set_defaults(func=serving.audit_verify)

    i = sub.add_parser("inspect", help="send photos to a running server and print the verdict")
    i.add_argument("photos", nargs="+", metavar="VIEW=PHOTO",
                   help="e.g. logo=logo.jpg (a bare path uses its file name as the view)")
    i.add_argument("--brand", required=True, help="the claimed brand, e.g. Castellan")
    i.add_argument("--model", required=True, help="the claimed model, e.g. Riva")
    i.add_argument("--client-ref", help="your own id for the item (kept on the report)")
    i.add_argument("--url", default=os.environ.get("AUTHENTIQ_URL", "http://127.0.0.1:8000"),
                   help="the AuthentiQ server (AUTHENTIQ_URL)")
    i.add_argument("--api-key", help="a key with the submit scope (default: AUTHENTIQ_API_KEY; "
                                     "needed once the server has keys)")
    i.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the verdict")
    i.add_argument("--json", action="store_true", help="print the whole report as JSON")
    i.set_defaults(func=serving.inspect)

    g = sub.add_parser("synth", help="write synthetic items in the training folder layout")
    g.add_argument("--out", required=True, help="folder to write (labels.csv + one folder per item)")
    g.add_argument("--items", type=int, default=100, help="how many items")
    g.add_argument("--first-seed", type=int, default=0,
                   help="seed of the first item (item N is always the same photos)")
    g.add_argument("--short-side", type=int, help="scale photos down to this short side")
    g.add_argument("--quality", type=int, default=90, help="JPEG quality with --short-side")
    g.add_argument("--genuine", action="store_true", help="only genuine items (a reference set)")
    g.add_argument("--balanced", action="store_true", help="cycle through the products in order")
    g.add_argument("--clean", action="store_true",
                   help="skip items the quality check would refuse (more seeds are taken)")
    g.add_argument("--workers", type=positive_int,
                   help="processes drawing items (default: one per CPU; the folder is the same)")
    g.set_defaults(func=modelling.synth)

    t = sub.add_parser("train", help="train a model (needs the [train] extra); on a folder, the "
                                     "whole chain to three gated flavours and a model card",
                       epilog=modelling.TRAIN_EPILOG)
    t.add_argument("--data", default="synthetic",
                   help="a folder of photos in the documented layout (the whole workflow), or "
                        "'synthetic' (training and FP32 export only)")
    t.add_argument("--out", required=True,
                   help="output folder; run the same command again to resume it")
    t.add_argument("--train-items", type=positive_int, default=12000, help="synthetic only")
    t.add_argument("--val-items", type=positive_int, default=1500, help="synthetic only")
    t.add_argument("--epochs", type=positive_int, default=160, help="passes over the training items")
    t.add_argument("--batch-size", type=positive_int, default=128, help="items per training step")
    t.add_argument("--lr", type=positive_float, default=3e-3, help="peak learning rate")
    t.add_argument("--width", type=positive_int, default=32, help="channels of the network's first stage")
    t.add_argument("--seed", type=int, default=0, help="random seed (splits, initialisation)")
    modelling.add_split_options(t)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--workers", type=positive_int,
                   help="data-loading processes (default: from the CPU count)")
    t.add_argument("--model-name", help="name written into the model (default: the --out "
                                        "folder's name)")
    t.add_argument("--model-version",
                   help="version written into the model (default: the UTC date and time the first "
                        "run started, e.g. 2026.12.01-114135; a resumed run keeps its version)")
    t.add_argument("--cache", help="folder keeping decoded synthetic tiles between runs")
    t.add_argument("--no-export", action="store_true",
                   help="stop after training: the checkpoint only (no ONNX, no later stage)")
    t.add_argument("--calibration-items", type=int, default=128,
                   help="training items calibrating the INT8 flavours (folder only)")
    t.add_argument("--min-gate-items", type=int, default=20, metavar="N",
                   help="validation items (with every view) the view gate is fitted on at least; "
                        "with fewer it is left out, and the model card says so (folder only)")
    t.add_argument("--fusion-references", type=positive_int, default=5, metavar="K",
                   help="genuine references a product the verdict fusion is fitted against: the "
                        "fewest you will enrol for a product (more lowers false flags; fewer "
                        "raises them) (folder only)")
    t.add_argument("--alteration-items", type=count, default=1500, metavar="N",
                   help="training items (with every view) the view gate's alteration head learns "
                        "mirrored, turned and degraded photos from; 0 leaves it out (folder only)")
    t.add_argument("--min-auc", type=modelling.fraction, default=0.95,
                   help="acceptance: least test ROC AUC (folder only)")
    t.add_argument("--min-accuracy", type=modelling.fraction, default=0.97,
                   help="acceptance: least test accuracy on decided items, outside the "
                        "inconclusive band (folder only)")
    t.add_argument("--max-int8-drop", type=float, default=1.0, metavar="POINTS",
                   help="acceptance: most test accuracy an INT8 flavour may lose against FP32, "
                        "in percentage points (folder only)")
    t.add_argument("--min-service-accuracy", type=modelling.fraction, default=0.97,
                   help="acceptance: least accuracy of the service's decided answers on the test "
                        "items (served flavour, view gate, a few references a product) (folder "
                        "only)")
    t.add_argument("--ood-items", type=count, default=240, metavar="N",
                   help="out-of-distribution submissions the service must not answer: noise, "
                        "documents, objects ... and test items' photos submitted wrongly; 0 "
                        "leaves them out (folder only)")
    t.add_argument("--max-ood-answered", type=modelling.fraction, default=0.01,
                   help="acceptance: most share of those answered wrongly: any verdict on a "
                        "non-product, mixed-up or foreign view, counterfeit on a genuine item's "
                        "own altered photo (folder only)")
    t.add_argument("--max-ood-authentic", type=modelling.fraction, default=0.0,
                   help="acceptance: most share of those answered authentic, a genuine item's "
                        "own altered photo aside (folder only)")
    t.add_argument("--force", action="store_true",
                   help="accept a model that fails a threshold (recorded as forced)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    t.set_defaults(func=modelling.train)

    e = sub.add_parser("export", help="checkpoint → ONNX (needs the [train] extra)")
    e.add_argument("checkpoint", help="checkpoint.pt written by `authentiq train`")
    e.add_argument("out", help="the ONNX file to write")
    e.set_defaults(func=modelling.export)

    c = sub.add_parser("calibrate", help="INT8 calibration: one pass, TensorRT and CPU flavours")
    c.add_argument("--model", required=True, help="the FP32 ONNX model")
    c.add_argument("--data", default="calibration_data", help="folder of item folders")
    c.add_argument("--out-dir", default="engines", help="where the INT8 flavours are written")
    c.add_argument("--max-items", type=int, help="use at most this many items (default: all)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    c.set_defaults(func=modelling.calibrate)

    v = sub.add_parser("evaluate", help="accuracy of ONNX models on held-out items")
    v.add_argument("models", nargs="+", help="ONNX models to compare")
    v.add_argument("--items", type=int, default=2000, help="held-out synthetic items")
    v.add_argument("--data", help="a folder of labelled items instead of synthetic ones; with a "
                                  "split (--splits, or the folder's splits.json) only its test "
                                  "items")
    v.add_argument("--splits", metavar="FILE",
                   help="the split training used (OUT/splits.json): score its test items only")
    v.add_argument("--all-items", action="store_true",
                   help="score every item of --data, whatever a split says")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    v.add_argument("--references", metavar="DIR",
                   help="also the service's verdicts (view gate, references, fusion) for the first "
                        "model against this folder of genuine references, e.g. reference_data/items")
    v.add_argument("--no-references", action="store_true",
                   help="also the service's verdicts for the first model with no references")
    v.add_argument("--ood", type=int, default=0, metavar="N",
                   help="also N out-of-distribution submissions (noise, blank frames, documents, "
                        "textures, objects, scene crops, swapped and duplicated views)")
    v.add_argument("--ood-seed", type=int, default=0, help="first distractor seed")
    v.add_argument("--ood-kinds", metavar="K1,K2",
                   help="only these distractor kinds, cycled (e.g. the alterations: mirrored_view,"
                        "turned_view,upside_down,degraded_view,foreign_view)")
    v.add_argument("--plots", metavar="DIR", help="write the reliability diagram (PNG) here")
    v.set_defaults(func=modelling.evaluate)

    g = sub.add_parser("fit-gate", help="fit the view gate (out-of-distribution, wrong, "
                                        "duplicated and altered views) and write it into the models")
    g.add_argument("models", nargs="+", help="every flavour of one model; the first is scored")
    g.add_argument("--items", type=int, default=2000, help="synthetic items")
    g.add_argument("--data", help="a folder of labelled items instead of synthetic ones")
    g.add_argument("--quantile", type=float, default=0.998,
                   help="in-distribution quantile a view's threshold is set at")
    g.add_argument("--cache", help="file keeping the generated items between runs (.npz)")
    g.add_argument("--alteration-items", type=int, default=1500, metavar="N",
                   help="synthetic items, as taken and altered (mirrored, turned, compressed, "
                        "upscaled, stretched), that train the alteration head; needs the [train] "
                        "extra; 0 leaves the head out")
    g.add_argument("--epochs", type=int, default=12, help="alteration head epochs")
    g.add_argument("--alteration-quantile", type=float, default=0.9995,
                   help="quantile of untouched photos' alteration logits a view's thresholds are "
                        "set at")
    g.set_defaults(func=modelling.fit_gate)

    x = sub.add_parser("fit-view-check", help="fit the per-view reference check (each photo "
                                              "against the same view of the claimed product's "
                                              "references) and write it into the models; after "
                                              "fit-gate")
    x.add_argument("models", nargs="+", help="every flavour of one model (each fitted on its own)")
    x.add_argument("--items", type=int, default=1200, help="genuine synthetic items")
    x.add_argument("--data", help="a folder of labelled items (with brand and model) instead of "
                                  "synthetic ones; its genuine items are used")
    x.add_argument("--cache", help="file keeping the generated items between runs (.npz)")
    x.add_argument("--quantile", type=float, default=0.0005,
                   help="quantile of genuine photos' similarity a view's floor is set at")
    x.add_argument("--loose-quantile", type=float, default=0.1,
                   help="below this quantile a photo is also compared with other products")
    x.add_argument("--margin-quantile", type=float, default=0.999,
                   help="quantile of genuine photos' (other product − own) similarity margin")
    x.add_argument("--draws", type=int, default=10,
                   help="random reference sets per reference count")
    x.add_argument("--components", type=int, default=32,
                   help="within-product directions whitened one by one (the rest as one)")
    x.add_argument("--shrinkage", type=float, default=0.1,
                   help="share of the within-product scatter shrunk towards isotropic")
    x.set_defaults(func=modelling.fit_view_check)

    r = sub.add_parser("fit-temperature", help="fit the confidence calibration (temperature) "
                                               "and write it into the models")
    r.add_argument("models", nargs="+", help="every flavour of one model (each fitted on its own)")
    r.add_argument("--items", type=int, default=2000, help="synthetic items")
    r.add_argument("--data", help="a folder of labelled items the model was not trained on, "
                                  "instead of synthetic ones")
    r.add_argument("--cache", help="file keeping the generated items between runs (.npz)")
    r.set_defaults(func=modelling.fit_temperature)

    f = sub.add_parser("fit-embedding", help="fit the embedding head for reference search "
                                             "(needs the [train] extra); rewrites the models")
    f.add_argument("models", nargs="+", help="every flavour of one model; the first is scored")
    f.add_argument("--version", required=True, help="new model version (embeddings change)")
    f.add_argument("--items", type=int, default=3000, help="synthetic items to fit on")
    f.add_argument("--data", help="a folder of labelled items (classes: brand/model × label) "
                                  "instead of synthetic ones, e.g. your training items")
    f.add_argument("--cache", help="file keeping the pooled features between runs")
    f.set_defaults(func=modelling.fit_embedding)

    u = sub.add_parser("fit-fusion", help="fit the verdict fusion against a reference set; "
                                          "writes it into the models")
    u.add_argument("models", nargs="+", help="every flavour of one model; the first is scored")
    u.add_argument("--references", default="reference_data/items",
                   help="folder of genuine reference items (labels.csv + item folders)")
    u.add_argument("--items", type=int, default=3000, help="synthetic items to fit on")
    u.add_argument("--data", help="a folder of labelled items the model was not trained on, with "
                                  "brand and model as --references has them, instead of "
                                  "synthetic ones")
    u.add_argument("--k", type=int, default=5, help="closest references averaged")
    u.set_defaults(func=modelling.fit_fusion)

    w = sub.add_parser("evaluate-fusion", help="classifier alone vs fused with references, on "
                                               "held-out items")
    w.add_argument("model", help="the ONNX model")
    w.add_argument("--references", default="reference_data/items",
                   help="folder of genuine reference items (labels.csv + item folders)")
    w.add_argument("--items", type=int, default=2000, help="held-out synthetic items")
    w.set_defaults(func=modelling.evaluate_fusion)

    references.add_parsers(sub)
    products.add_parsers(sub)
    models.add_parsers(sub)
    datasets.add_parsers(sub)
    training_data.add_parsers(sub)
    keys.add_parsers(sub)
    tenants.add_parsers(sub)
    deploy.add_parsers(sub)

    b = sub.add_parser("build-engine", help="build (or find cached) the TensorRT engine plan; "
                                            "needs the [tensorrt] or [tensorrt-rtx] extra")
    b.add_argument("--model", type=Path, help="TensorRT-flavour ONNX (default: the shipped int8-trt)")
    b.add_argument("--engine-dir", type=Path, help="where plans and timing caches live (engines/)")
    b.add_argument("--flavour", choices=["auto", "tensorrt", "tensorrt_rtx"],
                   help="which TensorRT (default: AUTHENTIQ_TENSORRT_FLAVOUR, auto: whichever imports)")
    b.add_argument("--max-batch", type=int, help="profile max batch (default: AUTHENTIQ_MAX_BATCH_SIZE)")
    b.add_argument("--opt-batch", type=int, help="profile optimum (default: the largest preferred "
                                                 "batch size)")
    b.add_argument("--workspace-mib", type=int, help="builder workspace in MiB "
                                                     "(default: AUTHENTIQ_TRT_WORKSPACE_MIB)")
    b.add_argument("--opt-level", type=int, choices=range(6), help="builder optimisation level")
    b.add_argument("--hardware-compat", choices=["none", "ampere_plus", "same_compute_capability"],
                   help="GPUs the plan may run on (default: AUTHENTIQ_TRT_HARDWARE_COMPATIBILITY)")
    b.add_argument("--version-compat", action="store_true", default=None,
                   help="a plan later TensorRT versions can run (lean runtime)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cache matches")
    b.set_defaults(func=serving.build_engine)
    describe_subcommands(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command as given, for what records it (a model card)
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
    except BrokenPipeError:  # e.g. `authentiq inspect ... | head`: the reader left, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a folder that is a file, a path that does not exist, no permission
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # --database-url naming no database, or no database server
        cause = getattr(exc, "orig", None) or exc
        print(f"error: cannot use the database: {str(cause).strip().splitlines()[0]}",
              file=sys.stderr)
        return 2
    except ValidationError as exc:  # an AUTHENTIQ_* variable (or .env line) the settings refuse
        print(f"error: {settings_problem(exc)}", file=sys.stderr)
        return 2


def settings_problem(exc: ValidationError) -> str:
    """The refused values on one line; a setting named as its environment variable (its
    command-line option, where the command has one, sets the same value)."""
    def name(loc: tuple[int | str, ...]) -> str:
        if not loc:
            return "settings"
        field = ".".join(str(part) for part in loc)
        return f"AUTHENTIQ_{field.upper()}" if exc.title == "Settings" else field

    return "; ".join(f"{name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors())


if __name__ == "__main__":
    sys.exit(main())
