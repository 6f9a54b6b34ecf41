"""Claim 2's two intervals (issue 30, item 4) on synthetic sensitivities with known answers:
the learned-vs-structural difference-in-differences (trained minus shuffled-weights contrast,
paired draw by draw) and the "beyond references" margin of half-sensitivity strengths."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib import claims
from memlib import copy_sensitivity as cs
from memlib.bootstrap import percentile_ci
from memlib.errors import InputError

B, L = 40, 6                       # draws, layers: early third = layers 1-2, late third = 5-6
GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def _noisy(point, seed, spread=0.02):
    """A Sensitivity with (B, L) draws scattered around ``point``."""
    point = np.asarray(point, float)
    boot = point + spread * np.random.default_rng(seed).standard_normal((B, len(point)))
    return cs.Sensitivity(point, boot, point - 1, -np.ones_like(point))


def _shifted(s, shift):
    """The same Sensitivity with ``shift`` (L,) added to the point and to every draw."""
    return cs.Sensitivity(s.point + shift, s.boot + shift, s.effect_copies + shift, s.effect_fresh)


# --------------------------------------------------------------------------- difference-in-differences

def _did_world(low_shift=-0.1, high_shift=-0.2):
    """Shuffled weights with noisy draws; trained = shuffled + a constant per-layer shift, so the
    predicted contrast moves by exactly the shift on every draw (early layers for low-level:
    early minus late; late layers for high-level: late minus early)."""
    sens = {}
    for enc in ("vit", "vit+shuffled"):
        sens[enc, "exact", 0.0] = _noisy(np.full(L, -1.0), seed=0)
    base = {("low-level", 0.2): [-0.5, -0.5, -0.4, -0.4, -0.3, -0.3],
            ("low-level", 0.5): [-0.3, -0.3, -0.2, -0.2, -0.2, -0.2],
            ("low-level", 1.0): [0.3, 0.3, 0.3, 0.3, 0.3, 0.3],          # above 0: not seen
            ("high-level", 0.3): [-0.4, -0.4, -0.4, -0.4, -0.4, -0.4]}
    low = np.array([low_shift] * 2 + [0.0] * 4)
    high = np.array([0.0] * 4 + [high_shift] * 2)
    for i, ((kind, s), point) in enumerate(base.items()):
        sens["vit+shuffled", kind, s] = _noisy(point, seed=i + 1)
        sens["vit", kind, s] = _shifted(sens["vit+shuffled", kind, s], low if kind == "low-level" else high)
    return sens


def test_a_constant_shift_is_the_difference_in_differences_with_a_zero_width_ci():
    sens = _did_world(low_shift=-0.1, high_shift=-0.2)
    table = cs.learned_contrast_table(sens, "vit", 0.95).set_index("kind")
    assert table.index.tolist() == ["low-level", "high-level"]
    # early layers' mean moves by the whole shift (both early layers shifted)
    for kind, shift in (("low-level", -0.1), ("high-level", -0.2)):
        row = table.loc[kind]
        assert row.value == pytest.approx(shift)
        assert row.ci_low == pytest.approx(shift) and row.ci_high == pytest.approx(shift)   # paired
        assert row.trained - row.shuffled == pytest.approx(shift)
        assert row.n_draws == B and row.n_nan == 0
    assert table.loc["low-level", "n_strengths"] == 2            # 0.2 and 0.5; 1.0 is not seen
    # the unpaired contrasts themselves have wide CIs: only the pairing makes the difference exact
    alone = cs.contrast_table(sens, "vit", 0.95)
    lo, hi = percentile_ci(alone[(alone.kind == "low-level") & (alone.draw >= 0)].contrast.to_numpy()[:, None], 0.95)
    assert hi[0] - lo[0] > 0.01


def test_the_difference_is_over_the_trained_encoders_seen_strengths_only():
    sens = _did_world()
    # at a strength the trained encoder does not see, the shuffled space changes nothing
    sens["vit+shuffled", "low-level", 1.0] = _noisy(np.full(L, -5.0), seed=9)
    assert cs.learned_contrast_table(sens, "vit", 0.95).set_index("kind").loc["low-level", "value"] == pytest.approx(-0.1)
    want = (np.mean([claims.predicted_contrast("low-level", sens["vit", "low-level", s].point) for s in (0.2, 0.5)])
            - np.mean([claims.predicted_contrast("low-level", sens["vit+shuffled", "low-level", s].point) for s in (0.2, 0.5)]))
    assert want == pytest.approx(-0.1)


def test_difference_in_differences_counts_nan_draws_and_needs_the_shuffled_space():
    sens = _did_world()
    s = sens["vit", "high-level", 0.3]
    boot = s.boot.copy()
    boot[[3, 7], 5] = np.nan                       # two replicates without a kept cell in layer 6
    sens["vit", "high-level", 0.3] = s._replace(boot=boot)
    row = cs.learned_contrast_table(sens, "vit", 0.95).set_index("kind").loc["high-level"]
    assert row.n_nan == 2 and row.ci_low == pytest.approx(-0.2) and row.ci_high == pytest.approx(-0.2)
    del sens["vit+shuffled", "low-level", 0.5]
    with pytest.raises(InputError, match="shuffled"):
        cs.learned_contrast_table(sens, "vit", 0.95)


def test_a_kind_without_a_seen_strength_gets_a_nan_row():
    sens = {k: v for k, v in _did_world().items() if k[1] != "high-level"}
    table = cs.learned_contrast_table(sens, "vit", 0.95).set_index("kind")
    assert np.isnan(table.loc["high-level", "value"]) and table.loc["high-level", "n_strengths"] == 0


# --------------------------------------------------------------------------- beyond-references margin

def _linear(h):
    """Sensitivities on GRID for exact = -1 and half-sensitivity strength h ((L,) or (B, L)):
    S(s) = -(1 - s / (2 h)) is linear in s, so the interpolated crossing is exactly h."""
    return {s: -(1.0 - s / (2.0 * np.asarray(h, float))) for s in GRID}


def _space(h_point, h_boot, kinds=("low-level", "high-level")):
    """One space's Sensitivity dict entries (without the encoder key) with known crossings."""
    h_point, h_boot = np.asarray(h_point, float), np.asarray(h_boot, float)
    out = {("exact", 0.0): cs.Sensitivity(-np.ones(h_point.shape), -np.ones(h_boot.shape),
                                          -np.ones(h_point.shape), np.zeros(h_point.shape))}
    p, b = _linear(h_point), _linear(h_boot)
    for kind in kinds:
        for s in GRID:
            out[kind, s] = cs.Sensitivity(p[s], b[s], p[s] - 1, -np.ones(h_point.shape))
    return out


