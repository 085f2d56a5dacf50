"""Out-of-distribution submissions: things that are not a product, or a product submitted wrongly.

``make_distractor(seed, kind)`` returns one submission claiming a catalogue product. Its photos are
noise, a blank frame, a printed page, a texture, an everyday object or crops of one scene
(``expected = "not_a_product"``), or a genuine synthetic item's own photos in the wrong slots
(``"wrong_view"``) or repeated (``"duplicate_view"``), or altered after they were taken — mirrored,
turned, ruined by compression, upscaling or stretching (``"altered_view"``) — or with one view taken
from another product's genuine item (``"foreign_view"``). ``authentiq evaluate --ood`` measures whether
the service abstains on them. Every photo is phone-sized (640–1600 px on the long side) with camera
nuisances (light falloff, blur, sensor noise, JPEG or PNG); all but the blank frames are meant to
pass a plain quality check. Everything is deterministic from the seed.

This module picks the kind and its painter; ``camera`` takes the photos, ``surfaces``, ``documents``,
``objects`` and ``scenes`` paint what is in them (with ``drawing``'s primitives), and ``view_mixups``
rearranges a genuine item's photos, ``alterations`` alters them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from authentiq.modelling.synthetic import CATALOG, VIEWS, make_item
from authentiq.modelling.synthetic.distractors.alterations import alter
from authentiq.modelling.synthetic.distractors.camera import frame_size, photograph
from authentiq.modelling.synthetic.distractors.documents import paint_document
from authentiq.modelling.synthetic.distractors.drawing import Size
from authentiq.modelling.synthetic.distractors.objects import paint_object
from authentiq.modelling.synthetic.distractors.scenes import scene_crops
from authentiq.modelling.synthetic.distractors.surfaces import paint_blank, paint_noise, paint_texture
from authentiq.modelling.synthetic.distractors.view_mixups import mix_up

__all__ = ["ALTERATION_KINDS", "DISTRACTOR_KINDS", "PAINTED_KINDS", "Distractor", "distractors",
           "make_distractor", "rearranged"]

ALTERATION_KINDS: tuple[str, ...] = ("mirrored_view", "turned_view", "upside_down", "degraded_view",
                                     "foreign_view")
DISTRACTOR_KINDS: tuple[str, ...] = ("noise", "blank", "document", "texture", "object", "scene_crops",
                                     "swapped_views", "duplicated_views", *ALTERATION_KINDS)
PAINTED_KINDS: tuple[str, ...] = DISTRACTOR_KINDS[:6]  # not a product at all: claim any product
_EXPECTED = {"swapped_views": "wrong_view", "duplicated_views": "duplicate_view",
             **{kind: "altered_view" for kind in ALTERATION_KINDS}, "foreign_view": "foreign_view"}

Painter = Callable[[np.random.Generator, Size], Image.Image]
_PAINTERS: dict[str, Painter] = {
    "noise": paint_noise,
    "blank": paint_blank,
    "document": paint_document,
    "texture": paint_texture,
    "object": paint_object,
}


@dataclass(frozen=True)
class Distractor:
    seed: int
    kind: str
    brand: str  # the claimed product
    model: str
    views: dict[str, bytes] = field(repr=False)  # view name -> encoded photo
    expected: str  # what a perfect gate answers: "not_a_product" | "wrong_view" | "duplicate_view"
    #                | "altered_view" | "foreign_view"


def make_distractor(seed: int, kind: str, views: tuple[str, ...] = VIEWS) -> Distractor:
    """One out-of-distribution submission of ``kind`` with a photo for each of ``views``."""
    if kind not in DISTRACTOR_KINDS:
        raise ValueError(f"unknown distractor kind {kind!r}; known kinds: {', '.join(DISTRACTOR_KINDS)}")
    unknown = sorted(set(views) - set(VIEWS))
    if not views or unknown or len(set(views)) != len(views):
        raise ValueError(f"views must be distinct names from {VIEWS}; got {views}")
    if kind in _EXPECTED:
        item = make_item(seed, counterfeit=False, views=views)
        foreign = _other_product(seed, item.brand, item.model, views) if kind == "foreign_view" else None
        return rearranged(seed, kind, item.views, item.brand, item.model, foreign)
    rng = np.random.default_rng([seed, DISTRACTOR_KINDS.index(kind)])
    product = CATALOG[int(rng.integers(0, len(CATALOG)))]
    if kind == "scene_crops":
        photos = scene_crops(rng, views)
    else:
        paint = _PAINTERS[kind]
        photos = {}
        for view in views:
            img = paint(rng, frame_size(rng))
            noise = None if kind != "blank" or rng.random() < 0.5 else 0.0
            photos[view] = photograph(img, rng, noise=noise)
    return Distractor(seed, kind, product.brand, product.model, photos, "not_a_product")


def rearranged(seed: int, kind: str, photos: dict[str, bytes], brand: str, model: str,
               foreign: dict[str, bytes] | None = None) -> Distractor:
    """A genuine item's own ``photos`` submitted wrongly as ``kind`` (swapped or duplicated
    views, or an alteration; ``foreign_view`` takes a view from ``foreign``, another product's
    genuine photos), claiming its own product. Any item's photos will do: ``authentiq train``
    makes these from a folder's test items."""
    if kind not in _EXPECTED:
        raise ValueError(f"{kind!r} does not rearrange an item's photos; those that do: "
                         f"{', '.join(_EXPECTED)}")
    views = tuple(photos)
    if len(views) < 2 and kind not in ALTERATION_KINDS:
        raise ValueError(f"{kind} needs at least two views; got {views}")
    if kind == "foreign_view" and (foreign is None or not set(views) <= set(foreign)):
        raise ValueError("foreign_view needs another product's photos of the same views")
    rng = np.random.default_rng([seed, DISTRACTOR_KINDS.index(kind)])
    if kind in ALTERATION_KINDS:
        moved = alter(photos, rng, views, kind, foreign)
    else:
        moved = mix_up(photos, rng, views, swap=kind == "swapped_views")
    return Distractor(seed, kind, brand, model, moved, _EXPECTED[kind])


def _other_product(seed: int, brand: str, model: str, views: tuple[str, ...]) -> dict[str, bytes]:
    """A genuine item's photos of a product other than ``brand/model`` (deterministic from ``seed``)."""
    others = [s for s in CATALOG if (s.brand, s.model) != (brand, model)]
    spec = others[seed % len(others)]
    return make_item(seed + 1, counterfeit=False, spec=spec, views=views).views


def distractors(n: int, first_seed: int, kinds: tuple[str, ...] = DISTRACTOR_KINDS) -> Iterator[Distractor]:
    """``n`` distractors with seeds ``first_seed``.. ``first_seed + n - 1``, cycling through ``kinds``."""
    unknown = [k for k in kinds if k not in DISTRACTOR_KINDS]
    if not kinds or unknown or n < 0:
        raise ValueError(f"need n >= 0 and kinds from {', '.join(DISTRACTOR_KINDS)}; got n={n}, "
                         f"kinds={kinds}")
    return (make_distractor(first_seed + i, kinds[i % len(kinds)]) for i in range(n))
