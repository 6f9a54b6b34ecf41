"""memlib.hierarchical: the hierarchical bootstrap on inputs whose intervals are known."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import hierarchical as hb
from memlib.bootstrap import late_minus_early
from memlib.ct import fit_reference
from memlib.errors import InputError, ParameterError

BETWEEN = ("clusters", "sets")


def _width(draws, label, level=0.95):
    t = hb.summary_table(draws, level)
    return float(t[(t.label == label) & (t.k == 0)].width.iloc[0])


def test_identical_sets_give_a_zero_width_between_set_interval():
    rows = np.random.default_rng(0).normal(size=(40, 3))
    groups = {"a": [hb.rows_stat(f"s{i}", rows) for i in range(5)],
              "b": [hb.rows_stat(f"t{i}", rows + 1.0) for i in range(4)]}
    d = hb.hierarchical_bootstrap(groups, n_boot=300, seed=0, resample=BETWEEN)
    assert d.labels == ("a", "b", "all") and d.boot.shape == (300, 3, 3)
    np.testing.assert_allclose(d.point, [rows.mean(0), rows.mean(0) + 1, rows.mean(0) + 0.5])
    np.testing.assert_allclose(d.boot, np.broadcast_to(d.point, d.boot.shape), atol=1e-12)
    t = hb.summary_table(d, 0.95)
    assert t.width.abs().max() < 1e-12
    # constant rows: every level at once, points included, still zero width
    const = {"a": [hb.rows_stat(f"s{i}", np.full((30, 1), 0.25)) for i in range(3)]}
    t = hb.summary_table(hb.hierarchical_bootstrap(const, n_boot=200, seed=1), 0.9)
    assert t.value.tolist() == [0.25, 0.25] and t.width.abs().max() < 1e-12


def test_between_set_spread_is_the_plug_in_standard_error_of_a_mean_over_sets():
    means = np.linspace(-1.0, 1.0, 9)
    groups = {"g": [hb.rows_stat(f"s{i}", np.full((20, 1), mu)) for i, mu in enumerate(means)]}
    d = hb.hierarchical_bootstrap(groups, n_boot=4000, seed=3, resample=BETWEEN)
    expect = means.std() / np.sqrt(len(means))             # plug-in sd of a bootstrap mean: 0.2151
    assert d.boot[:, 0, 0].std() == pytest.approx(expect, rel=0.05)
    assert d.point[0, 0] == pytest.approx(0.0)


def test_between_set_variance_widens_the_interval():
    rng = np.random.default_rng(1)
    noise = [rng.normal(size=(50, 1)) for _ in range(8)]
    same = {"g": [hb.rows_stat(f"s{i}", x) for i, x in enumerate(noise)]}
    spread = {"g": [hb.rows_stat(f"s{i}", x + mu) for i, (x, mu)
                    in enumerate(zip(noise, np.linspace(-1.5, 1.5, 8)))]}
    w_same = _width(hb.hierarchical_bootstrap(same, n_boot=1000, seed=0), "g")
    w_spread = _width(hb.hierarchical_bootstrap(spread, n_boot=1000, seed=0), "g")
    w_points = _width(hb.hierarchical_bootstrap(spread, n_boot=1000, seed=0, resample=("points",)), "g")
    assert w_spread > 2 * w_same                # 1.32 vs 0.20 here (seed 0)
    assert w_spread > 2 * w_points              # 0.18: the Study v2 interval misses the spread
    assert w_points == pytest.approx(w_same, rel=0.3)


def test_cluster_level_counts_the_spread_between_clusters_only_when_resampled():
    # sets identical within each of two clusters, the clusters 2 apart
    groups = {"mix": [hb.rows_stat(f"{c}{i}", np.full((10, 1), v), cluster=c)
                      for c, v in (("vae", -1.0), ("gan", 1.0)) for i in range(3)]}
    within = hb.hierarchical_bootstrap(groups, n_boot=500, seed=0, resample=("sets",))
    assert _width(within, "mix") == pytest.approx(0.0, abs=1e-12)
    across = hb.hierarchical_bootstrap(groups, n_boot=500, seed=0, resample=("clusters", "sets"))
    assert sorted(np.unique(across.boot[:, 0, 0])) == [-1.0, 0.0, 1.0]
    assert _width(across, "mix") == pytest.approx(2.0)


def test_reference_draws_widen_the_interval_by_their_offset():
    base = np.random.default_rng(2).normal(size=(25, 2))
    stack = np.stack([base, base + 0.4])                   # reference draw 1 sits 0.4 higher
    groups = {"g": [hb.rows_stat(f"s{i}", stack) for i in range(4)]}
    d = hb.hierarchical_bootstrap(groups, n_boot=400, seed=0, resample=("reference", "sets"))
    np.testing.assert_allclose(d.point[0], base.mean(0) + 0.2)
    np.testing.assert_allclose(np.unique(d.boot[:, 0, 0]), base.mean(0)[0] + np.array([0.0, 0.4]))
    assert 0.35 < (d.boot[:, 0, 0] > base.mean(0)[0] + 0.1).mean() < 0.65
    assert _width(d, "g") == pytest.approx(0.4)
    # without the reference level every replicate is the mean over the two draws
    fixed = hb.hierarchical_bootstrap(groups, n_boot=50, seed=0, resample=("sets",))
    assert _width(fixed, "g") == pytest.approx(0.0, abs=1e-12)


def test_fixed_seed_gives_identical_replicates_and_another_seed_others():
    rng = np.random.default_rng(4)
    groups = {"a": [hb.rows_stat(f"s{i}", rng.normal(size=(15, 2)), cluster=f"c{i % 2}") for i in range(4)],
              "b": [hb.rows_stat(f"t{i}", rng.normal(size=(12, 2))) for i in range(3)]}
    one = hb.hierarchical_bootstrap(groups, n_boot=100, seed=7)
    np.testing.assert_array_equal(one.boot, hb.hierarchical_bootstrap(groups, n_boot=100, seed=7).boot)
    assert not np.array_equal(one.boot, hb.hierarchical_bootstrap(groups, n_boot=100, seed=8).boot)
    # the pooled value is the equal-weight mean of the two groups, draw by draw
    np.testing.assert_allclose(one.boot[:, 2], one.boot[:, :2].mean(axis=1))


def test_reduce_draws_applies_a_contrast_to_point_and_replicates():
    rows = np.tile(np.arange(6.0), (10, 1))                 # late minus early of 0..5 = 4
    d = hb.hierarchical_bootstrap({"g": [hb.rows_stat(f"s{i}", rows) for i in range(2)]},
                                  n_boot=20, seed=0)
    c = hb.reduce_draws(d, late_minus_early)
    assert c.point.shape == (2, 1) and c.boot.shape == (20, 2, 1)
    np.testing.assert_allclose(c.point, 4.0)
    np.testing.assert_allclose(c.boot, 4.0)


def test_reference_stat_is_the_engines_subset_curve():
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=(2, 300, 6)).astype(np.float32), rng.normal(size=(2, 200, 6)).astype(np.float32)
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    gens = [rng.normal(loc=mu, size=(2, 90, 6)).astype(np.float32) for mu in (0.0, 0.3)]
    dists = [ref.layer_distances(g) for g in gens]
    sets = [hb.reference_stat(f"s{i}", [ref], [d]) for i, d in enumerate(dists)]
    d = hb.hierarchical_bootstrap({"g": sets}, n_boot=30, seed=0)
    whole = [ref.subset_curves(x, [np.arange(90)], statistic="effect")[0] for x in dists]
    np.testing.assert_allclose(d.point[0], np.mean(whole, axis=0))
    assert np.isfinite(d.boot).all() and d.boot.shape == (30, 2, 2)


def test_bad_inputs_raise_clear_errors():
    one = hb.rows_stat("only", np.zeros((5, 1)))
    with pytest.raises(InputError, match="group 'g' has no sets"):
        hb.hierarchical_bootstrap({"g": []}, n_boot=10, seed=0)
    with pytest.raises(InputError, match="1 cluster"):
        hb.hierarchical_bootstrap({"g": [one]}, n_boot=10, seed=0)
    with pytest.raises(InputError, match="one set"):
        hb.hierarchical_bootstrap({"g": [one]}, n_boot=10, seed=0, resample=("sets", "points"))
    same_cluster = [hb.rows_stat(f"s{i}", np.zeros((5, 1)), cluster="vae") for i in range(3)]
    with pytest.raises(InputError, match="resampling clusters needs >= 2"):
        hb.hierarchical_bootstrap({"g": same_cluster}, n_boot=10, seed=0)
    with pytest.raises(InputError, match="same K"):
        hb.hierarchical_bootstrap({"g": [one, hb.rows_stat("two", np.zeros((5, 2)))]}, n_boot=5,
                                  seed=0, resample=("points",))
    with pytest.raises(InputError, match="reference draws"):
        hb.hierarchical_bootstrap({"g": [one, hb.rows_stat("two", np.zeros((2, 5, 1)))]}, n_boot=5,
                                  seed=0, resample=("points",))
    with pytest.raises(InputError, match="rows must be"):
        hb.rows_stat("empty", np.zeros((0, 3)))
    with pytest.raises(ParameterError, match="n_boot"):
        hb.hierarchical_bootstrap({"g": [one]}, n_boot=0, seed=0, resample=("points",))
    with pytest.raises(ParameterError, match="levels"):
        hb.hierarchical_bootstrap({"g": [one]}, n_boot=5, seed=0, resample=("layers",))
    with pytest.raises(InputError, match="at least one group"):
        hb.hierarchical_bootstrap({}, n_boot=5, seed=0)
    # a single set with only its points resampled is the Study v2 interval: allowed
    assert hb.hierarchical_bootstrap({"g": [one]}, n_boot=5, seed=0, resample=("points",)).boot.shape == (5, 2, 1)


def test_reference_draws_are_disjoint_seeded_and_widen_the_interval():
    rng = np.random.default_rng(6)
    train = rng.normal(size=(2, 300, 5)).astype(np.float32)
    pool = rng.normal(size=(2, 400, 5)).astype(np.float32)
    refs, rows = hb.reference_draws(train, pool, n_test=120, n_draws=3, seed=10, n_cells=2, pca_dim=None)
    assert [r.seed for r in refs] == [10, 11, 12] and [len(x) for x in rows] == [120] * 3
    assert len(np.unique(np.concatenate(rows))) == 360                        # disjoint
    again, rows2 = hb.reference_draws(train, pool, n_test=120, n_draws=3, seed=10, n_cells=2, pca_dim=None)
    assert all(np.array_equal(a, b) for a, b in zip(rows, rows2))
    np.testing.assert_array_equal(refs[1].layers[0].n_test, again[1].layers[0].n_test)
    gens = [rng.normal(size=(2, 100, 5)).astype(np.float32) for _ in range(4)]
    sets = [hb.reference_stat(f"s{i}", refs, [r.layer_distances(g) for r in refs]) for i, g in enumerate(gens)]
    one_ref = [hb.reference_stat(f"s{i}", refs[:1], [refs[0].layer_distances(g)]) for i, g in enumerate(gens)]
    spread = hb.hierarchical_bootstrap({"g": sets}, n_boot=300, seed=0, resample=("reference",))
    assert len(np.unique(spread.boot[:, 0, 0])) == 3                           # one value per draw
    assert _width(spread, "g") > 0
    fixed = hb.hierarchical_bootstrap({"g": one_ref}, n_boot=300, seed=0, resample=("reference",))
    assert _width(fixed, "g") == 0.0
    with pytest.raises(InputError, match="need 480 rows, the pool has 400"):
        hb.reference_draws(train, pool, n_test=120, n_draws=4, seed=0)
    with pytest.raises(ParameterError, match="n_test and n_draws"):
        hb.reference_draws(train, pool, n_test=0, n_draws=2, seed=0)


@pytest.mark.parametrize("pca_dim", [3, None])
def test_reference_draws_share_the_pca_of_t_and_score_as_separate_fits(pca_dim):
    """The draws fit T's PCA once (fit_t_space); each still equals a reference fitted on its own
    (same P_n rows, seed + r), distance for distance."""
    from memlib.ct import fit_reference, fit_t_space

    rng = np.random.default_rng(7)
    train = rng.normal(size=(2, 300, 6)).astype(np.float32)
    pool = rng.normal(size=(2, 400, 6)).astype(np.float32)
    gen = rng.normal(size=(2, 90, 6)).astype(np.float32)
    refs, rows = hb.reference_draws(train, pool, n_test=120, n_draws=3, seed=4, n_cells=3, pca_dim=pca_dim)
    for r, (ref, idx) in enumerate(zip(refs, rows)):
        alone = fit_reference(train, pool[:, idx], seed=4 + r, n_cells=3, pca_dim=pca_dim)
        for a, b in zip(ref.layer_distances(gen), alone.layer_distances(gen)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ref.curve(gen), alone.curve(gen))
    with pytest.raises(InputError, match="fit on 300 points, train has 200"):
        fit_reference(train[:, :200], pool, n_cells=3, pca_dim=pca_dim, t_space=fit_t_space(train, n_cells=3, pca_dim=pca_dim))