def _margin_world():
    """Trained early (low-level) and late (high-level) layers cross at 0.5 + d_b on draw b,
    shuffled weights at 0.3, pixels at 0.4: the margin is 0.1 + d_b by construction."""
    d = np.linspace(-0.05, 0.05, B)
    trained = np.full(L, 0.45)
    boot = np.tile(trained, (B, 1))
    for cols in ((0, 1), (4, 5)):
        trained[list(cols)] = 0.5
        boot[:, list(cols)] = 0.5 + d[:, None]
    sens = {}
    for enc, (hp, hb) in {"vit": (trained, boot),
                          "vit+shuffled": (np.full(L, 0.3), np.full((B, L), 0.3)),
                          "pixels": (np.full(1, 0.4), np.full((B, 1), 0.4))}.items():
        sens.update({(enc,) + k: v for k, v in _space(hp, hb).items()})
    return sens, 0.1 + d


def test_the_margin_known_by_construction_and_its_percentile_ci():
    sens, margins = _margin_world()
    h = cs.half_strength_draws(sens, "vit", "low-level")
    assert h.shape == (1 + B, L)
    np.testing.assert_allclose(h[0], [0.5, 0.5, 0.45, 0.45, 0.5, 0.5])
    np.testing.assert_allclose(h[0], cs.crossing_table(sens).query("encoder == 'vit' and kind == 'low-level'").half_strength)
    table = cs.beyond_margin_table(sens, "vit", L, 0.9).set_index("kind")
    lo, hi = np.percentile(margins, [5, 95])
    for kind, layers in (("low-level", "1-2"), ("high-level", "5-6")):
        row = table.loc[kind]
        assert row.layers == layers
        assert row.value == pytest.approx(0.1)
        assert (row.trained, row.shuffled, row.pixels) == pytest.approx((0.5, 0.3, 0.4))
        assert row.ci_low == pytest.approx(lo) and row.ci_high == pytest.approx(hi)
        assert row.n_draws == B and row.n_nan == 0 and row.n_partial == 0


def test_the_point_margin_agrees_with_beyond_references():
    sens, _ = _margin_world()
    for pixels_h, beyond in ((0.4, True), (0.55, False)):       # pixels above the trained layers
        sens.update({("pixels",) + k: v for k, v in _space(np.full(1, pixels_h), np.full((B, 1), pixels_h)).items()})
        table = cs.beyond_margin_table(sens, "vit", L, 0.95).set_index("kind")
        cross = cs.crossing_table(sens)
        assert claims.beyond_references(cross, "low-level", [1, 2], "vit") is beyond
        assert bool(table.loc["low-level", "value"] > 0) is beyond
        assert table.loc["low-level", "value"] == pytest.approx(0.5 - max(0.3, pixels_h))


