"""The small-T rule of memlib.ct (docs/design.md, "Small T"): where T has no more points than
pca_dim, small_t="cap" fits l - 1 components and records them; the default "v2" keeps the Study
v2 behaviour (a PCA to pca_dim) until the next cold run of the figures."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from memlib.ct import MIN_CELL_POINTS, fit_reference
from memlib.errors import InputError, ParameterError

D, PCA = 32, 20


def _sets(n_train, seed=0, layers=2):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(layers, n_train, D)).astype(np.float32)
    test = rng.normal(size=(layers, 300, D)).astype(np.float32)
    gen = np.concatenate([train[:, :10] + 0.01 * rng.normal(size=(layers, 10, D)),   # near-copies
                          rng.normal(size=(layers, 150, D))], axis=1).astype(np.float32)
    return train, test, gen


def _rotate_null_space(train, x, seed):
    """x with every component orthogonal to T's affine span rotated at random (T is fixed)."""
    mu = train.mean(axis=0)
    u, s, _ = np.linalg.svd((train - mu).T.astype(np.float64), full_matrices=True)
    rank = int((s > 1e-6 * s[0]).sum())
    basis = u                                        # columns: span (rank), then the null space
    q = np.eye(D)
    q[rank:, rank:] = ortho_group.rvs(D - rank, random_state=seed)
    rot = basis @ q @ basis.T
    return ((x - mu) @ rot.T + mu).astype(np.float32)


def test_cap_fits_l_minus_one_components_and_records_them():
    train, test, gen = _sets(16)
    cap = fit_reference(train, test, n_cells=3, pca_dim=PCA, small_t="cap")
    v2 = fit_reference(train, test, n_cells=3, pca_dim=PCA)
    assert cap.small_t == "cap" and cap.pca_fitted == [15, 15]
    assert v2.small_t == "v2" and v2.pca_fitted == [PCA, PCA]
    # the cap is exactly a PCA to l - 1 components
    explicit = fit_reference(train, test, n_cells=3, pca_dim=15, small_t="v2")
    np.testing.assert_array_equal(cap.curve(gen), explicit.curve(gen))
    # ct_test: T is the first half of the test set (150 points > PCA: no cap); 30 points: 14
    assert fit_reference(None, test, variant="ct_test", pca_dim=PCA, small_t="cap").pca_fitted == [PCA, PCA]
    assert fit_reference(None, test[:, :30], variant="ct_test", pca_dim=PCA, small_t="cap").pca_fitted == [14, 14]


def test_cap_does_not_depend_on_t_null_space_and_v2_does():
    train, test, gen = _sets(16, seed=1)
    turned = [_rotate_null_space(train[l], x[l], seed=5)
              for l in range(2) for x in (train, test, gen)]
    t2, p2, g2 = (np.stack(turned[i::3]) for i in range(3))
    np.testing.assert_allclose(t2, train, atol=1e-5)              # T itself does not move
    cap = fit_reference(train, test, pca_dim=PCA, small_t="cap").subset_curves(gen, [np.arange(160)], statistic="effect")
    cap2 = fit_reference(t2, p2, pca_dim=PCA, small_t="cap").subset_curves(g2, [np.arange(160)], statistic="effect")
    np.testing.assert_allclose(cap, cap2, atol=1e-6)
    v2 = fit_reference(train, test, pca_dim=PCA).subset_curves(gen, [np.arange(160)], statistic="effect")
    v22 = fit_reference(t2, p2, pca_dim=PCA).subset_curves(g2, [np.arange(160)], statistic="effect")
    assert np.abs(v2 - v22).max() > 0.01      # arbitrary null-space directions move the v2 score


def test_large_t_and_the_default_are_unchanged():
    train, test, gen = _sets(200, seed=2)
    cap = fit_reference(train, test, pca_dim=PCA, small_t="cap")
    v2 = fit_reference(train, test, pca_dim=PCA)
    assert cap.pca_fitted == v2.pca_fitted == [PCA, PCA]
    np.testing.assert_array_equal(cap.curve(gen), v2.curve(gen))
    small = _sets(16, seed=3)
    np.testing.assert_array_equal(fit_reference(*small[:2], pca_dim=PCA).curve(small[2]),
                                  fit_reference(*small[:2], pca_dim=PCA, small_t="v2").curve(small[2]))
    # no PCA (pca_dim None, or D <= pca_dim): nothing to cap
    assert fit_reference(*small[:2], pca_dim=None, small_t="cap").pca_fitted == [None, None]
    assert fit_reference(*small[:2], pca_dim=64, small_t="cap").pca_fitted == [15, 15]
    assert fit_reference(*small[:2], pca_dim=64).pca_fitted == [None, None]   # D = 32 <= 64


def test_ct_modified_caps_the_generated_set_playing_t():
    train, test, gen = _sets(200, seed=4, layers=1)
    q = gen[:, :18]                                               # 18 points play T
    cap = fit_reference(train, test, variant="ct_modified", pca_dim=PCA, small_t="cap").curve(q)
    explicit = fit_reference(train, test, variant="ct_modified", pca_dim=17).curve(q)
    np.testing.assert_array_equal(cap, explicit)


def test_small_t_errors_and_the_cell_minimum():
    train, test, gen = _sets(16, seed=6)
    with pytest.raises(ParameterError, match="small_t"):
        fit_reference(train, test, pca_dim=PCA, small_t="pad")
    ref = fit_reference(train, test, n_cells=3, pca_dim=PCA, small_t="cap")
    # cells are never padded: a set of MIN_CELL_POINTS points keeps no cell -> an error naming it
    with pytest.raises(InputError, match=r"gen \(layer 0\): no cell holds more than"):
        ref.curve(gen[:, :MIN_CELL_POINTS])
    assert np.isnan(ref.subset_curves(gen, [np.arange(MIN_CELL_POINTS)])).all()
    with pytest.raises(InputError, match="train"):
        fit_reference(train[:, :2], test, n_cells=3, pca_dim=PCA, small_t="cap")   # T < cells
