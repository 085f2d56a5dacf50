"""``authentiq export-training-data OUT --reviewed``: one tenant's reviewed reports, with their
final labels, as a folder ``dataset check`` and ``train`` read
(:mod:`authentiq.modelling.review_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from authentiq.cli.parsing import since
from authentiq.errors import InvalidField


def export(args: argparse.Namespace) -> int:
    from authentiq.modelling.review_export import export_reviewed
    from authentiq.settings import Settings
    from authentiq.storage.blobs import open_blobs
    from authentiq.storage.db import open_configured
    from authentiq.storage.tenants import require_tenant

    if not args.reviewed:
        raise InvalidField("only reviewed reports are exported: say so with --reviewed (a "
                           "report nobody reviewed has no label to train on)", field="reviewed")
    storage = Settings().storage
    engine = open_configured(args.database_url, existing=True)
    try:
        require_tenant(engine, args.tenant)
        summary = export_reviewed(engine, open_blobs(storage), Path(args.out), tenant=args.tenant,
                                  since=args.since)
    finally:
        engine.dispose()
    window = f", reviewed since {args.since:%Y-%m-%d %H:%M} UTC" if args.since else ""
    print(f"Exported tenant {summary.tenant}'s reviewed reports{window} to {summary.out}")
    print(f"  selected   {summary.selected} reviewed report(s)")
    written = ", ".join(f"{n} {label}" for label, n in sorted(summary.written.items()))
    print(f"  written    {sum(summary.written.values())} new item(s)" +
          (f": {written}" if written else ""))
    print(f"  unchanged  {summary.unchanged} already exported")
    for name, entries in (("relabelled", summary.relabelled), ("withdrawn", summary.withdrawn)):
        if entries:
            print(f"  {name:<10} {len(entries)}: {', '.join(entries[:5])}"
                  + (" ..." if len(entries) > 5 else ""))
    for why, ids in sorted(summary.skipped.items()):
        print(f"  skipped    {len(ids)}, {why}: {', '.join(ids[:3])}" + (" ..." if len(ids) > 3 else ""))
    listed = ", ".join(f"{n} {label}" for label, n in sorted(summary.listed.items()))
    print(f"  labels.csv {sum(summary.listed.values())} item(s)" + (f": {listed}" if listed else "")
          + " (not_a_product is set aside by training)" * ("not_a_product" in summary.listed))
    print(f"next: authentiq dataset check {summary.out}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser(
        "export-training-data",
        help="write one tenant's reviewed reports, with their final labels, as a training folder",
        description="Writes OUT/<report id>/<view>.<ext> (the photos as uploaded), OUT/labels.csv "
                    "(item,label,brand,model: the last review's verdict, or not_a_product) and "
                    "OUT/manifest.json (reports, reviews and reviewers, the model that decided). "
                    "Skips reports whose final verdict is inconclusive, without photos, or with "
                    "a photo that failed the quality check. Exporting again into OUT adds new "
                    "items and updates labels; it never duplicates an item.")
    e.add_argument("out", help="the folder to write (created; an earlier export's is extended)")
    e.add_argument("--reviewed", action="store_true",
                   help="export reviewed reports (required: only they have a label)")
    e.add_argument("--since", type=since, metavar="SPAN|DATE",
                   help="only reports reviewed since: 7d, 12h, 2w, 30m, or a date (UTC)")
    e.add_argument("--tenant", default="default",
                   help="whose reports (default: 'default'; see `authentiq tenants list`)")
    e.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL (photos: the data "
                                          "folder's blobs, AUTHENTIQ_DATA_DIR / AUTHENTIQ_BLOB_DIR)")
    e.set_defaults(func=export)
