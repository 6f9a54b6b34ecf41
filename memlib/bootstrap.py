"""Bootstrap draws of per-layer scores and the contrasts the verdicts of claims 1-2 read.

Every confidence interval of the Study v2 verdicts comes from here: draws of the generated
points with replacement (:func:`resample_indices`), scored for every layer with one search per
set (:meth:`memlib.ct.Reference.subset_curves`), so that any contrast between layers (late
minus early) or between sets of equal size scored on the same draws (copies minus fresh
images, paired by row) is computed draw by draw and its percentile interval is paired.

What the intervals cover: the resampling of the generated set only. T and P_n are held fixed
(as in :meth:`memlib.ct.Reference.curve_bootstrap`), so the intervals do not include the
variability of the reference split; ``docs/design.md`` says so next to the rules.
"""
from __future__ import annotations

import warnings

from typing import Any, NamedTuple

import numpy as np

from .ct import LayerDistances, Reference
from .errors import ParameterError


class Draws(NamedTuple):
    """A per-layer score and its bootstrap replicates.

    point: (L,) the score of the whole set; boot: (B, L) the score of each replicate (NaN
    where a replicate leaves a layer without a kept cell).
    """

    point: np.ndarray
    boot: np.ndarray


def resample_indices(m: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, m) int64 row indices drawn with replacement from ``np.random.default_rng(seed)``."""
    if m < 1 or n_boot < 1:
        raise ParameterError(f"resample_indices needs m >= 1 and n_boot >= 1, got {m}, {n_boot}")
    return np.random.default_rng(seed).integers(0, m, size=(n_boot, m))


def layer_draws(reference: Reference, gen: Any, draws: np.ndarray, *,
                statistic: str = "effect") -> Draws:
    """Score one generated set (L layers of (m, D), or its :class:`memlib.ct.LayerDistances`)
    and its replicates ``draws`` (B, m) on every layer; ``statistic`` as
    :meth:`memlib.ct.Reference.subset_curves`."""
    dist = gen if isinstance(gen, LayerDistances) else reference.layer_distances(gen)
    m = dist.dist.shape[1]
    if draws.ndim != 2 or draws.shape[1] != m:
        raise ParameterError(f"draws must be (B, {m}) indices into the set, got {draws.shape}")
    point = reference.subset_curves(dist, [np.arange(m)], statistic=statistic)[0]
    return Draws(point, reference.subset_curves(dist, draws, statistic=statistic))


def percentile_ci(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The (1 ± level)/2 percentiles of replicates along axis 0 (NaN replicates ignored; NaN
    where every replicate is NaN, e.g. a layer on which a part keeps no cell, without numpy's
    All-NaN warning: that NaN is an expected result, reported as such in the tables)."""
    if not 0 < level < 1:
        raise ParameterError(f"level must lie in (0, 1), got {level}")
    alpha = 100 * (1 - level) / 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        lo, hi = np.nanpercentile(boot, [alpha, 100 - alpha], axis=0)
    return lo, hi


def layer_thirds(n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based indices of the first and the last third of n_layers layers (≥ 1 layer each)."""
    if n_layers < 2:
        raise ParameterError(f"a contrast of early and late layers needs >= 2 layers, got {n_layers}")
    third = max(1, n_layers // 3)
    return np.arange(third), np.arange(n_layers - third, n_layers)


def late_minus_early(scores: np.ndarray) -> np.ndarray:
    """Mean score over the last third of the layers minus the mean over the first third.

    scores: (..., L); returns (...). Positive when the score is higher in late layers; for a
    copying set (negative score) that means the copying signal weakens with depth.
    """
    scores = np.asarray(scores, np.float64)
    early, late = layer_thirds(scores.shape[-1])
    return scores[..., late].mean(axis=-1) - scores[..., early].mean(axis=-1)
