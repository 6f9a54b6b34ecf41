"""Claim 1 under the Study v2 protocol: the copying signal of a set, layer by layer, against
the generator's own training set, and the mixtures that put known copying into real samples.

Three groups of sets copy (``memlib.claims.COPYING_GROUPS``):

* ``gradient`` — zoo models trained on the first n images of the zoo's training set, for
  shrinking n (``gradient_*`` parameters; notebook 03);
* ``kde`` — the pixel KDE of notebook 01 at each bandwidth σ, around T itself;
* ``mixture`` — a standard zoo model's samples in which the first round(ρ·m) rows are replaced
  by copies (exact, low-level, high-level; :mod:`memlib.copies`) of that model's own training
  images (:func:`mixture_sources`, :func:`mixture_features`).

Each set is scored with :func:`score_set`: C_T and the effect size (:mod:`memlib.ct`,
``statistic="effect"``) on every layer, bootstrap CIs over the generated set, and the per-draw
late-minus-early contrast that :func:`memlib.claims.depth_signal_claim` reads.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .bootstrap import late_minus_early, layer_draws, percentile_ci, resample_indices
from .copies import n_copies, pick_sources
from .ct import Reference
from .errors import InputError
from .features import LayerFeatures


def mixture_sources(n_train: int, m: int, rhos: list[float], seed: int) -> np.ndarray:
    """The training rows (int64 (k,), random order, distinct) whose copies fill the mixtures:
    k = round(max ρ · m); the mixture at ρ uses the first round(ρ·m) of them."""
    return pick_sources(n_train, n_copies(m, max(rhos)), seed)


def mixture_features(samples: LayerFeatures, copies: LayerFeatures, rho: float) -> LayerFeatures:
    """The mixture at copy share ρ: rows 0..k−1 from ``copies``, rows k..m−1 from ``samples``
    (k = round(ρ·m), m = samples.n), as :func:`memlib.copies.mix` does for images.

    samples: a model's m samples' features; copies: features of the copies of
    :func:`mixture_sources` (at least k rows, in that order).
    """
    m = samples.n
    k = n_copies(m, rho)
    if copies.n < k:
        raise InputError(f"mixture at rho={rho}: {k} copies needed, {copies.n} given")
    return LayerFeatures.concat([copies.subset(np.arange(k)), samples.subset(np.arange(k, m))])


def score_set(reference: Reference, gen: Any, *, n_boot: int, seed: int, level: float,
              **labels: Any) -> tuple[list[dict], list[dict]]:
    """Score one set on every layer of ``reference`` (its generator's own training set as T).

    Args:
        gen: the set's L layers of (m, D) features. n_boot, seed: bootstrap draws of the m
            points (:func:`memlib.bootstrap.resample_indices`; the same draws for every layer).
        level: CI level. labels: columns copied into every row; ``group`` and ``set`` are
            required (they name the set in the contrast rows).

    Returns:
        (curve rows: labels + layer, ct, effect, effect_lo, effect_hi, n_gen — one per layer;
        contrast rows: group, set, draw (−1 = whole set, then 0..n_boot−1), contrast — the
        late-minus-early effect, :func:`memlib.bootstrap.late_minus_early`).
    """
    for key in ("group", "set"):
        if key not in labels:
            raise InputError(f"score_set needs a {key!r} label")
    dist = reference.layer_distances(gen)
    m = dist.dist.shape[1]
    ct = reference.subset_curves(dist, [np.arange(m)])[0]
    eff = layer_draws(reference, dist, resample_indices(m, n_boot, seed))
    lo, hi = percentile_ci(eff.boot, level)
    curve = [dict(labels, layer=l + 1, ct=float(ct[l]), effect=float(eff.point[l]),
                  effect_lo=float(lo[l]), effect_hi=float(hi[l]), n_gen=m)
             for l in range(len(ct))]
    contrast = np.concatenate([[late_minus_early(eff.point)], late_minus_early(eff.boot)])
    rows = [dict(group=labels["group"], set=labels["set"], draw=b - 1, contrast=float(c))
            for b, c in enumerate(contrast)]
    return curve, rows
