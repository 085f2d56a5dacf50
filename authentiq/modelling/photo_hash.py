"""Near-duplicate photos: a difference hash to find candidates, a thumbnail correlation to confirm.

Both come from the grey analysis image the server's decoder makes (the centre square, 256 px).
The *difference hash* (dHash) is the sign of the horizontal gradient on a 17 × 16 grey thumbnail:
256 bits that survive re-compression and re-scaling (a photo saved again at JPEG quality 40 and
half the size moved 27 bits). Alone it is not enough: on low-texture photos (a dark lining) two
different items came 6 bits apart. So a pair is a near duplicate only when the hashes are within
:data:`MAX_DISTANCE` bits *and* their 32 × 32 grey thumbnails correlate at :data:`MIN_CORRELATION`
or more (re-saved copies: 0.99+; distinct synthetic items of one product: at most 0.98, and those
were 70+ bits apart). Measured on ``authentiq synth`` photos; docs/your-own-model.md.

Candidates are found by comparing every hash with every other of the same view, in blocks (popcount
of the XOR, numpy): about 4·10⁷ pairs a second on one core of the 2-core CI machine, so 10,000
items take about a second per view and 100,000 about two minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_SIDE = 16  # 16 x 16 = 256 bits
THUMB_SIDE = 32
MAX_DISTANCE = 32  # of 256 bits
MIN_CORRELATION = 0.97
_BLOCK_CELLS = 4_000_000  # pairs compared at once (bounds the memory of one block)


@dataclass(frozen=True)
class PhotoPrint:
    """What near-duplicate search keeps of one photo."""

    dhash: np.ndarray  # uint64 [4]: 256 bits
    thumb: np.ndarray  # uint8 [32, 32] grey


def fingerprint(grey: np.ndarray) -> PhotoPrint:
    """The hash and thumbnail of a grey image (float or uint8, any size)."""
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    small = np.asarray(img.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BOX), dtype=np.int16)
    bits = np.packbits((small[:, 1:] > small[:, :-1]).ravel())
    thumb = np.asarray(img.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX), dtype=np.uint8)
    return PhotoPrint(bits.view(">u8").astype(np.uint64), thumb)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / norm) if norm > 0 else float(np.array_equal(a, b))


def near_pairs(prints: list[PhotoPrint]) -> list[tuple[int, int, int]]:
    """(i, j, bits apart) for every near-duplicate pair, i < j (see the module's doc)."""
    n = len(prints)
    if n < 2:
        return []
    hashes = np.stack([p.dhash for p in prints])  # [n, 4]
    rows = max(1, _BLOCK_CELLS // n)
    out = []
    for start in range(0, n - 1, rows):
        block, rest = hashes[start:start + rows], hashes[start:]  # j >= start: each pair once
        dist = np.zeros((len(block), len(rest)), dtype=np.uint16)
        for w in range(hashes.shape[1]):
            dist += np.bitwise_count(block[:, w, None] ^ rest[None, :, w])
        ii, jj = np.nonzero(dist <= MAX_DISTANCE)
        for i, j, bits in zip(ii + start, jj + start, dist[ii, jj], strict=True):
            if j > i and correlation(prints[i].thumb, prints[j].thumb) >= MIN_CORRELATION:
                out.append((int(i), int(j), int(bits)))
    return out
