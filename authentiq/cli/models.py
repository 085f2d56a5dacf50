"""``authentiq models list | show ID | register PATH... | promote ID | rollback``: the model
registry (:mod:`authentiq.storage.models`) from the command line.

``promote`` embeds every live reference with each flavour of the release first (resumable: a
rerun embeds only what is missing, with a progress bar; the code of ``authentiq re-embed``) and
records the promotion only when no reference lacks an embedding. Servers notice a promotion
within ``AUTHENTIQ_REFERENCE_SYNC_S`` and refuse to inspect with their old model until
restarted, when they load the promoted one (docs/your-own-model.md, "Models"). ``shadow``
(:mod:`authentiq.cli.shadow`) scores a candidate on stored inspections before it is promoted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authentiq.cli.shadow import add_shadow_parser
from authentiq.contract.times import iso_utc
from authentiq.errors import ModelRefused
from authentiq.services.container import open_services
from authentiq.services.models import cli_identity, register
from authentiq.settings import Settings
from authentiq.storage.blobs import open_blobs
from authentiq.storage.db import open_configured
from authentiq.storage.models import ModelRegistry, ModelRow, PromotionRow
from authentiq.storage.references import ReferenceStore


@dataclass
class Stores:
    registry: ModelRegistry
    references: ReferenceStore


@contextmanager
def _stores(args: argparse.Namespace, *, existing: bool = True) -> Iterator[Stores]:
    """``existing=False``: the command may create the database (register)."""
    engine = open_configured(args.database_url, existing=existing)
    try:
        yield Stores(ModelRegistry(engine),
                     ReferenceStore(engine, open_blobs(Settings().storage).child("references")))
    finally:
        engine.dispose()


def _model_out(row: ModelRow, promoted: str | None, counts: dict[str, int] | None = None
               ) -> dict[str, Any]:
    out = {"id": row.id, "release": row.release, "name": row.name, "version": row.version,
           "flavour": row.precision, "path": row.path, "size_bytes": row.size_bytes,
           "acceptance": row.acceptance, "forced": row.forced,
           "registered_at": iso_utc(row.registered_at), "registered_by": row.registered_by,
           "promoted": row.release == promoted, "summary": row.summary}
    if counts is not None:
        out["references"] = counts
    return out


def _promotion_out(p: PromotionRow) -> dict[str, Any]:
    return {"seq": p.seq, "release": p.release, "action": p.action,
            "previous_release": p.previous_release, "promoted_at": iso_utc(p.promoted_at),
            "promoted_by": p.promoted_by, "note": p.note}


def _acceptance(row: ModelRow) -> str:
    return f"{row.acceptance} (forced)" if row.forced else row.acceptance


def list_(args: argparse.Namespace) -> int:
    with _stores(args) as s:
        rows, current, history = s.registry.models(), s.registry.promoted(), s.registry.history()
    promoted = current.release if current else None
    if args.json:
        print(json.dumps({"items": [_model_out(r, promoted) for r in rows], "count": len(rows),
                          "promoted_release": promoted,
                          "promotions": [_promotion_out(p) for p in history]}, indent=2))
        return 0
    if not rows:
        print("no models registered yet: a server registers and promotes the model it serves on "
              "its first start, or `authentiq models register PATH...`")
        return 0
    print(f"{'id':<18}{'release':<18}{'model':<28}{'flavour':<10}{'acceptance':<18}"
          f"{'registered':<22}state")
    for r in rows:
        state = "promoted" if r.release == promoted else "-"
        print(f"{r.id:<18}{r.release:<18}{(r.name + '@' + r.version)[:27]:<28}{r.precision:<10}"
              f"{_acceptance(r):<18}{(iso_utc(r.registered_at) or '')[:19]:<22}{state}")
    if history:
        print("\npromotions (newest last):")
        for p in history[-5:]:
            print(f"  {(iso_utc(p.promoted_at) or '')[:19]}  {p.action:<12}{p.release}  by "
                  f"{p.promoted_by}")
    return 0


def show(args: argparse.Namespace) -> int:
    with _stores(args) as s:
        row = s.registry.get(args.id)
        current = s.registry.promoted()
        release = s.registry.release(row.release)
        history = [p for p in s.registry.history() if p.release == row.release]
        counts = s.references.counts(row.id)
    promoted = current.release if current else None
    if args.json:
        print(json.dumps({**_model_out(row, promoted, counts),
                          "release_models": [r.id for r in release],
                          "promotions": [_promotion_out(p) for p in history]}, indent=2))
        return 0
    acceptance = row.summary.get("acceptance") or {}
    lines = [
        ("id", row.id),
        ("model", f"{row.name}@{row.version} ({row.precision})"),
        ("release", row.release + ("  (promoted)" if row.release == promoted else "")
         + "; flavours: " + ", ".join(f"{r.precision} {r.id}" for r in release)),
        ("file", f"{row.path} ({row.size_bytes / 1e6:.1f} MB)"),
        ("acceptance", _acceptance(row) + (f": failed {', '.join(map(str, acceptance['failed']))}"
                                           if acceptance.get("failed") else "")),
        ("registered", f"{iso_utc(row.registered_at)} by {row.registered_by}"),
        ("references", f"{counts['embedded']} of {counts['live']} live references embedded"
                       + (f" ({counts['view_features']} with per-view descriptors)"
                          if row.summary.get("view_check") else "")),
        ("views", ", ".join(row.summary.get("views", []))),
        ("fitted", ", ".join(k for k in ("fusion", "gate", "view_check", "calibration")
                             if row.summary.get(k)) or "nothing after training"),
    ]
    for name, value in lines:
        print(f"{name:<12}{value}")
    for p in history:
        print(f"{'promotion':<12}{iso_utc(p.promoted_at)} {p.action} by {p.promoted_by}")
    return 0


def register_(args: argparse.Namespace) -> int:
    with _stores(args, existing=False) as s:
        rows = register(s.registry, [Path(p) for p in args.paths], force=args.force,
                        by=cli_identity())
    if args.json:
        print(json.dumps({"items": [_model_out(r, None) for r in rows]}, indent=2))
        return 0
    for r in rows:
        print(f"registered {r.id}  {r.name}@{r.version} {r.precision}  acceptance "
              f"{_acceptance(r)}  {r.path}")
    print(f"release {rows[0].release}: promote it with `authentiq models promote {rows[0].release}`")
    return 0


def _embed(path: Path, args: argparse.Namespace, label: str) -> int:
    """Embed every live reference with the model at ``path`` (what re-embed does; resumable)."""
    from tqdm import tqdm

    given: dict[str, Any] = {"model_path": path, "backend": "onnxruntime", "ort_device": "cpu"}
    if args.database_url:
        given["database_url"] = args.database_url

    async def go() -> int:
        async with open_services(Settings(**given), seed=False, background=False) as services:
            bar: tqdm[None] | None = None

            def progress(done: int, total: int) -> None:
                nonlocal bar
                if bar is None:
                    bar = tqdm(total=total, unit="item", file=sys.stderr, disable=args.quiet,
                               desc=label)
                bar.update(1)

            n = await services.enroller.re_embed(progress)
            if bar is not None:
                bar.close()
            return n

    return asyncio.run(go())


def _missing(references: ReferenceStore, rows: list[ModelRow]) -> list[str]:
    """What keeps ``rows`` from promotion: their references without an embedding."""
    lacking = []
    for r in rows:
        n = len(references.missing_embeddings(r.id))
        if n:
            lacking.append(f"{n} references lack an embedding of {r.id} ({r.precision})")
    return lacking


def promote(args: argparse.Namespace) -> int:
    with _stores(args) as s:
        row = s.registry.get(args.id)
        release = s.registry.release(row.release)
        current = s.registry.promoted()
    if current is not None and current.release == row.release:
        print(f"release {row.release} is already promoted")
        return 0
    absent = [r.path for r in release if not Path(r.path).is_file()]
    if absent:
        raise ModelRefused(f"release {row.release} cannot be embedded here: no file "
                           f"{', '.join(absent)} on this host")
    for r in release:
        n = _embed(Path(r.path), args, f"{r.precision} {r.id[:8]}")
        print(f"{r.precision} {r.id}: embedded {n} references" if n else
              f"{r.precision} {r.id}: every live reference already embedded")
    with _stores(args) as s:
        lacking = _missing(s.references, release)
        if lacking:
            raise ModelRefused("not promoted: " + "; ".join(lacking) + " (a reference enrolled "
                               "meanwhile?); run `authentiq models promote` again")
        done = s.registry.promote(row.release, action="promote", by=cli_identity(),
                                  note=args.note)
    print(f"promoted release {done.release} ({row.name}@{row.version}: "
          f"{', '.join(r.precision for r in release)}); previously {done.previous_release or 'none'}."
          f" Running servers switch to it at their next poll (AUTHENTIQ_REFERENCE_SYNC_S), "
          f"without a restart (on Triton: restart them once Triton serves it).")
    return 0


def rollback(args: argparse.Namespace) -> int:
    with _stores(args) as s:
        target = s.registry.rollback_target()
        release = s.registry.release(target)
        lacking = _missing(s.references, release)
        if lacking:
            raise ModelRefused(f"cannot roll back to release {target}: " + "; ".join(lacking)
                               + f"; `authentiq models promote {target}` embeds them first")
        done = s.registry.promote(target, action="rollback", by=cli_identity(), note=args.note)
    print(f"rolled back to release {target} ({release[0].name}@{release[0].version}) from "
          f"{done.previous_release}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser("models", help="the model registry (list, show, register, promote, "
                                      "roll back) and shadow evaluation of a candidate")
    ms = m.add_subparsers(dest="models_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, json_out: bool = True) -> None:
        p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
        if json_out:
            p.add_argument("--json", action="store_true", help="print JSON for a script")

    ls = ms.add_parser("list", help="every registered model, the promoted release, promotions")
    common(ls)
    ls.set_defaults(func=list_)
    sh = ms.add_parser("show", help="one model: its release, acceptance, references, promotions")
    sh.add_argument("id", help="a model id (or a unique prefix of at least 4 characters)")
    common(sh)
    sh.set_defaults(func=show)
    rg = ms.add_parser("register", help="register model files as one release (its flavours)")
    rg.add_argument("paths", nargs="+", metavar="PATH", help="ONNX files of one model, e.g. its "
                                                            "fp32, int8-cpu and int8-trt flavours")
    rg.add_argument("--force", action="store_true",
                    help="register a model whose acceptance failed or is missing (recorded)")
    common(rg)
    rg.set_defaults(func=register_)
    pr = ms.add_parser("promote", help="embed the references with the release, then promote it "
                                       "(resumable)")
    pr.add_argument("id", help="a model id or release id (or a unique prefix)")
    pr.add_argument("--note", help="recorded with the promotion")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    common(pr, json_out=False)
    pr.set_defaults(func=promote)
    rb = ms.add_parser("rollback", help="promote the release promoted before the current one")
    rb.add_argument("--note", help="recorded with the rollback")
    common(rb, json_out=False)
    rb.set_defaults(func=rollback)
    add_shadow_parser(ms)
