"""``authentiq models shadow``: re-scores stored inspections with a candidate model (or, with
``--live``, summarises what the live shadow stored) and compares its verdicts with the served
ones; nothing it does is stored as a report. Registered under ``authentiq models``
(:mod:`authentiq.cli.models`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

from authentiq.cli.parsing import since
from authentiq.errors import InvalidField
from authentiq.services.shadow import (
    count_reports,
    open_candidate,
    outcome,
    report_pages,
    rescore,
)
from authentiq.services.shadow_summary import VERDICTS, Outcome, Summary, summarise
from authentiq.settings import Settings
from authentiq.storage.blobs import open_blobs
from authentiq.storage.db import open_configured
from authentiq.storage.references import ReferenceStore
from authentiq.storage.reports import ReportStore
from authentiq.storage.shadow_results import ShadowResults
from authentiq.storage.tenants import require_tenant

SHOWN = 10  # changed inspections listed by id (--json: all)


def add_shadow_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = subparsers.add_parser(
        "shadow", help="re-score stored inspections with a candidate model and compare its "
                       "verdicts with the served ones (nothing is stored)",
        epilog="exit status: 0 done, 2 an unusable candidate, window or database")
    s.add_argument("candidate", nargs="?", type=Path,
                   help="the candidate ONNX model (not with --live)")
    s.add_argument("--since", type=since, default="7d", metavar="AGE|DATE",
                   help="inspections made in the last 30m, 24h, 7d, 2w, or since a date "
                        "(2026-11-24, UTC); default 7d")
    s.add_argument("--tenant", help="only this tenant's inspections (default: every tenant's)")
    s.add_argument("--limit", type=int, metavar="N", help="at most N inspections, newest first")
    s.add_argument("--live", action="store_true",
                   help="summarise the results the live shadow (AUTHENTIQ_SHADOW_MODEL) stored "
                        "instead of re-scoring")
    s.add_argument("--model-id", help="with --live: only this candidate's results (default: "
                                      "every candidate's, each summarised)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL, else the data folder's")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=shadow)


def shadow(args: argparse.Namespace) -> int:
    if args.live == (args.candidate is not None):
        raise InvalidField("give a candidate model, or --live for the live shadow's results")
    if args.limit is not None and args.limit < 1:
        raise InvalidField("--limit must be at least 1")
    if args.model_id and not args.live:
        raise InvalidField("--model-id goes with --live")
    engine = open_configured(args.database_url, existing=True)
    try:
        if args.tenant is not None:
            require_tenant(engine, args.tenant)
        settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
        blobs = open_blobs(settings.storage)
        window = {"since": args.since.isoformat(timespec="seconds"), "tenant": args.tenant}
        if args.live:
            summaries = live_summaries(ShadowResults(engine), args, window)
        else:
            summaries = [asyncio.run(rescored(
                args, settings, ReportStore(engine, blobs),
                ReferenceStore(engine, blobs.child("references")), window))]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries] if args.live else
                         summaries[0].as_dict(), indent=2))
    else:
        if not summaries:
            print(f"no live shadow results since {window['since']}"
                  + (f" for tenant {args.tenant}" if args.tenant else ""))
        else:
            print("\n\n".join(render(s) for s in summaries))
    return 0


async def rescored(args: argparse.Namespace, settings: Settings, reports: ReportStore,
                   references: ReferenceStore, window: dict[str, str | None]) -> Summary:
    from tqdm import tqdm

    window_args = {"since": args.since, "tenant": args.tenant, "limit": args.limit}
    total = await asyncio.to_thread(count_reports, reports, **window_args)
    bars: dict[str, tqdm[None]] = {}

    def progress(what: str) -> Callable[[int, int], None]:
        def step(done: int, total: int) -> None:
            if what not in bars:
                bars[what] = tqdm(total=total, unit="item", desc=what, file=sys.stderr,
                                  disable=args.quiet)
            bars[what].update(1)
            if done == total:
                bars[what].close()
        return step

    async with open_candidate(args.candidate, settings, reports=reports, references=references,
                              threads=settings.inspection.preprocess_workers,
                              progress=progress("references")) as candidate:
        outcomes = await rescore(candidate, reports, report_pages(reports, **window_args), total,
                                 progress=progress("inspections"))
    for bar in bars.values():
        bar.close()
    return summarise(outcomes, candidate.name, references=candidate.references, **window)


def live_summaries(results: ShadowResults, args: argparse.Namespace,
                   window: dict[str, str | None]) -> list[Summary]:
    pairs = results.find(since=args.since, tenant=args.tenant, model_id=args.model_id,
                         limit=None)
    by_model: dict[str, list[Outcome]] = {}
    names: dict[str, str] = {}
    for result, row in pairs:
        if args.limit is None or len(by_model.get(result.model_id, [])) < args.limit:
            by_model.setdefault(result.model_id, []).append(
                outcome(row, result.verdict, result.p_counterfeit))
            names[result.model_id] = f"{result.model_id} ({result.model})"
    return [summarise(by_model[m], names[m], live=True, **window) for m in sorted(by_model)]


def render(s: Summary) -> str:
    extra = s.extra
    who = f"tenant {extra['tenant']}" if extra.get("tenant") else "every tenant"
    how = "live shadow results" if extra.get("live") else "re-scored from stored photos"
    lines = [f"Shadow evaluation: candidate {s.candidate}",
             f"  inspections  since {extra.get('since')} ({who}), {how}"]
    if "references" in extra:
        lines.append(f"  references   {extra['references']} live references embedded with the "
                     f"candidate (in memory)")
    not_scored = sum(s.not_scored.values())
    lines.append(f"  re-scored    {s.scored}" if not extra.get("live") else f"  scored       {s.scored}")
    if not_scored:
        lines.append(f"  not scored   {not_scored}: " + ", ".join(
            f"{why} {n}" for why, n in sorted(s.not_scored.items())))
    lines.append(f"  agreement    {s.agree} of {s.scored} ({_pct(s.agreement)})")
    lines += ["", "  served \\ candidate  " + "".join(f"{v:>14}" for v in VERDICTS)]
    for served in VERDICTS:
        lines.append(f"  {served:<19}" + "".join(f"{s.matrix[served][c]:>14}" for c in VERDICTS))
    lines += ["", f"  {'product':<28}{'scored':>7}{'agree':>9}  changes"]
    for name, p in s.products.items():
        changes = ", ".join(f"{change} {n}" for change, n in p.changes.items()) or "-"
        lines.append(f"  {name:<28}{p.scored:>7}{_pct(p.agreement):>9}  {changes}")
    if s.changed:
        lines += ["", f"  changed      {len(s.changed)} inspection(s)"
                  + (f", the first {SHOWN}" if len(s.changed) > SHOWN else "") + ":"]
        for o in s.changed[:SHOWN]:
            review = f" (reviewed: {o.reviewed})" if o.reviewed else ""
            lines.append(f"    {o.report_id}  {o.product}: {o.served} → {o.candidate}{review}")
    r = s.reviewed
    lines.append("")
    if r.cases:
        lines += [f"  reviewed     {r.cases} inspections with a reviewer's final verdict",
                  f"    served     {r.served_correct} correct ({_pct(r.served_accuracy)}), "
                  f"{r.served_inconclusive} inconclusive",
                  f"    candidate  {r.candidate_correct} correct ({_pct(r.candidate_accuracy)}), "
                  f"{r.candidate_inconclusive} inconclusive"]
    else:
        lines.append("  reviewed     none of these inspections has been reviewed yet")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
