from __future__ import annotations

import io
from collections import Counter

import pytest
from PIL import Image

from authentiq.modelling.synthetic import CATALOG, VIEWS, make_item
from authentiq.modelling.synthetic.distractors import (
    ALTERATION_KINDS,
    DISTRACTOR_KINDS,
    Distractor,
    distractors,
    make_distractor,
)
from authentiq.modelling.synthetic.distractors.alterations import degrade, reorient
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check
from authentiq.settings import Settings

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

NOT_A_PRODUCT = [k for k in DISTRACTOR_KINDS
                 if k not in ("swapped_views", "duplicated_views", *ALTERATION_KINDS)]
EXPECTED = {"swapped_views": "wrong_view", "duplicated_views": "duplicate_view",
            **dict.fromkeys(ALTERATION_KINDS, "altered_view"), "foreign_view": "foreign_view"}
SEED = 11


@pytest.fixture(scope="module")
def examples() -> dict[str, Distractor]:
    """One distractor of each kind, all six views (the generator's slow part, made once)."""
    return {kind: make_distractor(SEED, kind) for kind in DISTRACTOR_KINDS}


@pytest.mark.parametrize("kind", DISTRACTOR_KINDS)
def test_deterministic_from_seed(kind: str, examples: dict[str, Distractor]) -> None:
    views = ("label",) if kind in NOT_A_PRODUCT else ("logo", "label")  # swapping needs two
    a = make_distractor(5, kind, views)
    assert a == make_distractor(5, kind, views)
    assert a.views["label"] != examples[kind].views["label"]  # another seed, another photo


@pytest.mark.parametrize("kind", DISTRACTOR_KINDS)
def test_one_decodable_photo_per_view(kind: str, examples: dict[str, Distractor]) -> None:
    d = examples[kind]
    expected = EXPECTED.get(kind, "not_a_product")
    assert (d.seed, d.kind, d.expected) == (SEED, kind, expected)
    assert (d.brand, d.model) in {(s.brand, s.model) for s in CATALOG}
    assert list(d.views) == list(VIEWS)
    formats = {decode_view(data, tile_size=128, view=view).format for view, data in d.views.items()}
    assert formats <= {"JPEG", "PNG"}
    if kind in NOT_A_PRODUCT:
        assert len(set(d.views.values())) == len(VIEWS)  # a different photo in every slot


@pytest.mark.parametrize("kind", NOT_A_PRODUCT)
def test_photos_are_phone_sized(kind: str, examples: dict[str, Distractor]) -> None:
    for data in examples[kind].views.values():
        w, h = Image.open(io.BytesIO(data)).size
        assert 640 <= max(w, h) <= 1600
        assert min(abs(w / h - r) for r in (4 / 3, 3 / 4, 1.0)) < 0.01


@pytest.mark.parametrize("kind", ["noise", "document", "texture", "object", "scene_crops"])
def test_most_photos_pass_the_quality_check(kind: str, examples: dict[str, Distractor]) -> None:
    thresholds = Settings().quality
    usable = [check(decode_view(data, tile_size=128, view=view), thresholds).usable
              for view, data in examples[kind].views.items()]
    assert sum(usable) >= 4, usable


def test_blank_frames_are_featureless(examples: dict[str, Distractor]) -> None:
    for view, data in examples["blank"].views.items():
        assert decode_view(data, tile_size=128, view=view).analysis.std() < 35


def test_swapped_views_put_no_photo_in_its_own_slot(examples: dict[str, Distractor]) -> None:
    d, item = examples["swapped_views"], make_item(SEED, counterfeit=False)
    assert (d.brand, d.model) == (item.brand, item.model)
    assert sorted(d.views.values()) == sorted(item.views.values())  # the item's own photos, moved
    assert all(d.views[v] != item.views[v] for v in VIEWS)
    pair = make_distractor(3, "swapped_views", ("logo", "label"))
    own = make_item(3, counterfeit=False, views=("logo", "label")).views
    assert pair.views == {"logo": own["label"], "label": own["logo"]}


