"""kde: pixel-space Gaussian kernel density estimate."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import ParameterError
from .base import Family, to_uint8, to_unit


class KDE(Family):
    """Pixel-space Gaussian KDE. Sample = uniform random training image + N(0, σ²) per pixel
    ([0, 1] pixel units), clipped. σ is Meehan et al.'s copying knob."""

    name = "kde"
    hparams_doc = {
        "sigma": "kernel std in [0, 1] pixel units, or 'ml': maximise the log-likelihood of a "
                 "10 % held-out part of the training images over 31 log-spaced values in 0.01..1",
    }

    def fit(self, images, progress):
        self.train = self._shape(images)
        sigma = self.hp["sigma"]
        if sigma == "ml":
            self.sigma, curve = _ml_sigma(images)
            return curve
        if not isinstance(sigma, (int, float)) or sigma < 0:
            raise ParameterError(f"kde: sigma must be 'ml' or a number ≥ 0, got {sigma!r}")
        self.sigma = float(sigma)
        return []

    def sample(self, n):
        source = torch.randint(0, len(self.train), (n,)).numpy()
        x = to_unit(self.train[source], torch.device("cpu"))
        x = x + self.sigma * torch.randn(x.shape)
        return to_uint8(x), {"source_index": source.astype(np.int64)}

    def state(self):
        return {"sigma": np.array([self.sigma], np.float64)}

    def load_state(self, arrays, images):
        self.train, self.sigma = self._shape(images), float(arrays["sigma"][0])


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared Euclidean distances (len(a), len(b)) between float rows, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return np.maximum(d, 0)


def _ml_sigma(images: np.ndarray) -> tuple[float, list[float]]:
    """Bandwidth maximising held-out log-likelihood (last 10 % held out); returns (σ, the
    negative log-likelihood in nats per pixel at each of the 31 σ tried)."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    n_val = max(1, len(x) // 10)
    fit, val = x[:-n_val], x[-n_val:]
    d2 = _sq_dists(val, fit)  # (n_val, n_fit): every kernel's distance enters the likelihood
    grid = np.geomspace(0.01, 1.0, 31)
    dim = x.shape[1]
    nll = []
    for s in grid:
        a = -d2 / (2 * s * s)
        amax = a.max(axis=1, keepdims=True)
        ll = amax[:, 0] + np.log(np.exp(a - amax).sum(axis=1)) - np.log(len(fit)) \
            - 0.5 * dim * np.log(2 * np.pi * s * s)
        nll.append(float(-ll.mean() / dim))  # nats per pixel
    return float(grid[int(np.argmin(nll))]), nll
