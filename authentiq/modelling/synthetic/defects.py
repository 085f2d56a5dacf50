"""How counterfeits deviate from the authentic specification.

Each defect kind changes one aspect of a :class:`Spec` and shows in one view. Magnitudes are drawn
from ranges whose low ends are deliberately subtle (a stitch pitch 10% off, one step of font
weight). Genuine items get small manufacturing tolerances (``tolerate``) so the model must learn
the threshold, not the exact value.
"""

from __future__ import annotations

import colorsys
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from authentiq.modelling.synthetic.catalog import RGB, Spec


@dataclass(frozen=True)
class DefectKind:
    name: str
    view: str
    description: str
    apply: Callable[[Spec, np.random.Generator], Spec]


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _hue_shift(rgb: RGB, degrees: float) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    s = max(s, 0.25)  # a hue shift must show even on greyish colours
    r, g, b = colorsys.hsv_to_rgb((h + degrees / 360.0) % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _other_serial(fmt: str, rng: np.random.Generator) -> str:
    choices = [
        fmt.replace(" ", "").replace("-", ""),  # grouping lost
        fmt + "D",  # one character too many
        fmt[:-1],  # one character too few
        fmt.replace("D", "L", 2),  # letters where digits belong
        fmt.replace(" ", "-") if " " in fmt else fmt.replace("-", " "),  # wrong separator
    ]
    return [c for c in choices if c != fmt][int(rng.integers(0, 4))]


def _replace(spec: Spec, **kw: object) -> Spec:
    return dataclasses.replace(spec, **kw)  # type: ignore[arg-type]


DEFECTS: tuple[DefectKind, ...] = (
    DefectKind("stitch_pitch", "stitching", "stitch pitch 10–25% off",
               lambda s, r: _replace(s, stitch_pitch=s.stitch_pitch
                                     * (1 + _sign(r) * r.uniform(0.10, 0.25)))),
    DefectKind("stitch_angle", "stitching", "stitches slanted 12–25° off",
               lambda s, r: _replace(s, stitch_angle=s.stitch_angle + _sign(r) * r.uniform(12, 25))),
    DefectKind("stitch_irregular", "stitching", "uneven stitch spacing",
               lambda s, r: _replace(s, stitch_jitter=r.uniform(0.12, 0.22))),
    DefectKind("font_weight", "logo", "wordmark one weight too bold",
               lambda s, r: _replace(s, font_stroke=1)),
    DefectKind("letter_spacing", "logo", "wordmark letter spacing off",
               lambda s, r: _replace(s, letter_spacing=s.letter_spacing + _sign(r) * r.uniform(3, 6)
                                     if s.letter_spacing > 3 else s.letter_spacing + r.uniform(3, 6))),
    DefectKind("logo_geometry", "logo", "brand mark proportions distorted",
               lambda s, r: _replace(s, glyph_scale=1 + _sign(r) * r.uniform(0.15, 0.3))),
    DefectKind("blurry_print", "logo", "blurry printing of the mark",
               lambda s, r: _replace(s, print_blur=r.uniform(1.8, 3.0))),
    DefectKind("pattern_misaligned", "overall", "monogram misaligned at the centre seam",
               lambda s, r: _replace(s, seam_offset=s.pattern_spacing * r.uniform(0.25, 0.5))),
    DefectKind("colour_shift", "overall", "leather colour off",
               lambda s, r: _replace(s, body_rgb=_hue_shift(s.body_rgb, _sign(r) * r.uniform(14, 30)))),
    DefectKind("serial_format", "label", "serial number fails the brand's format",
               lambda s, r: _replace(s, serial_format=_other_serial(s.serial_format, r))),
    DefectKind("shallow_engraving", "hardware", "shallow, low-contrast engraving",
               lambda s, r: _replace(s, engraving_depth=r.uniform(0.3, 0.8),
                                     engraving_contrast=r.uniform(0.2, 0.45))),
    DefectKind("hardware_tone", "hardware", "wrong plating tone",
               lambda s, r: _replace(s, metal="gold" if s.metal == "silver" else "silver")),
    DefectKind("lining", "interior", "wrong lining colour or weave",
               lambda s, r: _replace(s, lining_rgb=_hue_shift(s.lining_rgb, _sign(r) * r.uniform(25, 60)))
               if r.random() < 0.5 else
               _replace(s, lining_period=s.lining_period * r.uniform(1.5, 2.0))),
)
DEFECTS_BY_NAME = {d.name: d for d in DEFECTS}


def tolerate(spec: Spec, rng: np.random.Generator) -> Spec:
    """Manufacturing tolerance of genuine items: small, well inside the defect ranges."""
    return _replace(
        spec,
        stitch_pitch=spec.stitch_pitch * (1 + rng.uniform(-0.025, 0.025)),
        stitch_angle=spec.stitch_angle + rng.uniform(-2.5, 2.5),
        body_rgb=_jitter_rgb(spec.body_rgb, rng, 4),
        lining_rgb=_jitter_rgb(spec.lining_rgb, rng, 4),
        letter_spacing=spec.letter_spacing + rng.uniform(-0.5, 0.5),
        glyph_scale=1 + rng.uniform(-0.03, 0.03),
        seam_offset=spec.pattern_spacing * rng.uniform(-0.03, 0.03),
    )


def _jitter_rgb(rgb: RGB, rng: np.random.Generator, amount: int) -> RGB:
    j = rng.integers(-amount, amount + 1, size=3)
    return (int(np.clip(rgb[0] + j[0], 0, 255)), int(np.clip(rgb[1] + j[1], 0, 255)),
            int(np.clip(rgb[2] + j[2], 0, 255)))


def apply_defects(spec: Spec, names: list[str], rng: np.random.Generator) -> Spec:
    for name in names:
        spec = DEFECTS_BY_NAME[name].apply(spec, rng)
    return spec
