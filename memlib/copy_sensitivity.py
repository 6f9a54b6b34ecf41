"""Claim 2 under the Study v2 protocol: how strongly a layer responds to copying under a
transform, with the layer's invariance to that transform subtracted out.

For a transform t (a copy kind of :mod:`memlib.copies` at a strength), the **copy
sensitivity** of a layer is E(t(copies)) − E(t(fresh)), where E is the effect size of
:mod:`memlib.ct` (``statistic="effect"``: −1 = exact-copy floor, 0 = null), the copies are made
from training images of T and the fresh images are held-out real images, both transformed by
the same call (same seed, so row k of both gets the same transform parameters). A layer that is
merely invariant to t moves both terms alike; only a layer that still sees the copied source
keeps the difference negative. Exact copies (strength 0) give the largest sensitivity a layer
can show, E(copies) − E(fresh) ≈ −1 − E(fresh).

Bootstrap: one (B, m) index draw (:func:`memlib.bootstrap.resample_indices`) is used for the
copies and the fresh images (paired by row), for every strength and every layer, so any
contrast (early minus late layers, mean over strengths) is computed draw by draw.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .bootstrap import layer_draws, percentile_ci
from .claims import half_sensitivity_censored, half_sensitivity_strength, predicted_contrast
from .ct import Reference
from .errors import InputError

KINDS = ("low-level", "high-level")


class Sensitivity(NamedTuple):
    """One space's copy sensitivity at one (kind, strength).

    point: (L,) sensitivity of the whole sets; boot: (B, L) per paired draw; effect_copies,
    effect_fresh: (L,) the two effect sizes whose difference is ``point``.
    """

    point: np.ndarray
    boot: np.ndarray
    effect_copies: np.ndarray
    effect_fresh: np.ndarray


def conditions(params: dict[str, Any]) -> list[tuple[str, float]]:
    """``("exact", 0.0)``, then each kind of :data:`KINDS` at each of its strengths
    (``low_strengths``, ``high_strengths``), mild to strong."""
    return [("exact", 0.0)] + [("low-level", float(s)) for s in params["low_strengths"]] + [
        ("high-level", float(s)) for s in params["high_strengths"]]


def measure(reference: Reference, copies: Any, fresh: Any, draws: np.ndarray) -> Sensitivity:
    """Copy sensitivity on every layer of ``reference``.

    copies, fresh: L layers of (m, D) features of the transformed copies and the transformed
    fresh images (row k of each transformed alike); draws: (B, m) row indices used for both.
    """
    c = layer_draws(reference, copies, draws)
    f = layer_draws(reference, fresh, draws)
    return Sensitivity(c.point - f.point, c.boot - f.boot, c.point, f.point)


def measure_spaces(spaces: list[str], conditions: list[tuple[str, float]],
                   reference: Callable[[str], Reference],
                   copies: Callable[[str, str, float], Any], fresh: Callable[[str, str, float], Any],
                   draws: np.ndarray, *, progress: bool = True
                   ) -> dict[tuple[str, str, float], Sensitivity]:
    """:func:`measure` for every space (encoder name, e.g. trained, ``+shuffled``, ``pixels``)
    and every (kind, strength) of ``conditions`` (:func:`conditions`), on the same ``draws``.

    reference(encoder) -> its :class:`memlib.ct.Reference`; copies(encoder, kind, strength) and
    fresh(encoder, kind, strength) -> L layers of (m, D) features of the transformed copies and
    the transformed fresh images in that space. Returns a dict keyed by (encoder, kind,
    strength), the input of every table below. One progress bar per space (``progress``).
    """
    out = {}
    for encoder in spaces:
        ref = reference(encoder)
        for kind, strength in tqdm(conditions, desc=f"copy sensitivity: {encoder}", disable=not progress):
            out[encoder, kind, strength] = measure(ref, copies(encoder, kind, strength),
                                                   fresh(encoder, kind, strength), draws)
    return out


def summary_table(sens: dict[tuple[str, str, float], Sensitivity], level: float) -> pd.DataFrame:
    """One row per (encoder, kind, strength, layer): sensitivity, ci_low, ci_high (percentile
    CI at ``level``), effect_copies, effect_fresh. ``sens`` is keyed by (encoder, kind,
    strength); pixels are one "layer"."""
    rows = []
    for (encoder, kind, strength), s in sens.items():
        lo, hi = percentile_ci(s.boot, level)
        rows += [dict(encoder=encoder, kind=kind, strength=strength, layer=l + 1,
                      sensitivity=float(s.point[l]), ci_low=float(lo[l]), ci_high=float(hi[l]),
                      effect_copies=float(s.effect_copies[l]), effect_fresh=float(s.effect_fresh[l]))
                 for l in range(len(s.point))]
    return pd.DataFrame(rows)


def seen_strengths(sens: dict[tuple[str, str, float], Sensitivity], encoder: str, kind: str,
                   level: float) -> list[float]:
    """The strengths of ``kind`` at which some layer of ``encoder`` has a sensitivity whose CI
    lies below 0 (its upper end < 0), in increasing order."""
    out = []
    for (enc, k, strength), s in sorted(sens.items(), key=lambda kv: kv[0][2]):
        if enc == encoder and k == kind and np.any(percentile_ci(s.boot, level)[1] < 0):
            out.append(strength)
    return out


def contrast_draws(sens: dict[tuple[str, str, float], Sensitivity], encoder: str, kind: str,
                   strengths: list[float]) -> pd.DataFrame:
    """Rows kind, draw (−1 = whole sets, 0..B−1), contrast: the mean over ``strengths`` of
    :func:`memlib.claims.predicted_contrast` of ``encoder``'s sensitivity curves (negative when
    claim 2's direction holds for ``kind``); empty when no strength is given."""
    if not strengths:
        return pd.DataFrame(columns=["kind", "draw", "contrast"])
    point = np.mean([predicted_contrast(kind, sens[encoder, kind, s].point) for s in strengths])
    boot = np.mean([predicted_contrast(kind, sens[encoder, kind, s].boot) for s in strengths], axis=0)
    return pd.DataFrame({"kind": kind, "draw": np.arange(-1, len(boot)),
                         "contrast": np.concatenate([[point], boot])})