def test_duplicated_views_repeat_one_photo() -> None:
    copies = set()
    for seed in (2, 3, 4):  # copied to 2 slots, to 3, to all
        d, item = make_distractor(seed, "duplicated_views"), make_item(seed, counterfeit=False)
        assert (d.brand, d.model, d.expected) == (item.brand, item.model, "duplicate_view")
        photo, count = Counter(d.views.values()).most_common(1)[0]
        source = next(v for v in VIEWS if item.views[v] == photo)
        assert all(d.views[v] in (item.views[v], photo) for v in VIEWS)  # the rest stay correct
        assert d.views[source] == photo
        copies.add(count)
    assert copies == {2, 3, 6}


def test_distractors_cycle_kinds_over_consecutive_seeds() -> None:
    kinds = ("duplicated_views", "swapped_views")
    made = list(distractors(3, 100, kinds))
    assert [(d.seed, d.kind) for d in made] == [(100, kinds[0]), (101, kinds[1]), (102, kinds[0])]
    assert made[1] == make_distractor(101, "swapped_views")
    assert list(distractors(0, 100)) == []


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown distractor kind 'cat'.*noise, blank, document"):
        make_distractor(1, "cat")
    with pytest.raises(ValueError, match="swapped_views"):
        distractors(3, 0, ("noise", "cat"))  # refused before anything is generated


def test_bad_views_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        make_distractor(1, "noise", ("logo", "logo"))
    with pytest.raises(ValueError, match="distinct names"):
        make_distractor(1, "noise", ("sole",))
    with pytest.raises(ValueError, match="at least two views"):
        make_distractor(1, "swapped_views", ("logo",))


def _pixels(photo: bytes) -> Image.Image:
    return Image.open(io.BytesIO(photo)).convert("L")


@pytest.mark.parametrize("kind", ALTERATION_KINDS)
def test_alterations_change_a_genuine_items_photos(kind: str, examples: dict[str, Distractor]) -> None:
    d, item = examples[kind], make_item(SEED, counterfeit=False)
    assert (d.brand, d.model) == (item.brand, item.model)
    changed = [v for v in VIEWS if d.views[v] != item.views[v]]
    assert len(changed) == (len(VIEWS) if kind == "upside_down" else 1)


def test_reorient_mirrors_and_turns() -> None:
    photo = make_item(SEED, counterfeit=False).views["label"]
    original = _pixels(photo)
    w, h = original.size
    mirrored = _pixels(reorient(photo, "mirrored"))
    assert mirrored.size == (w, h)
    import numpy as np

    left = np.asarray(original.resize((16, 16)), dtype=float)
    assert np.abs(np.asarray(mirrored.resize((16, 16)), dtype=float) - left[:, ::-1]).mean() < 3
    assert np.abs(np.asarray(mirrored.resize((16, 16)), dtype=float) - left).mean() > 3
    assert _pixels(reorient(photo, "turned_90")).size == (h, w)


def test_degrade_ruins_the_photo_in_three_ways() -> None:
    import numpy as np

    photo = make_item(SEED, counterfeit=False).views["logo"]
    w, h = _pixels(photo).size
    rng = np.random.default_rng(0)
    assert len(degrade(photo, "jpeg", rng)) < len(photo) / 3  # quality 1-5 keeps little
    upscaled = _pixels(degrade(photo, "upscaled", rng))
    original = _pixels(photo)

    def thumb(img: Image.Image) -> np.ndarray:
        t = np.asarray(img.resize((8, 8), Image.Resampling.BOX), dtype=float).ravel()
        return (t - t.mean()) / t.std()

    assert upscaled.size == (w, h)
    assert float(thumb(upscaled) @ thumb(original)) / 64 > 0.9  # the same photo from afar
    assert np.abs(np.asarray(upscaled, dtype=float) - np.asarray(original, dtype=float)).mean() > 5
    sw, sh = _pixels(degrade(photo, "stretched", rng)).size
    assert max(sw / sh, sh / sw) > 2.5


def test_foreign_view_comes_from_another_product() -> None:
    d, item = make_distractor(SEED, "foreign_view"), make_item(SEED, counterfeit=False)
    (view,) = [v for v in VIEWS if d.views[v] != item.views[v]]
    assert (d.brand, d.model) == (item.brand, item.model)
    others = [s for s in CATALOG if (s.brand, s.model) != (item.brand, item.model)]
    foreign = make_item(SEED + 1, counterfeit=False, spec=others[SEED % len(others)])
    assert d.views[view] == foreign.views[view]
