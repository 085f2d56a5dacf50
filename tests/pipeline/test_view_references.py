"""The per-view reference check's findings over descriptors (numpy; the frame the model computes
them in is tested in tests/modelling/test_view_check.py, the shipped model's floors through the
app in tests/system/test_trust.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from authentiq.contract.model_spec import ViewCheckParams
from authentiq.pipeline.view_references import FINDING, ViewReferences, check, prepare

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def params(floor: float = 0.5, loose: float = 0.8, margin: float = 0.1) -> ViewCheckParams:
    return ViewCheckParams(features_id="f1", components=0, counts=(1, 3),
                           floors={"logo": (floor - 0.2, floor)}, loose={"logo": (loose, loose)},
                           margins={"logo": (margin, margin)}, quantile=0.001, loose_quantile=0.1,
                           margin_quantile=0.999)


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def references() -> ViewReferences:
    """Product a's logos point along x, product b's along y; three references each."""
    refs = ViewReferences()
    for i, spread in enumerate((0.0, 0.1, -0.1)):
        refs.put(f"a{i}", "a", {"logo": unit(1, spread, 0.2)})
        refs.put(f"b{i}", "b", {"logo": 3 * unit(spread, 1, 0.2)})  # scale does not matter
    return refs


def test_floor_by_reference_count_and_the_other_product_test() -> None:
    refs = references()
    like_a = np.asarray([2.0, 0.05, 0.4])
    [match] = check(params(), refs, "a", {"logo": like_a})
    assert match.finding is None and match.floor == 0.5  # 3 references: the second column
    assert match.reference_id == "a0" and match.similarity == pytest.approx(0.9997, abs=1e-3)
    # the same photo claimed as the other product: unlike it
    [other] = check(params(), refs, "b", {"logo": like_a})
    assert other.finding == FINDING and other.reference_id.startswith("b")
    assert other.other_product is None  # below the floor: no need to search other products
    # above the floor but below the loose one, with another product's references closer by
    # more than the margin: unlike too, and the closer product is named
    sim = other.similarity
    [relative] = check(params(floor=sim - 0.01, loose=sim + 0.01, margin=0.0), refs, "b",
                       {"logo": like_a})
    assert relative.finding == FINDING and relative.other_product == "a"
    assert relative.other_similarity is not None and relative.other_similarity > sim
    # ... not when the other product is closer by less than the margin
    [near] = check(params(floor=sim - 0.01, loose=sim + 0.01, margin=0.99), refs, "b",
                   {"logo": like_a})
    assert near.finding is None and near.other_product is None
    # above the loose floor the other products are not searched at all
    [fine] = check(params(floor=sim - 0.01, loose=sim - 0.005), refs, "b", {"logo": like_a})
    assert fine.finding is None and fine.other_product is None
    # a view the product's references lack, or the model's floors do not name, is left out
    assert check(params(), refs, "a", {"label": like_a}) == []
    refs.put("c0", "c", {"label": unit(1, 0, 0)})
    assert check(params(), refs, "c", {"label": like_a}) == []


def test_fewer_references_take_the_lower_floor() -> None:
    refs = ViewReferences()
    refs.put("a0", "a", {"logo": unit(1, 0, 0)})
    [match] = check(params(floor=0.95), refs, "a", {"logo": unit(1, 0.5, 0)})  # similarity 0.894
    assert match.floor == 0.75 and match.finding is None
    refs.put("a1", "a", {"logo": unit(1, 1, 0)})
    refs.put("a2", "a", {"logo": unit(1, -1, 0)})
    [match] = check(params(floor=0.95), refs, "a", {"logo": unit(1, 0.5, 0)})
    assert match.floor == 0.95 and match.finding == FINDING


def test_changes_replace_and_remove_references() -> None:
    refs = references()
    q = unit(1, 0.05, 0.2)
    assert refs.count("a", "logo") == 3 and len(refs) == 6
    refs.remove(["a0", "a1", "a2", "nope"])
    assert refs.closest("a", "logo", q) is None and refs.count("a", "logo") == 0
    refs.put("b0", "a", {"logo": q})  # moved to another product: gone from the first
    assert refs.count("b", "logo") == 2 and refs.closest("a", "logo", q) == ("b0", pytest.approx(1.0))
    assert "b0" in refs and "a0" not in refs


def test_prepare_normalises() -> None:
    assert np.allclose(prepare(np.asarray([3.0, 4.0])), [0.6, 0.8])
    assert np.allclose(prepare(np.zeros(3)), 0.0)  # no division by zero


def test_params_tables_are_checked() -> None:
    p = params()
    assert p.at("logo", 1) == (0.3, 0.8, 0.1) and p.at("logo", 2) == (0.3, 0.8, 0.1)
    assert p.at("logo", 3) == p.at("logo", 500) == (0.5, 0.8, 0.1)
    common = {"features_id": "f", "components": 0, "quantile": 0.001, "loose_quantile": 0.1,
              "margin_quantile": 0.999}
    with pytest.raises(ValidationError, match="one value per count"):
        ViewCheckParams(counts=(1, 3), floors={"logo": (0.1,)}, loose={"logo": (0.1, 0.2)},
                        margins={"logo": (0.1, 0.2)}, **common)
    with pytest.raises(ValidationError, match="ascending"):
        ViewCheckParams(counts=(3, 1), floors={}, loose={}, margins={}, **common)
