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
contrast (early minus late layers, mean over strengths) is computed draw by draw. Every space of
:func:`measure_spaces` uses the same draws too, so differences between spaces (trained minus
shuffled weights, :func:`learned_contrast_table`; trained against both references,
:func:`beyond_margin_table`) are paired as well.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .bootstrap import layer_draws, layer_thirds, percentile_ci
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


def learned_contrast_table(sens: dict[tuple[str, str, float], Sensitivity], encoder: str,
                           level: float) -> pd.DataFrame:
    """The learned-vs-structural difference-in-differences of claim 2, per kind of :data:`KINDS`.

    For each kind, over the trained ``encoder``'s :func:`seen_strengths` (CI at ``level``):
    the trained encoder's :func:`contrast_draws` (mean over those strengths of
    :func:`memlib.claims.predicted_contrast`, effect-size units) minus the same contrast of
    ``encoder + "+shuffled"`` (same architecture, shuffled weights) over the *same* strengths.
    Negative: the trained weights push the sensitivity further in the direction claim 2 predicts
    than the architecture alone does (learned, not structural). Both spaces are scored on the
    same (B, m) draws (:func:`measure_spaces`), so the difference is taken draw by draw and its
    percentile CI (``level``) is paired; a NaN draw (a replicate that left a layer without a
    kept cell) is left out of the CI and counted.

    Returns one row per kind: kind, value (point difference), ci_low, ci_high, trained,
    shuffled (the two point contrasts), n_strengths (seen strengths averaged over), n_draws (B),
    n_nan (draws left out). A kind without a seen strength gets NaNs and n_strengths 0. Raises
    InputError when the shuffled space lacks a seen strength.
    """
    shuffled = encoder + "+shuffled"
    rows = []
    for kind in KINDS:
        strengths = seen_strengths(sens, encoder, kind, level)
        missing = [s for s in strengths if (shuffled, kind, s) not in sens]
        if missing:
            raise InputError(f"learned_contrast_table: {shuffled!r} has no {kind} sensitivity at "
                             f"strength(s) {missing}; measure it in the same measure_spaces call")
        if not strengths:
            rows.append(dict(kind=kind, value=np.nan, ci_low=np.nan, ci_high=np.nan, trained=np.nan,
                             shuffled=np.nan, n_strengths=0, n_draws=0, n_nan=0))
            continue
        t = contrast_draws(sens, encoder, kind, strengths).contrast.to_numpy()
        u = contrast_draws(sens, shuffled, kind, strengths).contrast.to_numpy()
        rows.append(dict(kind=kind, **_point_and_ci(t[0] - u[0], t[1:] - u[1:], level),
                         trained=float(t[0]), shuffled=float(u[0]), n_strengths=len(strengths)))
    return pd.DataFrame(rows, columns=["kind", "value", "ci_low", "ci_high", "trained", "shuffled",
                                       "n_strengths", "n_draws", "n_nan"])


def half_strength_draws(sens: dict[tuple[str, str, float], Sensitivity], encoder: str,
                        kind: str) -> np.ndarray:
    """(1 + B, L) half-sensitivity strengths (:func:`memlib.claims.half_sensitivity_strength`,
    in units of ``kind``'s strength) of every layer of ``encoder``: row 0 from the whole sets
    (the ``half_strength`` of :func:`crossing_table`), row 1 + b from bootstrap draw b, where
    both the exact copies' and every strength's sensitivity are those of draw b. NaN where the
    strength is undecidable (exact sensitivity >= 0, or a NaN sensitivity); censored layers
    give the largest strength, as in the point. Needs ``(encoder, "exact", 0.0)``."""
    if (encoder, "exact", 0.0) not in sens:
        raise InputError(f"half_strength_draws: {encoder!r} has no exact copies; measure the "
                         f"('exact', 0.0) condition (copy_sensitivity.conditions) in every space")
    grid = sorted(s for e, k, s in sens if e == encoder and k == kind)
    if not grid:
        raise InputError(f"half_strength_draws: {encoder!r} has no {kind} strength")
    exact = sens[encoder, "exact", 0.0]
    ex = np.vstack([exact.point[None], exact.boot])                                  # (1 + B, L)
    curves = np.stack([np.vstack([sens[encoder, kind, s].point[None], sens[encoder, kind, s].boot])
                       for s in grid])                                              # (S, 1 + B, L)
    if curves.shape[1:] != ex.shape:
        raise InputError(f"half_strength_draws: {encoder!r} {kind} draws {curves.shape[1:]} differ "
                         f"from its exact copies' {ex.shape}; use one draw for every condition")
    out = np.empty(ex.shape)
    for b in range(ex.shape[0]):
        for l in range(ex.shape[1]):
            out[b, l] = half_sensitivity_strength(grid, curves[:, b, l], ex[b, l])
    return out


