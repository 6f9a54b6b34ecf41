"""gmm: Gaussian mixture (EM) in a PCA space of the pixels."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import ParameterError
from .base import Family, to_uint8

COVARIANCES = ("full", "diag", "spherical")


class GMM(Family):
    """Gaussian mixture (EM, sklearn) on PCA coefficients of the [0, 1] pixels; samples are
    decoded by the inverse PCA (so they are smooth: the PCA drops fine detail)."""

    name = "gmm"
    hparams_doc = {
        "pca_dim": "number of PCA components the mixture lives in",
        "n_components": "mixture components",
        "covariance": "sklearn covariance_type: full | diag | spherical",
        "reg_covar": "added to covariance diagonals (PCA-coefficient units², pixels in [0, 1])",
        "max_iter": "EM iterations at most",
    }

    def fit(self, images, progress):
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture
        self._shape(images)
        _check_covariance(self.hp["covariance"])
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        dim = min(self.hp["pca_dim"], len(x) - 1, x.shape[1])
        pca = PCA(n_components=dim, random_state=seed).fit(x)
        z = pca.transform(x)
        k = min(self.hp["n_components"], len(x))
        gmm = GaussianMixture(k, covariance_type=self.hp["covariance"], reg_covar=self.hp["reg_covar"],
                              max_iter=self.hp["max_iter"], random_state=seed).fit(z)
        self._set(pca.mean_, pca.components_, gmm.weights_, gmm.means_, _scale(gmm))
        return [float(-gmm.lower_bound_)]

    def _set(self, pca_mean, pca_components, weights, means, scale) -> None:
        """The fitted model: PCA mean (D,) and components (d, D); mixture weights (K,), means
        (K, d) and noise scale (K, d, d) lower Cholesky factors or (K, d) standard deviations."""
        self.pca_mean, self.pca_components = pca_mean, pca_components
        self.weights, self.means, self.scale = weights, means, scale

    def sample(self, n):
        comp = torch.multinomial(torch.from_numpy(self.weights), n, replacement=True).numpy()
        eps = torch.randn(n, self.means.shape[1], dtype=torch.float64).numpy()
        z = self.means[comp].copy()
        for k in np.unique(comp):
            rows = comp == k
            scale = self.scale[k]
            z[rows] += eps[rows] @ scale.T if self.scale.ndim == 3 else eps[rows] * scale
        x = (z @ self.pca_components + self.pca_mean).reshape((n,) + self.shape)
        return to_uint8(torch.from_numpy(x).permute(0, 3, 1, 2)), {}

    def state(self):
        return {"pca_mean": self.pca_mean, "pca_components": self.pca_components,
                "weights": self.weights, "means": self.means, "scale": self.scale}

    def load_state(self, arrays, images):
        self._shape(images)
        self._set(arrays["pca_mean"], arrays["pca_components"], arrays["weights"], arrays["means"],
                  arrays["scale"])


def _check_covariance(covariance: str) -> None:
    if covariance not in COVARIANCES:
        raise ParameterError(f"gmm: covariance must be full, diag or spherical, got {covariance!r}")


def _scale(g) -> np.ndarray:
    """Per-component noise scale of a fitted sklearn mixture: lower Cholesky factors (K, d, d) of
    full covariances, or standard deviations (K, d) for diag / spherical ones."""
    _check_covariance(g.covariance_type)
    if g.covariance_type == "full":
        return np.linalg.cholesky(g.covariances_)
    if g.covariance_type == "diag":
        return np.sqrt(g.covariances_)
    return np.repeat(np.sqrt(g.covariances_)[:, None], g.means_.shape[1], axis=1)
