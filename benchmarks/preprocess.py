"""Preprocessing one 12-megapixel JPEG view to its tile, on one core: draft decode vs full decode.

    .venv/bin/python -m benchmarks.preprocess
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps

from authentiq.preprocess import decode_view
from authentiq.quality import check
from authentiq.settings import Settings
from benchmarks._common import machine, ms, photo, timed


def full_decode_baseline(data: bytes) -> None:
    """What a naive server does: decode every pixel, then scale down."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    img.load()
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img.crop((left, top, left + side, top + side)).resize((256, 256)).resize((128, 128))


def main() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    data = photo(4000, 3000)
    settings = Settings()
    print(f"# Preprocess one view ({machine()}, pinned to 1 core)\n")
    print(f"12 MP JPEG, 4000×3000, {len(data) / 1e6:.1f} MB\n")
    print("| path | median ms | p95 ms |\n|---|---|---|")
    full = timed(lambda: full_decode_baseline(data), 15)
    ours = timed(lambda: decode_view(data, tile_size=128), 15)
    with_q = timed(lambda: check(decode_view(data, tile_size=128), settings), 15)
    print(f"| full decode + resize (baseline) | {ms(full):.1f} | {ms(full, 95):.1f} |")
    print(f"| decode_view (draft DCT scaling) | {ms(ours):.1f} | {ms(ours, 95):.1f} |")
    print(f"| decode_view + quality check | {ms(with_q):.1f} | {ms(with_q, 95):.1f} |")
    print(f"\nspeed-up of the draft path: {ms(full) / ms(ours):.1f}×")


if __name__ == "__main__":
    main()
