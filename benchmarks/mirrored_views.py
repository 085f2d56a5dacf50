"""One view of a genuine held-out item mirrored, view by view: what the app answers (the shipped
model and its 30 references, SQLite in a temporary folder, requests through the app in-process).

    .venv/bin/python -m benchmarks.mirrored_views [--items 40] [--views overall,logo,...]
        [--held-out 400] [--mirror-check both|on|off]

Prints a row per view (authentic / counterfeit / inconclusive, the retake reasons, and how many
counterfeit verdicts were sent to review). Items are genuine held-out synthetic items (seeds
900,000,000+) whose photos pass the quality check; "none" mirrors nothing (the baseline).
``--held-out N`` then sends N held-out items as taken (genuine and counterfeit, seeds
900,000,000+) and prints what the mirror check (``AUTHENTIQ_MIRROR_CHECK``) costs on them.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.modelling.synthetic import VIEWS, SyntheticItem, make_item, passes_quality
from authentiq.modelling.synthetic.distractors.alterations import reorient
from authentiq.settings import Settings


def genuine_items(n: int, seed: int = 900_000_000) -> list[SyntheticItem]:
    items = []
    while len(items) < n:
        item = make_item(seed, counterfeit=False)
        if passes_quality(item.views):
            items.append(item)
        seed += 1
    return items


def inspect(client: TestClient, item: SyntheticItem, photos: dict[str, bytes]) -> dict:  # type: ignore[type-arg]
    r = client.post("/v1/inspections", data={"brand": item.brand, "model": item.model},
                    files=[(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in photos.items()])
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def held_out(settings: Settings, n: int) -> None:
    """Held-out items as taken, the mirror check off and on: what it costs."""
    items = [make_item(900_000_000 + i) for i in range(n)]
    print(f"\n# {n} held-out items as taken (seeds 900,000,000+), the mirror check off and on\n")
    print("| mirror check | decided accuracy | inconclusive | counterfeit items called counterfeit | "
          "genuine items called counterfeit |\n|---|---:|---:|---:|---:|")
    for on in (False, True):
        with TestClient(create_app(settings.model_copy(update={"mirror_check": on}))) as client:
            got = [(item.label == "counterfeit", inspect(client, item, dict(item.views))["verdict"])
                   for item in items]
        decided = [(fake, v) for fake, v in got if v != "inconclusive"]
        right = sum((v == "counterfeit") == fake for fake, v in decided)
        print(f"| {'on' if on else 'off'} | {right / max(1, len(decided)):.2%} | "
              f"{1 - len(decided) / n:.2%} | {sum(f and v == 'counterfeit' for f, v in got)} of "
              f"{sum(f for f, _ in got)} | {sum(not f and v == 'counterfeit' for f, v in got)} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--views", default=",".join(("none", *VIEWS)))
    parser.add_argument("--held-out", type=int, default=0)
    args = parser.parse_args()
    items = genuine_items(args.items)
    tmp = Path(tempfile.mkdtemp())
    settings = Settings(database_url=f"sqlite:///{tmp}/a.db", blob_dir=tmp / "blobs")
    print(f"# One view mirrored: {args.items} genuine held-out items, the shipped model and references\n")
    print("| view mirrored | authentic | counterfeit | inconclusive | counterfeit sent to review | "
          "retake reasons |\n|---|---:|---:|---:|---:|---|")
    with TestClient(create_app(settings)) as client:
        for view in [v for v in args.views.split(",") if v]:
            verdicts, reasons, reviewed = Counter[str](), Counter[str](), 0
            for item in items:
                photos = dict(item.views)
                if view != "none":
                    photos[view] = reorient(photos[view], "mirrored")
                body = inspect(client, item, photos)
                verdicts[body["verdict"]] += 1
                reviewed += body["verdict"] == "counterfeit" and bool(body.get("review_advised"))
                reasons.update(ask["reason"] for ask in body.get("retake", []))
            print(f"| {view} | {verdicts['authentic']} | {verdicts['counterfeit']} | "
                  f"{verdicts['inconclusive']} | {reviewed} | {dict(reasons) or '—'} |", flush=True)
    if args.held_out:
        held_out(settings, args.held_out)


if __name__ == "__main__":
    main()
