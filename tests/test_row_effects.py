"""memlib.row_effects: the exact split of a set's effect size into its rows' terms."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import hierarchical as hb
from memlib import row_effects as re_
from memlib.ct import fit_reference
from memlib.errors import InputError


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    L, D = 3, 8
    train = rng.normal(size=(L, 400, D)).astype(np.float32)
    test = rng.normal(size=(L, 300, D)).astype(np.float32)
    copies = train[:, :60]                                     # exact copies of T
    under = 1.6 * rng.normal(size=(L, 140, D)).astype(np.float32)   # under-fitting rows
    gen = np.concatenate([copies, under], axis=1)
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    return ref, gen, np.arange(200) < 60


def test_row_terms_sum_to_the_engines_effect(setup):
    ref, gen, _ = setup
    terms = re_.row_terms(ref, gen)
    whole = ref.subset_curves(gen, [np.arange(200)], statistic="effect")[0]
    np.testing.assert_allclose(re_.contribution(terms), whole, atol=1e-12)
    assert terms.effect.shape == (3, 200) and np.nanmin(terms.effect) >= -1 and np.nanmax(terms.effect) <= 1
    np.testing.assert_allclose(terms.weight.sum(axis=1), 1.0)     # every cell kept here
    # the row statistic m * w * r of hierarchical.rows_stat has the effect as its mean
    rows = (200 * terms.weight * terms.effect).T
    d = hb.hierarchical_bootstrap({"g": [hb.rows_stat("s", rows)]}, n_boot=5, seed=0, resample=("points",))
    np.testing.assert_allclose(d.point[0], whole, atol=1e-12)


def test_split_of_copies_and_under_fitting_rows(setup):
    ref, gen, flags = setup
    t = re_.split_table(ref, gen, {"all": np.ones(200, bool), "copies": flags, "non-copies": ~flags})
    assert len(t) == 9 and set(t.part) == {"all", "copies", "non-copies"}
    by = t.set_index(["part", "layer"])
    for l in (1, 2, 3):
        # exact copies sit at the floor; the net score is pulled up by the under-fitting rows
        assert by.loc[("copies", l), "effect"] == -1.0
        assert by.loc[("non-copies", l), "effect"] > 0.5
        assert by.loc[("all", l), "effect"] > 0.15         # net: +0.20 to +0.25 with 30 % exact copies
        assert (by.loc[("copies", l), "contribution"] + by.loc[("non-copies", l), "contribution"]
                == pytest.approx(by.loc[("all", l), "contribution"], abs=1e-12))
        assert by.loc[("all", l), "contribution"] == pytest.approx(by.loc[("all", l), "effect"], abs=1e-12)
    assert by.loc[("copies", 1), "n"] == 60 and by.loc[("copies", 1), "share"] == pytest.approx(0.3)


def test_small_or_empty_parts_and_bad_rows(setup):
    ref, gen, _ = setup
    t = re_.split_table(ref, gen, {"few": np.arange(15), "none": np.array([], int)})
    assert t[t.part == "few"].effect.isna().all() and t[t.part == "none"].effect.isna().all()
    assert (t[t.part == "none"].contribution == 0).all()
    with pytest.raises(InputError, match="mask needs shape"):
        re_.split_table(ref, gen, {"bad": np.ones(5, bool)})
    with pytest.raises(InputError, match=r"indices must lie in \[0, 200\)"):
        re_.split_table(ref, gen, {"bad": np.array([0, 200])})
    with pytest.raises(InputError, match="undefined"):
        re_.row_terms(ref, gen[:, :20])
