"""The reference database from the command line: enroll a folder, re-embed for a new model.

Both open the service's own components in-process (model, batcher, database) — no server needed;
a running server sees the changes within ``AUTHENTIQ_REFERENCE_SYNC_S``. Without ``--model`` they
use the model the servers serve (the registry's promoted release, as a server picks it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from authentiq.pipeline.enrolment import enrol_folder, read_folder
from authentiq.services.container import open_services
from authentiq.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    given = {"model_path": args.model, "database_url": args.database_url}
    # The CLI enrols exactly what it is given: no shipped set seeded behind its back.
    return Settings(**{k: v for k, v in given.items() if v is not None})


def enroll(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    folder = read_folder(Path(args.folder))
    items = folder.items
    if folder.left_out:
        labels = ", ".join(sorted(set(folder.left_out.values())))
        print(f"left out {len(folder.left_out)} row(s) of labels.csv not labelled authentic "
              f"({labels}): {_names(folder.left_out)}", file=sys.stderr)
    bar = tqdm(total=len(items), unit="item", file=sys.stderr, disable=args.quiet or not items)

    def progress(name: str, state: str) -> None:
        bar.update(1)
        if state.startswith("FAILED") or "warning" in state:
            bar.write(f"{name}: {state}", file=sys.stderr)

    async def go() -> int:
        async with open_services(_settings(args), seed=False, background=False,
                                 registry=args.model is None) as services:
            summary = await enrol_folder(services.enroller, items, source=args.source,
                                         progress=progress)
        bar.close()
        print(f"enrolled {summary.enrolled}, already enrolled {summary.skipped}, "
              f"failed {len(summary.failed)}, with warnings {len(summary.warned)}, "
              f"left out (not genuine) {len(folder.left_out)}")
        for name, why in summary.failed.items():
            print(f"  FAILED {name}: {why}")
        for name, warnings in summary.warned.items():
            for w in warnings:
                print(f"  warning {name}: {w}")
        return 1 if summary.failed else 0

    return asyncio.run(go())


def _names(items: dict[str, str], shown: int = 5) -> str:
    names = list(items)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def re_embed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    async def go() -> int:
        async with open_services(_settings(args), seed=False, background=False,
                                 registry=args.model is None) as services:
            bar: tqdm[None] | None = None  # made on the first item: none when nothing is to do

            def progress(done: int, total: int) -> None:
                nonlocal bar
                if bar is None:
                    bar = tqdm(total=total, unit="item", file=sys.stderr, disable=args.quiet)
                bar.update(1)

            n = await services.enroller.re_embed(progress)
            if bar is not None:
                bar.close()
            version = f"{services.backend.spec.version_key} (model {services.backend.info.model_id})"
            print(f"re-embedded {n} references with {version}" if n else
                  f"nothing to re-embed: every live reference has an embedding of {version}")
        return 0

    return asyncio.run(go())


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("enroll", help="enrol a folder of genuine items as references (resumable)")
    e.add_argument("folder", help="labels.csv (item, brand, model[, source, notes]) + item folders")
    e.add_argument("--source", help="recorded on every reference without its own source")
    e.add_argument("--model", type=Path, help="ONNX model (default: the promoted model, as the "
                                              "server serves it)")
    e.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=enroll)

    r = sub.add_parser("re-embed", help="embed live references with the current model")
    r.add_argument("--model", type=Path, help="ONNX model (default: the promoted model, as the "
                                              "server serves it)")
    r.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=re_embed)
