"""memlib.metrics: Fréchet distance (closed forms, parity with sqrtm) and the pixel-space copy
metrics (known answers, parity with a float64 brute force)."""
import json

import numpy as np
import pytest
import scipy.linalg

from memlib import metrics
from memlib.data import load_fashion_mnist
from memlib.errors import InputError


def test_frechet_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(want, rel=1e-10)


def test_frechet_general_matches_sqrtm_symmetric_and_zero_on_self():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 5)), rng.normal(size=(40, 5)) @ rng.normal(size=(5, 5))
    mu1, c1 = metrics.feature_stats(a)
    mu2, c2 = metrics.feature_stats(b)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    fd = metrics.frechet_distance(mu1, c1, mu2, c2)
    assert fd == pytest.approx(ref, rel=1e-8)
    assert fd == pytest.approx(metrics.frechet_distance(mu2, c2, mu1, c1), rel=1e-10)
    assert metrics.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)
    # rank-deficient covariances (n < D) stay finite and non-negative
    small = metrics.feature_stats(rng.normal(size=(4, 20)))
    assert 0 <= metrics.frechet_distance(*small, *small) < 1e-8


def test_frechet_and_feature_stats_reject_bad_input():
    with pytest.raises(InputError, match="do not match"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(InputError, match="n >= 2"):
        metrics.feature_stats(np.zeros((1, 4)))
    with pytest.raises(InputError, match="NaN"):
        metrics.feature_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist("train")[0][:300], load_fashion_mnist("test")[0][:100]


def _brute_force_nn(queries, base):
    """float64 nearest-neighbour distances over [0, 1] pixels, all pairs at once."""
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    b = base.reshape(len(base), -1).astype(np.float64) / 255
    return np.sqrt(((q[:, None] - b[None]) ** 2).sum(-1)).min(1)


def test_copy_metrics_known_answers_and_brute_force_parity(fashion):
    train, test = fashion
    copied = metrics.copy_metrics(train[:50], train, test, quantile=0.01)
    assert copied["copy_rate"] == 1.0 and copied["exact_copy_rate"] == 1.0 and copied["nn_median"] == 0.0
    fresh = metrics.copy_metrics(test[:50], train, test[50:], quantile=0.01)
    assert fresh["exact_copy_rate"] == 0.0 and fresh["copy_rate"] < 0.1 and 0.7 < fresh["nn_ratio"] < 1.3
    # every number against a float64 brute force (knn works in float32: ~1e-7 relative)
    samples = np.concatenate([train[:10], test[:40]])
    got = metrics.copy_metrics(samples, train, test[50:], quantile=0.1)
    d_s, d_t = _brute_force_nn(samples, train), _brute_force_nn(test[50:], train)
    thr = np.quantile(d_t, 0.1)
    assert got["copy_threshold"] == pytest.approx(thr, rel=1e-6)
    assert got["copy_rate"] == np.mean(d_s < thr) and got["exact_copy_rate"] == 0.2
    assert got["nn_median"] == pytest.approx(np.median(d_s), rel=1e-6)
    assert got["nn_ratio"] == pytest.approx(np.median(d_s) / np.median(d_t), rel=1e-6)
    json.dumps(got)


def test_pixel_fd_matches_sqrtm_and_its_reference_floor(fashion):
    train, test = fashion
    from sklearn.decomposition import PCA
    fd = metrics.pixel_fd(test[:60], train, test[60:], dim=8)
    # the same PCA and the textbook sqrtm formula (stable here: 60 samples in 8 dimensions)
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64) / 255  # noqa: E731
    pca = PCA(n_components=8, random_state=0).fit(flat(train))
    a, t = pca.transform(flat(test[:60])), pca.transform(flat(test[60:]))
    c1, c2 = np.cov(a, rowvar=False), np.cov(t, rowvar=False)
    want = ((a.mean(0) - t.mean(0)) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert fd["pixel_fd"] == pytest.approx(want, rel=1e-9)
    assert np.isfinite(fd["pixel_fd_ref"]) and fd["pixel_fd_ref"] > 0
    # constant grey images are far from the data, far above the real-image floor
    grey = np.full((60, 28, 28), 128, np.uint8)
    assert metrics.pixel_fd(grey, train, test[60:], dim=8)["pixel_fd"] > 5 * fd["pixel_fd_ref"]
    json.dumps(fd)
