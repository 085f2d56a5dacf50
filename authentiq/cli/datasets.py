"""``authentiq dataset check DIR``: the report a person reads before training on a folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from authentiq.cli.modelling import DEFAULTS, add_split_options
from authentiq.modelling.dataset_check import KINDS, DatasetReport, Finding, check_dataset
from authentiq.modelling.splits import NAMES, SPLITS_FILE, SplitPlan
from authentiq.settings import Settings


def view_names(text: str) -> tuple[str, ...]:
    """Comma-separated view names (none: an empty string)."""
    return tuple(v.strip().lower() for v in text.split(",") if v.strip())


def view_list(text: str) -> tuple[str, ...]:
    if not view_names(text):
        raise argparse.ArgumentTypeError("name at least one view, e.g. overall,logo")
    return view_names(text)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("dataset", help="check a folder of photos before training on it")
    d_sub = d.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    c = d_sub.add_parser(
        "check", help="report what is wrong with a training folder (exit 1 on errors)",
        epilog="exit status: 0 no errors (warnings are listed), 1 errors (or warnings with "
               "--strict), 2 the folder or its labels.csv cannot be read at all")
    c.add_argument("folder", help="labels.csv + one folder per item, or authentic/ and "
                                  "counterfeit/ folders of items (docs/your-own-model.md)")
    c.add_argument("--views", type=view_list, default=",".join(DEFAULTS.views),
                   help="the model's views, comma-separated; each item needs a photo per view")
    c.add_argument("--optional-views", type=view_names, default=",".join(DEFAULTS.optional_views),
                   help="views an item may lack, comma-separated ('': none)")
    c.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seed of the split (the same as `authentiq train --seed`)")
    add_split_options(c)
    c.add_argument("--write-splits", action="store_true",
                   help=f"pin the split in FOLDER/{SPLITS_FILE}: training and the check then use "
                        f"it as it is")
    c.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    c.add_argument("--show", type=int, default=10, metavar="N",
                   help="findings shown per kind (0: all)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--workers", type=int, help="processes decoding photos (default: one per CPU)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    folder = Path(args.folder)
    plan = SplitPlan(val_share=args.val_share, test_share=args.test_share, seed=args.seed,
                     by_product=args.by_product)
    bar: tqdm[None] | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="photo", file=sys.stderr, leave=False,
                       disable=args.quiet or args.json)
        bar.update(1)

    # --write-splits splits afresh with the options given here, whatever an older pin says.
    report = check_dataset(folder, views=args.views, optional=args.optional_views, plan=plan,
                           quality=Settings().quality, tile_size=DEFAULTS.tile_size,
                           workers=args.workers, pinned=not args.write_splits, progress=progress)
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(render(report, show=args.show, strict=args.strict))
    if args.write_splits:
        if report.splits is None or any(f.kind == "splits" for f in report.errors):
            print(f"{SPLITS_FILE} not written: the split has errors (above)", file=sys.stderr)
        else:
            path = report.splits.write(folder / SPLITS_FILE, report.items)
            print(f"wrote {path}: {len(report.items)} items; training and checks now use this "
                  f"split", file=sys.stderr)
    return 1 if report.failed(args.strict) else 0


def render(report: DatasetReport, *, show: int = 10, strict: bool = False) -> str:
    lines = [f"Dataset check: {report.root}"]
    if report.scan.labels is not None:
        lines.append(f"  labels  {report.scan.labels.describe()}")
    else:
        lines.append("  labels  from the folders authentic/ and counterfeit/ (no labels.csv)")
    counts = report.class_counts()
    lines.append(f"  items   {len(report.items)} ({', '.join(f'{n} {k}' for k, n in counts.items())})"
                 f", {len(report.product_counts())} product(s), {len(report.photos)} photos")
    set_aside = report.scan.labels.set_aside if report.scan.labels is not None else []
    if set_aside:
        lines.append(f"  set aside {len(set_aside)} item(s) labelled not_a_product (a reviewer's "
                     f"decision): listed, not trained on and not checked")
    if report.items:
        lines += ["", *_class_table(report), "", *_product_table(report), "", *_view_table(report)]
    for level, findings in (("errors", report.errors), ("warnings", report.warnings)):
        if findings:
            lines += ["", f"{level} ({len(findings)}):", *_listed(findings, show)]
    lines += ["", _verdict(report, strict)]
    return "\n".join(lines)


def _class_table(report: DatasetReport) -> list[str]:
    splits = report.splits.counts(report.items) if report.splits else None
    head = f"  {'class':<14}{'items':>7}" + ("".join(f"{s:>7}" for s in NAMES) if splits else "")
    rows = [head]
    for label, n in report.class_counts().items():
        cells = "".join(f"{splits[s][label]:>7}" for s in NAMES) if splits else ""
        rows.append(f"  {label:<14}{n:>7}{cells}")
    if report.splits is None:
        rows.append("  splits  none (see the errors)")
    elif report.splits.source == "computed" and report.splits.plan:
        rows.append(f"  splits  {report.splits.plan.describe()} (pin with --write-splits)")
    else:
        rows.append(f"  splits  pinned in {report.splits.source}")
    return rows


def _product_table(report: DatasetReport) -> list[str]:
    products = report.product_counts()
    if not products or list(products) == [("", "")]:
        return ["  products  none named (no brand and model columns)"]
    width = min(40, max(len(f"{b} / {m}") for b, m in products) + 2)
    rows = [f"  {'product':<{width}}{'authentic':>10}{'counterfeit':>12}"]
    for (brand, model), c in products.items():
        name = f"{brand} / {model}" if brand or model else "(no brand or model)"
        rows.append(f"  {name[:width - 1]:<{width}}{c['authentic']:>10}{c['counterfeit']:>12}")
    return rows


def _view_table(report: DatasetReport) -> list[str]:
    rows = [f"  {'view':<14}{'photos':>7}{'missing':>9}"]
    for view, (n, missing) in report.view_counts().items():
        note = "  (optional)" if view in report.optional else ""
        rows.append(f"  {view:<14}{n:>7}{missing:>9}{note}")
    return rows


def _listed(findings: list[Finding], show: int) -> list[str]:
    out = []
    for kind, title in KINDS.items():
        these = [f for f in findings if f.kind == kind]
        if not these:
            continue
        out.append(f"  {title} ({len(these)}):")
        limit = len(these) if show <= 0 else show
        out += [f"    {f.text()}" for f in these[:limit]]
        if len(these) > limit:
            out.append(f"    ... and {len(these) - limit} more (--show 0 lists all)")
    return out


def _verdict(report: DatasetReport, strict: bool) -> str:
    e, w = len(report.errors), len(report.warnings)
    if e:
        return f"FAILED: {e} error(s), {w} warning(s); fix the errors before training."
    if w and strict:
        return f"FAILED (--strict): {w} warning(s)."
    return f"OK: ready to train{f', with {w} warning(s) to look at' if w else ''}."
