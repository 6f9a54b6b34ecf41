"""Distances between sets of images or features: Fréchet distance and nearest-neighbour copying.

- :func:`feature_stats` and :func:`frechet_distance`: the Fréchet distance between the Gaussians
  fitted to two feature sets (FID's formula), computed with symmetric eigendecompositions so
  that rank-deficient covariances of small sets stay finite;
- :func:`copy_metrics` and :func:`pixel_fd`: cheap pixel-space checks of one generated sample
  set against its training and held-out images (no encoder), recorded in every zoo manifest.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from . import knn
from .errors import InputError


def feature_array(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 (n ≥ 2, D) array; :class:`InputError` naming ``name`` otherwise."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InputError(f"{name}: expected an (n >= 2, D) feature array, got {np.shape(x)}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: features contain NaN/inf")
    return arr


def feature_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (ddof=1) of features (n, D), in float64."""
    x = feature_array(x, "features")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def sqrt_psd(c: np.ndarray) -> np.ndarray:
    """Symmetric square root (D, D) of a symmetric PSD matrix (negative round-off eigenvalues → 0)."""
    w, v = scipy.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sqrt_c1: np.ndarray, c2: np.ndarray) -> float:
    """Tr sqrt(C1 C2) = Tr sqrt(C1^½ C2 C1^½); the inner matrix is symmetric PSD."""
    m = sqrt_c1 @ c2 @ sqrt_c1
    return float(np.sqrt(np.clip(scipy.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2, *, sqrt_cov1: np.ndarray | None = None) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (squared feature units).

    FD = ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^½). Computed as
    Tr (C1 C2)^½ = sum sqrt(eig(C1^½ C2 C1^½)) with symmetric eigendecompositions and negative
    round-off eigenvalues clipped to 0, which is stable for the rank-deficient covariances of
    small sets (n < D), where ``scipy.linalg.sqrtm(C1 @ C2)`` can return complex or NaN values.
    Symmetric in its two arguments up to round-off. ``sqrt_cov1``: :func:`sqrt_psd` of cov1,
    when the caller compares one set with many and has computed it once.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    c1, c2 = np.atleast_2d(np.asarray(cov1, float)), np.atleast_2d(np.asarray(cov2, float))
    d = mu1.shape[0]
    if mu2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise InputError(f"frechet_distance: shapes {mu1.shape}, {c1.shape}, {mu2.shape}, "
                         f"{c2.shape} do not match")
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2)
               - 2 * trace_sqrt_product(sqrt_psd(c1) if sqrt_cov1 is None else sqrt_cov1, c2))
    return max(fd, 0.0)


def _pixels(images: np.ndarray, dtype) -> np.ndarray:
    """uint8 images (N, H, W[, C]) -> (N, H·W·C) pixel values in [0, 1] units."""
    return np.asarray(images, dtype).reshape(len(images), -1) / 255.0


def copy_metrics(samples: np.ndarray, train: np.ndarray, test: np.ndarray, *,
                 quantile: float) -> dict[str, float]:
    """Nearest-neighbour copy check in pixel space.

    Images are uint8 (N, H, W[, C]); distances are Euclidean over all pixel values in [0, 1]
    units (784 of them for Fashion-MNIST), exact 1-NN searches with :mod:`memlib.knn`.
    ``copy_rate`` is the fraction of samples whose nearest training image is closer than the
    ``quantile`` of held-out test→train nearest-neighbour distances (so an ideal non-copying
    generator scores ≈ ``quantile``); ``exact_copy_rate`` the fraction at distance 0;
    ``nn_ratio`` is the median sample→train distance over the median test→train distance
    (≪ 1: copying; ≫ 1: far from the data)."""
    d_s, d_t, thr = copy_distances(samples, train, test, quantile=quantile)
    return {"copy_quantile": float(quantile), "copy_threshold": thr,
            "copy_rate": float((d_s < thr).mean()), "exact_copy_rate": float((d_s == 0).mean()),
            "nn_median": float(np.median(d_s)), "nn_median_test": float(np.median(d_t)),
            "nn_ratio": float(np.median(d_s) / max(np.median(d_t), 1e-12))}


def copy_distances(samples: np.ndarray, train: np.ndarray, test: np.ndarray, *,
                   quantile: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The per-sample numbers behind :func:`copy_metrics`: (d_s (N,) float64, each sample's
    distance to its nearest training image; d_t (n_test,) float64, the same for the test images;
    the copy threshold, the ``quantile`` of d_t). Distances are Euclidean in [0, 1]-pixel units.
    A sample is a copy where d_s < threshold (exact at 0): :func:`memlib.claims.copy_kind`."""
    index = knn.NNIndex(_pixels(train, np.float32), name="train images")
    d_s = index.distances(_pixels(samples, np.float32)).astype(np.float64)
    d_t = index.distances(_pixels(test, np.float32)).astype(np.float64)
    return d_s, d_t, float(np.quantile(d_t, quantile))


def pixel_fd(samples: np.ndarray, train: np.ndarray, test: np.ndarray, dim: int = 64) -> dict[str, float]:
    """Fréchet distance to the test set in a PCA-``dim`` space of pixels fitted on ``train``.

    A cheap sanity metric (not the study's encoder FD), in squared PCA-coefficient units of
    [0, 1] pixels: ``pixel_fd`` for the samples and ``pixel_fd_ref`` for as many real training
    images (the floor a perfect model would reach)."""
    from sklearn.decomposition import PCA
    pca = PCA(n_components=min(dim, len(train) - 1), random_state=0).fit(_pixels(train, np.float64))
    test_stats = feature_stats(pca.transform(_pixels(test, np.float64)))

    def fd(images):
        return frechet_distance(*feature_stats(pca.transform(_pixels(images, np.float64))), *test_stats)

    ref = train[np.random.default_rng(0).permutation(len(train))[:len(samples)]]
    return {"pixel_fd": fd(samples), "pixel_fd_ref": fd(ref)}