def beyond_margin_table(sens: dict[tuple[str, str, float], Sensitivity], encoder: str,
                        n_layers: int, level: float) -> pd.DataFrame:
    """A CI on the "beyond the references" margins that :func:`memlib.claims.beyond_references`
    reads as a yes/no.

    Per kind of :data:`KINDS`, over its layers (the first third of ``n_layers`` for low-level,
    the last third for high-level, :func:`memlib.bootstrap.layer_thirds`): margin = the trained
    ``encoder``'s mean half-sensitivity strength over those layers minus the larger of the
    ``encoder + "+shuffled"`` mean over the same layers and the ``pixels`` mean (units: the
    kind's strength, e.g. share of tiles moved). > 0: the trained layers tolerate a stronger
    transform than both references, so the point margin is > 0 exactly where
    ``beyond_references`` is True. As there, a layer whose half-sensitivity strength is NaN is
    left out of its space's mean, and a space with no finite layer makes the margin NaN.

    Each bootstrap draw recomputes every half-sensitivity strength from that draw's
    sensitivities (:func:`half_strength_draws`; the spaces share the draws, so the margin is
    paired); a draw whose margin is NaN is left out of the percentile CI (``level``) and counted.

    Returns one row per kind: kind, layers ("first-last", 1-based), value (point margin),
    ci_low, ci_high, trained, shuffled, pixels (point means), n_draws (B), n_nan (draws left
    out), n_partial (kept draws in which some layer's strength was NaN and left out of a mean).
    """
    early, late = (x + 1 for x in layer_thirds(n_layers))
    rows = []
    for kind, layers in (("low-level", early), ("high-level", late)):
        h = {space: half_strength_draws(sens, space, kind)
             for space in (encoder, encoder + "+shuffled", "pixels")}
        if h[encoder].shape[1] != n_layers or h[encoder + "+shuffled"].shape[1] != n_layers:
            raise InputError(f"beyond_margin_table: n_layers={n_layers} but the encoders have "
                             f"{h[encoder].shape[1]} and {h[encoder + '+shuffled'].shape[1]} layers")
        picked = [h[encoder][:, layers - 1], h[encoder + "+shuffled"][:, layers - 1], h["pixels"]]
        trained, shuffled, pixels = (_nanmean_rows(x) for x in picked)             # (1 + B,) each
        margin = trained - np.maximum(shuffled, pixels)       # NaN reference -> NaN: never beyond
        partial = np.any([np.isnan(x).any(axis=1) for x in picked], axis=0)[1:] & np.isfinite(margin[1:])
        rows.append(dict(kind=kind, layers=f"{layers[0]}-{layers[-1]}",
                         **_point_and_ci(margin[0], margin[1:], level),
                         trained=float(trained[0]), shuffled=float(shuffled[0]), pixels=float(pixels[0]),
                         n_partial=int(partial.sum())))
    return pd.DataFrame(rows, columns=["kind", "layers", "value", "ci_low", "ci_high", "trained",
                                       "shuffled", "pixels", "n_draws", "n_nan", "n_partial"])


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """(N, K) -> (N,) mean over the finite entries of each row; NaN for a row without one
    (pandas' ``mean``, as :func:`memlib.claims.beyond_references` takes it)."""
    finite = np.isfinite(x)
    n = finite.sum(axis=1)
    total = np.where(finite, x, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _point_and_ci(point: float, boot: np.ndarray, level: float) -> dict[str, Any]:
    """value, ci_low, ci_high (percentile CI at ``level`` of the finite draws of ``boot``, (B,);
    NaN when none is finite), n_draws (B) and n_nan (draws left out)."""
    boot = np.asarray(boot, np.float64)
    keep = boot[np.isfinite(boot)]
    lo, hi = percentile_ci(keep[:, None], level) if len(keep) else ([np.nan], [np.nan])
    return dict(value=float(point), ci_low=float(lo[0]), ci_high=float(hi[0]),
                n_draws=len(boot), n_nan=int(len(boot) - len(keep)))
