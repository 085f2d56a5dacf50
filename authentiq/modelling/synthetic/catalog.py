"""Fictional brands, their models and each model's authentic specification.

Every name and mark here is invented (no real trademark). A specification is what a genuine item
of that model looks like; counterfeits (``defects.py``) are specifications with deviations.
Geometry is in pixels at the generator's render resolution (``RENDER_SIZE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RENDER_SIZE = (480, 360)  # a 4:3 photo; the server crops the centre square and scales it down
VIEWS = ("overall", "logo", "stitching", "hardware", "label", "interior")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Spec:
    brand: str
    model: str
    mark: str  # which brand glyph: "quatrefoil" | "rings" | "chevron"
    wordmark: str
    shape: str  # "tote" | "satchel" | "bucket"
    body_rgb: RGB
    pattern_rgb: RGB
    trim_rgb: RGB
    thread_rgb: RGB
    lining_rgb: RGB
    lining_weave: str  # "twill" | "dots" | "plain"
    lining_period: float
    label_rgb: RGB
    metal: str  # "silver" | "gold"
    pattern_spacing: float  # monogram repeat on the body
    seam_offset: float  # pattern shift across the centre seam (0 = matched)
    glyph_scale: float  # 1.0 = the brand's geometry
    font_stroke: int  # 0 = regular weight
    letter_spacing: float  # extra pixels between letters of the wordmark
    print_blur: float  # blur radius of printed/stamped marks
    stitch_pitch: float
    stitch_angle: float  # degrees from the seam direction
    stitch_jitter: float  # std of stitch position, fraction of the pitch
    engraving_depth: float  # shadow offset of engraved text
    engraving_contrast: float  # 0..1
    serial_format: str  # "L" letter, "D" digit, other characters literal
    country: str


_BASE: dict[str, Any] = {
    "seam_offset": 0.0,
    "glyph_scale": 1.0,
    "font_stroke": 0,
    "print_blur": 0.0,
    "stitch_jitter": 0.02,
    "engraving_depth": 2.0,
    "engraving_contrast": 1.0,
}

CATALOG: tuple[Spec, ...] = (
    Spec(brand="Verlaine", model="Amande", mark="quatrefoil", wordmark="VERLAINE",
         shape="tote", body_rgb=(122, 84, 52), pattern_rgb=(196, 160, 104),
         trim_rgb=(176, 120, 70), thread_rgb=(226, 190, 120), lining_rgb=(150, 40, 44),
         lining_weave="twill", lining_period=16.0, label_rgb=(190, 150, 110), metal="gold",
         pattern_spacing=62.0, letter_spacing=4.0, stitch_pitch=40.0, stitch_angle=28.0,
         serial_format="LL DDDD", country="MADE IN FRANCE", **_BASE),
    Spec(brand="Verlaine", model="Orsay", mark="quatrefoil", wordmark="VERLAINE",
         shape="satchel", body_rgb=(40, 38, 44), pattern_rgb=(150, 146, 160),
         trim_rgb=(90, 60, 48), thread_rgb=(210, 200, 180), lining_rgb=(40, 80, 130),
         lining_weave="twill", lining_period=16.0, label_rgb=(70, 60, 58), metal="silver",
         pattern_spacing=62.0, letter_spacing=4.0, stitch_pitch=40.0, stitch_angle=28.0,
         serial_format="LL DDDD", country="MADE IN FRANCE", **_BASE),
    Spec(brand="Castellan", model="Riva", mark="rings", wordmark="CASTELLAN",
         shape="satchel", body_rgb=(176, 36, 40), pattern_rgb=(220, 120, 110),
         trim_rgb=(120, 24, 30), thread_rgb=(236, 226, 210), lining_rgb=(214, 200, 170),
         lining_weave="dots", lining_period=22.0, label_rgb=(200, 190, 170), metal="silver",
         pattern_spacing=70.0, letter_spacing=2.0, stitch_pitch=46.0, stitch_angle=0.0,
         serial_format="DD-DDDD-L", country="MADE IN ITALY", **_BASE),
    Spec(brand="Castellan", model="Lumen", mark="rings", wordmark="CASTELLAN",
         shape="bucket", body_rgb=(222, 206, 170), pattern_rgb=(160, 130, 90),
         trim_rgb=(140, 100, 60), thread_rgb=(120, 80, 40), lining_rgb=(60, 110, 70),
         lining_weave="dots", lining_period=22.0, label_rgb=(170, 130, 90), metal="gold",
         pattern_spacing=70.0, letter_spacing=2.0, stitch_pitch=46.0, stitch_angle=0.0,
         serial_format="DD-DDDD-L", country="MADE IN ITALY", **_BASE),
    Spec(brand="Noor & Kessler", model="Dune", mark="chevron", wordmark="NOOR KESSLER",
         shape="bucket", body_rgb=(196, 150, 96), pattern_rgb=(120, 80, 40),
         trim_rgb=(90, 60, 30), thread_rgb=(240, 236, 228), lining_rgb=(230, 214, 180),
         lining_weave="plain", lining_period=14.0, label_rgb=(110, 80, 50), metal="gold",
         pattern_spacing=56.0, letter_spacing=1.0, stitch_pitch=34.0, stitch_angle=-20.0,
         serial_format="NK DDDD DD", country="MADE IN SPAIN", **_BASE),
    Spec(brand="Noor & Kessler", model="Atlas", mark="chevron", wordmark="NOOR KESSLER",
         shape="tote", body_rgb=(30, 70, 62), pattern_rgb=(110, 160, 140),
         trim_rgb=(20, 40, 36), thread_rgb=(230, 200, 60), lining_rgb=(232, 140, 60),
         lining_weave="plain", lining_period=14.0, label_rgb=(40, 70, 62), metal="silver",
         pattern_spacing=56.0, letter_spacing=1.0, stitch_pitch=34.0, stitch_angle=-20.0,
         serial_format="NK DDDD DD", country="MADE IN SPAIN", **_BASE),
)


def find_spec(brand: str, model: str) -> Spec:
    for spec in CATALOG:
        if spec.brand.lower() == brand.lower() and spec.model.lower() == model.lower():
            return spec
    known = ", ".join(f"{s.brand}/{s.model}" for s in CATALOG)
    raise KeyError(f"no synthetic model {brand}/{model}; known: {known}")
