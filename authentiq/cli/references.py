"""The reference database from the command line: enroll a folder, re-embed for a new model.

Both open the service's own components in-process (model, batcher, database) — no server needed;
a running server sees the changes within ``AUTHENTIQ_REFERENCE_SYNC_S``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from authentiq.enrolment import enrol_folder, folder_references
from authentiq.services import open_services
from authentiq.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    given = {"model_path": args.model, "database_url": args.database_url}
    # The CLI enrols exactly what it is given: no shipped set seeded behind its back.
    return Settings(**{k: v for k, v in given.items() if v is not None})


def enroll(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    items = folder_references(Path(args.folder))
    bar = tqdm(total=len(items), unit="item", file=sys.stderr, disable=args.quiet)

    def progress(name: str, state: str) -> None:
        bar.update(1)
        if state.startswith("FAILED") or "warning" in state:
            bar.write(f"{name}: {state}", file=sys.stderr)

    async def go() -> int:
        async with open_services(_settings(args), seed=False, background=False) as services:
            summary = await enrol_folder(services.enroller, items, source=args.source,
                                         progress=progress)
        bar.close()
        print(f"enrolled {summary.enrolled}, already enrolled {summary.skipped}, "
              f"failed {len(summary.failed)}, with warnings {len(summary.warned)}")
        for name, why in summary.failed.items():
            print(f"  FAILED {name}: {why}")
        for name, warnings in summary.warned.items():
            for w in warnings:
                print(f"  warning {name}: {w}")
        return 1 if summary.failed else 0

    return asyncio.run(go())


def re_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    async def go() -> int:
        async with open_services(_settings(args), seed=False, background=False) as services:
            bar = tqdm(unit="item", file=sys.stderr, disable=args.quiet)

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(1)

            n = await services.enroller.re_embed(progress)
            bar.close()
            print(f"re-embedded {n} references with {services.backend.spec.version_key}")
        return 0

    return asyncio.run(go())


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("enroll", help="enrol a folder of genuine items as references (resumable)")
    e.add_argument("folder", help="labels.csv (item, brand, model[, source, notes]) + item folders")
    e.add_argument("--source", help="recorded on every reference without its own source")
    e.add_argument("--model", type=Path, help="ONNX model (default: AUTHENTIQ_MODEL_PATH)")
    e.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=enroll)

    r = sub.add_parser("re-embed", help="embed live references with the current model version")
    r.add_argument("--model", type=Path)
    r.add_argument("--database-url")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=re_embed)