def test_nan_draws_are_left_out_and_counted():
    sens, margins = _margin_world()
    ex = sens["vit", "exact", 0.0]
    boot = ex.boot.copy()
    boot[0, [0, 1]] = np.nan          # draw 0: both early layers undecidable -> margin NaN
    boot[1, 0] = np.nan               # draw 1: one early layer undecidable -> mean of the other
    boot[2, 1] = 0.0                  # draw 2: a layer that does not see exact copies -> NaN layer
    sens["vit", "exact", 0.0] = ex._replace(boot=boot)
    row = cs.beyond_margin_table(sens, "vit", L, 0.9).set_index("kind").loc["low-level"]
    assert row.n_nan == 1 and row.n_partial == 2 and row.n_draws == B
    lo, hi = np.percentile(margins[1:], [5, 95])                   # the kept draws' margins are unchanged
    assert row.ci_low == pytest.approx(lo) and row.ci_high == pytest.approx(hi)
    # a reference that is NaN on a draw makes that draw's margin NaN (never "beyond")
    px = sens["pixels", "exact", 0.0]
    pboot = px.boot.copy()
    pboot[5] = np.nan
    sens["pixels", "exact", 0.0] = px._replace(boot=pboot)
    assert cs.beyond_margin_table(sens, "vit", L, 0.9).set_index("kind").loc["low-level", "n_nan"] == 2
    # every draw NaN: a NaN interval, all draws counted
    sens["vit", "exact", 0.0] = ex._replace(boot=np.full_like(boot, np.nan))
    row = cs.beyond_margin_table(sens, "vit", L, 0.9).set_index("kind").loc["low-level"]
    assert row.n_nan == B and np.isnan(row.ci_low) and np.isnan(row.ci_high) and row.value == pytest.approx(0.1)


def test_margins_need_exact_copies_and_matching_layers():
    sens, _ = _margin_world()
    with pytest.raises(InputError, match="layers"):
        cs.beyond_margin_table(sens, "vit", L + 3, 0.95)
    del sens["vit+shuffled", "exact", 0.0]
    with pytest.raises(InputError, match="exact"):
        cs.beyond_margin_table(sens, "vit", L, 0.95)


# --------------------------------------------------------------------------- claims.csv row

def test_the_claim_row_reports_both_and_keeps_rule_and_verdict():
    sens, _ = _margin_world()
    did = _did_world()
    for kind in ("low-level", "high-level"):       # the margin world's sensitivities, seen everywhere
        for enc in ("vit", "vit+shuffled"):
            did.update({(enc, k, s): v for (e, k, s), v in sens.items() if e == enc and k == kind})
    did.update({k: v for k, v in sens.items() if k[0] == "pixels"})
    contrasts = cs.contrast_table(did, "vit", 0.95)
    cross = cs.crossing_table(did)
    learned = cs.learned_contrast_table(did, "vit", 0.95)
    margins = cs.beyond_margin_table(did, "vit", L, 0.95)
    plain = claims.copy_levels_claim(contrasts, cross, encoder="vit", n_layers=L, level=0.95)
    full = claims.copy_levels_claim(contrasts, cross, encoder="vit", n_layers=L, level=0.95,
                                    learned=learned, margins=margins)
    assert {k: v for k, v in full.items() if k != "metric"} == {k: v for k, v in plain.items() if k != "metric"}
    assert full["metric"].startswith(plain["metric"])
    r = margins.set_index("kind").loc["low-level"]
    assert f"low-level layers 1-2 {r.value:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] (0 NaN draws left out)" in full["metric"]
    r = learned.set_index("kind").loc["high-level"]
    assert f"high-level {r.value:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" in full["metric"]
    assert "difference-in-differences" in full["metric"] and "difference-in-differences" not in plain["metric"]
    empty = claims.copy_levels_claim(contrasts, cross, encoder="vit", n_layers=L, level=0.95,
                                     learned=pd.DataFrame(), margins=None)
    assert empty["metric"] == plain["metric"]


def test_the_claim_row_names_a_kind_without_a_seen_strength():
    sens = {k: v for k, v in _did_world().items() if k[1] != "high-level"}
    learned = cs.learned_contrast_table(sens, "vit", 0.95)
    row = claims.copy_levels_claim(cs.contrast_table(sens, "vit", 0.95), pd.DataFrame(
        columns=["encoder", "kind", "layer", "half_strength"]), encoder="vit", n_layers=L, level=0.95, learned=learned)
    assert "high-level no seen strength" in row["metric"] and "low-level -0.100 [-0.100, -0.100]" in row["metric"]
