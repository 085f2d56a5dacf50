"""Preprocessing one 12-megapixel JPEG view to its tile, on one core: draft decode vs full decode.

    .venv/bin/python -m benchmarks.preprocess
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps

from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check
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
    thresholds = Settings().quality
    print(f"# Preprocess one view ({machine()}, pinned to 1 core)\n")
    print("12 MP JPEGs (4000×3000, quality 92); file size varies with image detail, and at 1/8 DCT")
    print("scale decode time is almost all entropy decoding, which grows with the file size.\n")
    print("| file | full decode + resize (baseline) ms | decode_view (draft) ms | p95 ms "
          "| + quality check ms | speed-up |\n|---|---|---|---|---|---|")
    for grain in (6.0, 9.5, 12.0):
        data = photo(4000, 3000, grain=grain)
        full = timed(lambda data=data: full_decode_baseline(data), 11)
        ours = timed(lambda data=data: decode_view(data, tile_size=128), 15)
        with_q = timed(lambda data=data: check(decode_view(data, tile_size=128), thresholds), 15)
        print(f"| {len(data) / 1e6:.1f} MB | {ms(full):.1f} | {ms(ours):.1f} | {ms(ours, 95):.1f} "
              f"| {ms(with_q):.1f} | {ms(full) / ms(ours):.1f}× |")


if __name__ == "__main__":
    main()