def contrast_table(sens: dict[tuple[str, str, float], Sensitivity], encoder: str,
                   level: float) -> pd.DataFrame:
    """The contrasts :func:`memlib.claims.copy_levels_claim` reads: :func:`contrast_draws` of
    each kind of :data:`KINDS` over its :func:`seen_strengths` (CI at ``level``), stacked; a
    kind with no seen strength has no rows."""
    frames = [contrast_draws(sens, encoder, kind, seen_strengths(sens, encoder, kind, level))
              for kind in KINDS]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else contrast_draws(sens, encoder, KINDS[0], [])


def crossing_table(sens: dict[tuple[str, str, float], Sensitivity]) -> pd.DataFrame:
    """Rows encoder, kind, layer, half_strength (:func:`memlib.claims.half_sensitivity_strength`:
    the interpolated strength at which the layer keeps half of its exact-copy sensitivity) and
    censored (True where it never falls to half, so half_strength is the largest strength).
    Needs the ``("exact", 0.0)`` condition for every encoder."""
    rows = []
    for encoder in dict.fromkeys(e for e, _, _ in sens):
        if (encoder, "exact", 0.0) not in sens:
            raise InputError(f"crossing_table: {encoder!r} has no exact copies; measure the "
                             f"('exact', 0.0) condition (copy_sensitivity.conditions) in every space")
        exact = sens[encoder, "exact", 0.0].point
        for kind in KINDS:
            grid = sorted(s for e, k, s in sens if e == encoder and k == kind)
            if not grid:
                continue
            curves = np.stack([sens[encoder, kind, s].point for s in grid])     # (S, L)
            for l in range(curves.shape[1]):
                rows.append(dict(encoder=encoder, kind=kind, layer=l + 1,
                                 half_strength=half_sensitivity_strength(grid, curves[:, l], exact[l]),
                                 censored=half_sensitivity_censored(curves[:, l], exact[l])))
    return pd.DataFrame(rows)
