"""memlib.copy_sensitivity (claim 2, Study v2): the sensitivity is the copies' effect minus the
fresh images' on the same paired draws; seen strengths, contrasts and crossings from it."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import copy_sensitivity as cs
from memlib.bootstrap import percentile_ci, resample_indices
from memlib.claims import predicted_contrast
from memlib.ct import fit_reference
from memlib.errors import InputError


@pytest.fixture(scope="module")
def world():
    """A 3-layer reference, copies of its training points and fresh points from the test law."""
    rng = np.random.default_rng(2)
    train = [rng.normal(size=(400, 6)).astype(np.float32) for _ in range(3)]
    test = [rng.normal(size=(300, 6)).astype(np.float32) for _ in range(3)]
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    copies = [t[:100] for t in train]
    fresh = [rng.normal(size=(100, 6)).astype(np.float32) for _ in range(3)]
    return ref, copies, fresh, rng


def test_identity_transform_is_the_copies_effect_minus_the_fresh_effect(world):
    ref, copies, fresh, _ = world
    draws = resample_indices(100, 40, seed=0)
    s = cs.measure(ref, copies, fresh, draws)
    eff = lambda g, idx: ref.subset_curves(g, idx, statistic="effect")
    np.testing.assert_array_equal(s.point, eff(copies, [np.arange(100)])[0] - eff(fresh, [np.arange(100)])[0])
    np.testing.assert_array_equal(s.boot, eff(copies, list(draws)) - eff(fresh, list(draws)))
    np.testing.assert_array_equal(s.effect_copies, -1.0)          # exact copies: the floor
    assert np.all(s.point < -0.8)


def test_the_same_draws_pair_copies_and_fresh(world):
    ref, _, fresh, _ = world
    s = cs.measure(ref, fresh, fresh, resample_indices(100, 25, seed=1))
    np.testing.assert_array_equal(s.point, 0.0)
    np.testing.assert_array_equal(s.boot, 0.0)                    # every draw, not only on average


def _sens(point, spread=0.01, n_boot=50, seed=0):
    point = np.asarray(point, float)
    boot = point + spread * np.random.default_rng(seed).standard_normal((n_boot, len(point)))
    return cs.Sensitivity(point, boot, point - 1, -np.ones_like(point))


def test_seen_strengths_contrasts_and_crossings():
    sens = {("vit", "exact", 0.0): _sens([-1.0, -1.0, -1.0]),
            ("vit", "low-level", 0.5): _sens([-0.6, -0.3, -0.0]),
            ("vit", "low-level", 0.2): _sens([-0.8, -0.5, -0.1]),
            ("vit", "low-level", 1.0): _sens([0.0, 0.0, 0.0]),      # CI straddles 0: not seen
            ("vit", "high-level", 1.0): _sens([0.2, 0.1, 0.3]),     # above 0: not seen
            ("px", "exact", 0.0): _sens([-1.0]),
            ("px", "low-level", 0.2): _sens([-0.9])}
    assert cs.seen_strengths(sens, "vit", "low-level", 0.95) == [0.2, 0.5]
    assert cs.seen_strengths(sens, "vit", "high-level", 0.95) == []
    c = cs.contrast_draws(sens, "vit", "low-level", [0.2, 0.5])
    assert c.columns.tolist() == ["kind", "draw", "contrast"] and c.draw.tolist() == list(range(-1, 50))
    want = np.mean([predicted_contrast("low-level", sens["vit", "low-level", s].point) for s in (0.2, 0.5)])
    assert c.contrast.iloc[0] == pytest.approx(want) and want == pytest.approx(-0.65)
    assert cs.contrast_draws(sens, "vit", "high-level", []).empty
    cross = cs.crossing_table(sens).set_index(["encoder", "kind", "layer"])
    # layer 1: ratios 0.8 (0.2), 0.6 (0.5), 0 (1.0) -> half between 0.5 and 1.0: 0.5 + 0.1/0.6 * 0.5
    assert cross.loc[("vit", "low-level", 1), "half_strength"] == pytest.approx(0.5 + 0.5 / 6)
    assert cross.loc[("vit", "low-level", 3), "half_strength"] == pytest.approx(0.2 * 0.5 / 0.9)
    assert cross.loc[("px", "low-level", 1), "half_strength"] == 0.2
    assert bool(cross.loc[("px", "low-level", 1), "censored"])     # never fell to half
    assert not bool(cross.loc[("vit", "low-level", 1), "censored"])


def test_measure_spaces_loops_every_space_and_condition_on_the_same_draws(world):
    ref, copies, fresh, _ = world
    draws = resample_indices(100, 10, seed=3)
    shifted = [f + 0.5 for f in fresh]
    conds = [("exact", 0.0), ("low-level", 0.5)]
    feats = {("exact", 0.0): (copies, fresh), ("low-level", 0.5): (shifted, shifted)}
    asked = []

    def reference(encoder):
        asked.append(encoder)
        return ref

    sens = cs.measure_spaces(["a", "b"], conds, reference, lambda e, k, s: feats[k, s][0],
                             lambda e, k, s: feats[k, s][1], draws, progress=False)
    assert list(sens) == [("a", "exact", 0.0), ("a", "low-level", 0.5), ("b", "exact", 0.0),
                          ("b", "low-level", 0.5)]
    assert asked == ["a", "b"]                                       # one reference per space
    want = cs.measure(ref, copies, fresh, draws)
    np.testing.assert_array_equal(sens["b", "exact", 0.0].boot, want.boot)
    np.testing.assert_array_equal(sens["a", "low-level", 0.5].boot, 0.0)   # same set twice: 0


def test_contrast_table_stacks_the_kinds_over_their_seen_strengths():
    sens = {("vit", "exact", 0.0): _sens([-1.0, -1.0, -1.0]),
            ("vit", "low-level", 0.1): _sens([-0.8, -0.4, -0.2], seed=1),
            ("vit", "low-level", 0.3): _sens([-0.4, -0.2, 0.0], seed=2),
            ("vit", "low-level", 1.0): _sens([0.1, 0.1, 0.1], seed=3),       # not seen
            ("vit", "high-level", 0.5): _sens([0.0, -0.1, -0.5], seed=4),
            ("px", "low-level", 0.1): _sens([-0.9], seed=5)}
    table = cs.contrast_table(sens, "vit", 0.95)
    assert table.kind.unique().tolist() == ["low-level", "high-level"]
    low = table[table.kind == "low-level"].set_index("draw").contrast
    # early minus late, mean over the seen strengths 0.1 and 0.3: ((-0.8+0.2) + (-0.4-0.0)) / 2
    assert low[-1] == pytest.approx(-0.5)
    boot = np.mean([predicted_contrast("low-level", sens["vit", "low-level", s].boot) for s in (0.1, 0.3)], axis=0)
    np.testing.assert_allclose(low.loc[0:].to_numpy(), boot)           # per draw, not per point
    high = table[table.kind == "high-level"].set_index("draw").contrast
    assert high[-1] == pytest.approx(-0.5)                              # late minus early
    assert len(high) == 51
    nothing = {k: v for k, v in sens.items() if k[2] in (0.0, 1.0) or k[0] == "px"}
    empty = cs.contrast_table(nothing, "vit", 0.95)
    assert empty.empty and empty.columns.tolist() == ["kind", "draw", "contrast"]


def test_a_ci_ending_exactly_at_zero_is_not_seen():
    boot = np.zeros((20, 2))                       # layer 1: every draw exactly 0
    boot[:10, 1] = -0.4                            # layer 2: half the draws below 0, upper end 0
    at_zero = cs.Sensitivity(np.array([0.0, -0.2]), boot, np.zeros(2), np.zeros(2))
    below = cs.Sensitivity(at_zero.point, boot - 1e-9, np.zeros(2), np.zeros(2))
    assert percentile_ci(boot, 0.9)[1].tolist() == [0.0, 0.0]
    sens = {("vit", "low-level", 0.1): at_zero, ("vit", "low-level", 0.2): below}
    assert cs.seen_strengths(sens, "vit", "low-level", 0.9) == [0.2]


def test_crossing_table_needs_the_exact_copies():
    with pytest.raises(InputError, match="exact"):
        cs.crossing_table({("vit", "low-level", 0.2): _sens([-0.5, -0.1])})


def test_conditions_and_summary_table():
    params = {"low_strengths": [0.1, 1], "high_strengths": [0.5]}
    assert cs.conditions(params) == [("exact", 0.0), ("low-level", 0.1), ("low-level", 1.0), ("high-level", 0.5)]
    table = cs.summary_table({("vit", "exact", 0.0): _sens([-1.0, -0.5])}, 0.9)
    assert table.columns.tolist() == ["encoder", "kind", "strength", "layer", "sensitivity", "ci_low",
                                      "ci_high", "effect_copies", "effect_fresh"]
    assert table.layer.tolist() == [1, 2] and table.sensitivity.tolist() == [-1.0, -0.5]
    assert (table.ci_low < table.sensitivity).all() and (table.sensitivity < table.ci_high).all()
