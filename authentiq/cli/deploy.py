"""Deployment commands: ``authentiq db upgrade|downgrade|current`` and ``authentiq export-triton``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _url(args: argparse.Namespace) -> str:
    from authentiq.settings import Settings

    return str(args.database_url or Settings().storage.database_url)


def db_upgrade(args: argparse.Namespace) -> int:
    from authentiq.storage.db import make_engine, upgrade

    engine = make_engine(_url(args))
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"database already at schema revision {after} (this release's head)")
    else:
        print(f"database schema upgraded: {before or 'empty'} → {after}")
    return 0


def db_downgrade(args: argparse.Namespace) -> int:
    from authentiq.storage.db import downgrade, make_engine

    engine = make_engine(_url(args))
    try:
        before, after = downgrade(engine, args.revision)
    finally:
        engine.dispose()
    print(f"database schema downgraded: {before or 'empty'} → {after or 'empty'}")
    return 0


def db_current(args: argparse.Namespace) -> int:
    """Exit 0 when the database is at this release's head, 1 when it needs `db upgrade`."""
    from authentiq.storage.db import current, head, make_engine

    engine = make_engine(_url(args))
    try:
        at = current(engine)
    finally:
        engine.dispose()
    if at == head():
        print(f"schema revision {at} (this release's head)")
        return 0
    print(f"schema revision {at or 'none'}; this release needs {head()}: run `authentiq db upgrade`")
    return 1


def export_triton(args: argparse.Namespace) -> int:
    from authentiq.modelling.triton_export import export_triton
    from authentiq.settings import Settings

    settings = Settings()
    done = export_triton(args.out_dir, settings, runtime=args.runtime, name=args.name,
                         model=args.model, plan=args.plan, triton_tensorrt=args.triton_tensorrt)
    print(f"wrote {done.folder}: {', '.join(done.files)}")
    for note in done.notes:
        print(f"note: {note}")
    batcher = settings.batcher
    print(f"max_batch_size {batcher.max_batch_size}, preferred {list(batcher.preferred_batch_sizes)}, "
          f"queue delay {batcher.max_queue_delay_ms} ms, queue {batcher.max_queue_size}, "
          f"{batcher.batcher_instances} instance(s)")
    print(f"serve it: tritonserver --model-repository {args.out_dir}; then run AuthentiQ with "
          f"AUTHENTIQ_BACKEND=triton AUTHENTIQ_TRITON_URL=<host>:8001"
          + ("" if args.name == "authentiq" else f" AUTHENTIQ_TRITON_MODEL={args.name}"))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("db", help="the database schema: upgrade (Alembic migrations), "
                                  "downgrade, current")
    d_sub = d.add_subparsers(dest="db_command", required=True)
    u = d_sub.add_parser("upgrade", help="apply the migrations this release brings (idempotent; "
                                         "safe while other workers start)")
    u.set_defaults(func=db_upgrade)
    w = d_sub.add_parser("downgrade", help="undo migrations down to REVISION (before rolling "
                                           "back to an older release; stop the service first)")
    w.add_argument("revision", help="the older release's head revision, e.g. 0005")
    w.set_defaults(func=db_downgrade)
    c = d_sub.add_parser("current", help="print the schema revision; exit 1 if an upgrade is due")
    c.set_defaults(func=db_current)
    for p in (u, w, c):
        p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")

    t = sub.add_parser("export-triton", help="write a Triton Inference Server model repository "
                                             "(config.pbtxt from the model contract and the "
                                             "AUTHENTIQ_* batching settings); needs [triton]")
    t.add_argument("out_dir", type=Path, help="the model repository (DIR/<name>/ is replaced)")
    t.add_argument("--runtime", choices=["onnxruntime", "tensorrt", "python"], default="onnxruntime",
                   help="Triton backend: onnxruntime (default), tensorrt (needs --plan) or python "
                        "(ONNX Runtime inside Triton's Python backend)")
    t.add_argument("--name", default="authentiq", help="model name in the repository")
    t.add_argument("--model", type=Path, help="ONNX model (default: AUTHENTIQ_MODEL_PATH, or "
                                              "AUTHENTIQ_TENSORRT_MODEL_PATH for tensorrt)")
    t.add_argument("--plan", type=Path, help="TensorRT plan for --runtime tensorrt")
    t.add_argument("--triton-tensorrt", metavar="VERSION",
                   help="TensorRT version of the Triton release serving the plan, e.g. 10.8.0.43 "
                        "for 25.01 (--runtime tensorrt; docs/deployment.md lists them)")
    t.set_defaults(func=export_triton)
