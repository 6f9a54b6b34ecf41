"""Claim 1 under the Study v2 protocol: memlib.bootstrap (draws, CIs, the late-minus-early
contrast) and the rule in memlib.claims, on inputs whose numbers and verdicts are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib import bootstrap, claims
from memlib.claims import depth_signal_verdict
from memlib.ct import fit_reference
from memlib.errors import ParameterError

# --------------------------------------------------------------------------- memlib.bootstrap


def test_layer_thirds_and_late_minus_early_known_answers():
    early, late = bootstrap.layer_thirds(12)
    assert early.tolist() == [0, 1, 2, 3] and late.tolist() == [8, 9, 10, 11]
    assert [x.tolist() for x in bootstrap.layer_thirds(2)] == [[0], [1]]
    assert bootstrap.late_minus_early(np.arange(12.0)) == pytest.approx(8.0)   # 9.5 - 1.5
    scores = np.array([[-1, -1, 0, 0, 0, 0], [0, 0, 0, 0, -1, -1]], float)
    np.testing.assert_allclose(bootstrap.late_minus_early(scores), [1.0, -1.0])
    with pytest.raises(ParameterError):
        bootstrap.layer_thirds(1)


def test_resample_indices_are_seeded_draws_with_replacement():
    a = bootstrap.resample_indices(50, 30, seed=3)
    assert a.shape == (30, 50) and a.min() >= 0 and a.max() < 50
    np.testing.assert_array_equal(a, bootstrap.resample_indices(50, 30, seed=3))
    assert not np.array_equal(a, bootstrap.resample_indices(50, 30, seed=4))
    assert any(len(np.unique(r)) < 50 for r in a)                # repeats: with replacement
    with pytest.raises(ParameterError):
        bootstrap.resample_indices(0, 3, seed=0)


def test_percentile_ci_known_answers():
    boot = np.arange(101.0)[:, None] * np.array([1.0, -1.0])
    lo, hi = bootstrap.percentile_ci(boot, 0.9)
    np.testing.assert_allclose(lo, [5.0, -95.0])
    np.testing.assert_allclose(hi, [95.0, -5.0])
    lo, _ = bootstrap.percentile_ci(np.array([[np.nan], [1.0], [3.0]]), 0.5)   # NaN ignored
    assert lo[0] == pytest.approx(1.5)
    with pytest.raises(ParameterError):
        bootstrap.percentile_ci(boot, 1.0)


def test_layer_draws_are_subset_curves_of_the_draws():
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(400, 8)).astype(np.float32) for _ in range(3)]
    test = [rng.normal(size=(300, 8)).astype(np.float32) for _ in range(3)]
    gen = [np.concatenate([t[:60], rng.normal(size=(90, 8)).astype(np.float32)]) for t in train]
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    draws = bootstrap.resample_indices(150, 20, seed=1)
    got = bootstrap.layer_draws(ref, gen, draws)
    np.testing.assert_array_equal(got.point, ref.subset_curves(gen, [np.arange(150)], statistic="effect")[0])
    np.testing.assert_array_equal(got.boot, ref.subset_curves(gen, list(draws), statistic="effect"))
    assert np.all(got.point < 0)                               # 60 of 150 points are copies of T
    with pytest.raises(ParameterError, match="draws"):
        bootstrap.layer_draws(ref, gen, draws[:, :10])


# --------------------------------------------------------------------------- claim 1 rules


def test_is_copying_set():
    assert claims.is_copying_set("mixture", 0.0)                # by construction
    assert claims.is_copying_set("gradient", claims.COPY_RATE_MIN)
    assert not claims.is_copying_set("gradient", np.nextafter(claims.COPY_RATE_MIN, 0))
    assert not claims.is_copying_set("kde", float("nan"))
    with pytest.raises(ValueError):
        claims.is_copying_set("zoo", 1.0)


@pytest.mark.parametrize("ci_low,groups,n,verdict", [
    (0.01, {"gradient": 0.02, "kde": 0.001, "mixture": 0.3}, 5, "reproduced"),
    (0.01, {"gradient": 0.02, "kde": 0.0, "mixture": 0.3}, 5, "partly"),       # 0 is not above 0
    (0.0, {"gradient": 0.02, "kde": -0.1}, 5, "partly"),                       # one group above
    (0.01, {"gradient": -0.02, "kde": -0.1}, 5, "partly"),                     # pooled above
    (0.0, {"gradient": 0.0, "kde": -0.1}, 5, "not reproduced"),
    (float("nan"), {"gradient": float("nan")}, 5, "not reproduced"),
    (0.5, {"gradient": 0.5}, 0, "untestable here"),
])
def test_depth_signal_verdict(ci_low, groups, n, verdict):
    assert depth_signal_verdict(ci_low, groups, n) == verdict


def _contrast_rows(group, name, point, boot):
    return [dict(group=group, set=name, draw=-1, contrast=point)] + [
        dict(group=group, set=name, draw=b, contrast=c) for b, c in enumerate(boot)]


def test_pooled_contrast_weights_groups_equally():
    rows = (_contrast_rows("mixture", "a", 0.1, [0.1, 0.3]) + _contrast_rows("mixture", "b", 0.3, [0.1, 0.1])
            + _contrast_rows("gradient", "c", -0.4, [-0.4, 0.0]))
    pooled = claims.pooled_depth_contrast(pd.DataFrame(rows)).set_index(["group", "draw"]).contrast
    assert pooled["mixture", -1] == pytest.approx(0.2)
    assert pooled["all", -1] == pytest.approx((0.2 - 0.4) / 2)   # two sets of one group count once
    assert pooled["all", 0] == pytest.approx((0.1 - 0.4) / 2)
    assert pooled["all", 1] == pytest.approx((0.2 + 0.0) / 2)


def test_summarise_draws_point_and_percentiles():
    rows = _contrast_rows("g", "s", 0.25, np.linspace(0, 1, 101))
    out = claims.summarise_draws(pd.DataFrame(rows), ["group"], "contrast", 0.9)
    assert out.columns.tolist() == ["group", "contrast", "ci_low", "ci_high"]
    assert out.iloc[0].tolist() == ["g", 0.25, pytest.approx(0.05), pytest.approx(0.95)]


def test_depth_signal_claim_rows():
    rng = np.random.default_rng(0)
    up = lambda mu: list(mu + 0.01 * rng.standard_normal(200))
    rows = (_contrast_rows("gradient", "diffusion-n16", 0.2, up(0.2))
            + _contrast_rows("kde", "kde-0.02", 0.1, up(0.1))
            + _contrast_rows("mixture", "gan+exact@0.5", 0.3, up(0.3)))
    row = claims.depth_signal_claim(pd.DataFrame(rows), level=0.95, n_layers=12)
    assert set(row) == set(claims.CLAIM_COLUMNS)
    assert row["value"] == pytest.approx(0.2) and 0.18 < row["ci_low"] < 0.2 < row["ci_high"] < 0.22
    assert row["verdict"] == "reproduced"
    assert "layers 9-12 minus 1-4" in row["rule"]
    assert row["metric"].startswith("late-minus-early effect size per group: gradient: +0.200")
    rows += _contrast_rows("kde", "kde-0.05", -0.3, up(-0.3))        # kde group mean now -0.1
    row = claims.depth_signal_claim(pd.DataFrame(rows), level=0.95, n_layers=12)
    assert row["verdict"] == "partly" and "kde: -0.100" in row["metric"]
    empty = claims.depth_signal_claim(pd.DataFrame(columns=["group", "set", "draw", "contrast"]),
                                      level=0.95, n_layers=12)
    assert empty["verdict"] == "untestable here" and np.isnan(empty["value"])


def test_ci_side_and_contrast_sides_known_answers():
    from memlib.claims import ci_side, contrast_sides
    assert [ci_side(0.1, 0.3), ci_side(-0.3, -0.1), ci_side(-0.1, 0.2), ci_side(np.nan, np.nan)] == \
        ["above 0", "below 0", "includes 0", "includes 0"]
    per_set = pd.DataFrame({"ci_low": [0.1, 0.2, -0.5, -0.1], "ci_high": [0.3, 0.4, -0.2, 0.1]})
    assert contrast_sides(per_set).to_dict() == {"above 0": 2, "below 0": 1, "includes 0": 1}
    assert contrast_sides(per_set.iloc[:0]).to_dict() == {"above 0": 0, "below 0": 0, "includes 0": 0}
