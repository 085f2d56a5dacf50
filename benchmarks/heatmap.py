"""Heatmap rendering per view, on one core: the LUT + numpy/Pillow path vs a matplotlib figure.

    python -m benchmarks.heatmap

Real inputs: a synthetic counterfeit through the service's decode and the shipped INT8 model;
its CAM is rendered over each view's display square (256 px) and encoded — what the first request
for a report's heatmaps costs (the answer path only stores the CAM: the last row).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import io  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from authentiq.modelling.synthetic import make_item  # noqa: E402
from authentiq.pipeline import heatmap  # noqa: E402
from authentiq.pipeline.preprocess import decode_view  # noqa: E402
from authentiq.pipeline.stitch import build_input  # noqa: E402
from authentiq.settings import DEFAULT_MODEL  # noqa: E402
from benchmarks._common import machine, ms, timed  # noqa: E402

REPEAT = 200


def pyplot_figure(display: np.ndarray, heat: np.ndarray) -> bytes:
    """What the fast path replaces: a matplotlib figure per view (Agg, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.56, 2.56), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(display)
    ax.imshow(heat, cmap=heatmap.COLORMAP, alpha=0.5, extent=(0, 256, 256, 0),
              interpolation="bilinear")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def main() -> None:
    backend = OnnxRuntimeBackend(DEFAULT_MODEL, intra_op_threads=1)
    spec = backend.spec
    item = make_item(900_000_011, defects=["stitch_pitch", "lining"])
    decoded = {v: decode_view(d, tile_size=spec.tile_size) for v, d in item.views.items()}
    cam = backend.run(build_input(spec, {v: d.tile for v, d in decoded.items()})[None]).cam[0]
    displays = {v: d.display for v, d in decoded.items()}
    attention = heatmap.Attention.of(spec, cam)
    heat = attention.heat_by_view("counterfeit", set(displays))
    view, display = "stitching", displays["stitching"]
    heatmap.lookup_table()  # matplotlib's colormap imported once, as the service does at start-up

    blended = heatmap.blend(display, heat[view])
    rows = [
        ("blend (upsample + LUT + alpha)", timed(lambda: heatmap.blend(display, heat[view]), REPEAT)),
        ("encode WebP (q80, method 0)", timed(lambda: heatmap._encode(blended), REPEAT)),
        ("encode PNG (for comparison)",
         timed(lambda: Image.fromarray(blended).save(io.BytesIO(), "PNG"), 50)),
        ("one view, all of it (blend + WebP)",
         timed(lambda: heatmap._encode(heatmap.blend(display, heat[view])), REPEAT)),
        ("a matplotlib figure per view (PNG)", timed(lambda: pyplot_figure(display, heat[view]), 30)),
        ("whole report: 6 views + overview, one class",
         timed(lambda: heatmap.render(attention, displays, ["counterfeit"]), 50)),
        ("on the answer path now: store the CAM (attention.npz)",
         timed(lambda: heatmap.Attention.of(spec, cam).to_bytes(), REPEAT)),
    ]
    sizes = heatmap.render(attention, displays, ["counterfeit"])
    print(f"# Heatmap rendering — {machine()}, one thread, 256 px display squares\n")
    print("| step | median ms | p95 ms |\n|---|---|---|")
    for name, times in rows:
        print(f"| {name} | {ms(times):.2f} | {ms(times, 95):.2f} |")
    fast, slow = ms(rows[3][1]), ms(rows[4][1])
    print(f"\nfast path vs a figure per view: {slow / fast:.1f}× faster; stored WebP sizes: "
          f"{np.mean([len(v) for k, v in sizes.items() if 'overview' not in k]) / 1024:.1f} KiB per "
          f"view, {len(sizes['heatmap-counterfeit-overview.webp']) / 1024:.1f} KiB overview")
    Image.open(io.BytesIO(sizes["heatmap-counterfeit-overview.webp"])).save(
        Path(os.environ.get("HEATMAP_PNG", "var/heatmap-overview.png")))


if __name__ == "__main__":
    main()
