"""Hierarchical bootstrap: intervals whose unit is what varies between re-runs of the study.

The Study v2 intervals (:mod:`memlib.bootstrap`) resample the generated points of each set and
hold everything else fixed: the sets are fixed effects, and so are T, P_n and the k-means seed.
A re-run draws new sets and may draw a new reference, so those intervals can be too narrow for
a verdict (``docs/design.md``, "Study v3"). Here one replicate redraws every level that varies:

1. ``reference``: one of R reference draws (disjoint P_n draws and k-means seeds), the same for
   every set of the replicate, because a re-run shares its reference across all its sets;
2. ``clusters``: within each group, its clusters with replacement (the unit above sets, e.g. the
   base architecture of a mixture; by default every set is its own cluster);
3. ``sets``: within each drawn cluster, its sets with replacement;
4. ``points``: within each drawn set, its m rows with replacement (a set drawn twice gets two
   independent draws).

A group's value is the mean over its drawn sets, the pooled value (label ``"all"``) the
equal-weight mean over groups, as :func:`memlib.claims.pooled_depth_contrast`. The point
estimate is the same mean on the data as they are, averaged over the R reference draws. The
interval is the percentile interval of the replicates, i.e. that of the number one re-run with
one reference draw would give; leaving ``"reference"`` out of ``resample`` averages every
replicate over the R draws instead (the interval of the R-averaged estimate, data part only).

Resampling every level with replacement counts the within-set noise at the set level again
(Davison & Hinkley 1997, section 3.8): with few points per set the interval is somewhat wide,
which is the conservative side for a verdict. ``resample`` chooses the levels, so the Study v2
interval (``("points",)``) and the v3 interval can be computed from the same inputs and their
widths stated side by side.

Inputs are per-set scorers (:class:`SetStat`): a function from a reference draw and a (B, s)
array of row indices to (B, K) statistics (K = layers, or 1 for a contrast). Two are built
here: :func:`rows_stat` (the mean of per-row statistics, e.g. the per-row effect contributions
of :mod:`memlib.row_effects`, whose sum over a set's rows is its effect size exactly) and
:func:`reference_stat` (the exact re-count of :meth:`memlib.ct.Reference.subset_curves` on each
reference draw's cached distances). :func:`reference_draws` fits the R references: disjoint P_n
draws from a pool of held-out images, k-means seed ``seed + r``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .bootstrap import percentile_ci
from .ct import LayerDistances, Reference, fit_reference, fit_t_space
from .ct_inputs import as_layers
from .errors import InputError, ParameterError

LEVELS = ("reference", "clusters", "sets", "points")
POOLED = "all"
BLOCK = 1 << 22          # row indices held at once per scorer call


@dataclass(frozen=True)
class SetStat:
    """One set's statistic on every reference draw.

    name: the set's name (in errors); cluster: the unit above sets within its group (a set's
    own name when nothing groups sets); m: the set's rows; n_refs: R reference draws;
    score: ``score(r, draws)`` with r in [0, R) and draws a (B, s) int array of row indices
    (repeats allowed) returns (B, K) float64: the statistic of each draw on reference r.
    """

    name: str
    cluster: str
    m: int
    n_refs: int
    score: Callable[[int, np.ndarray], np.ndarray]


class HierDraws(NamedTuple):
    """labels: the groups in input order, then ``"all"``; point: (G+1, K) the estimate;
    boot: (B, G+1, K) the replicates (NaN where a replicate's statistic is undefined)."""

    labels: tuple
    point: np.ndarray
    boot: np.ndarray


def rows_stat(name: str, rows: np.ndarray, *, cluster: str | None = None) -> SetStat:
    """A set whose statistic is the mean of its per-row statistics.

    rows: (m, K) or (R, m, K) float, one (m, K) block per reference draw (units of the
    statistic, e.g. effect-size points). The mean of a draw of rows is its statistic.
    """
    r = np.asarray(rows, np.float64)
    if r.ndim == 2:
        r = r[None]
    if r.ndim != 3 or r.shape[1] == 0 or r.shape[2] == 0:
        raise InputError(f"set {name!r}: rows must be (m, K) or (R, m, K) with m, K >= 1, "
                         f"got shape {np.shape(rows)}")
    return SetStat(name, name if cluster is None else cluster, r.shape[1], r.shape[0],
                   lambda ref, draws: r[ref][draws].mean(axis=1))


def reference_stat(name: str, references: Sequence[Reference],
                   distances: Sequence[LayerDistances], *, statistic: str = "effect",
                   cluster: str | None = None) -> SetStat:
    """A set scored exactly by :meth:`memlib.ct.Reference.subset_curves` on each reference draw.

    references: R fitted references (one per P_n draw / k-means seed); distances: the set's
    :meth:`memlib.ct.Reference.layer_distances` on each, (L, m) per draw. K = L layers.
    """
    if len(references) == 0 or len(references) != len(distances):
        raise InputError(f"set {name!r}: {len(references)} references and {len(distances)} "
                         f"distance tables; give one per reference draw (at least one)")
    ms = {d.dist.shape[1] for d in distances}
    if len(ms) != 1:
        raise InputError(f"set {name!r}: its distance tables hold different row counts {sorted(ms)}")
    return SetStat(name, name if cluster is None else cluster, ms.pop(), len(references),
                   lambda ref, draws: references[ref].subset_curves(distances[ref], draws,
                                                                    statistic=statistic))


def reference_draws(train_layers: Any, test_pool: Any, *, n_test: int, n_draws: int, seed: int,
                    **fit_kwargs: Any) -> tuple[list[Reference], list[np.ndarray]]:
    """R = n_draws references that differ in what a re-run may draw: disjoint P_n of n_test rows
    each from a pool of held-out images, and k-means seed ``seed + r`` for draw r.

    Args:
        train_layers: T's L layers of (l, D) features (the same T for every draw).
        test_pool: L layers of (N, D) held-out features (an (L, N, D) array, a sequence or
            :class:`memlib.features.LayerFeatures`), N >= n_draws · n_test.
        n_test, n_draws: rows per P_n draw and number of draws (>= 1 each). seed: the row
            permutation ``np.random.default_rng(seed)`` and the first k-means seed.
        fit_kwargs: passed to :func:`memlib.ct.fit_reference` (its ``seed`` is seed + r).

    Returns:
        (references, rows): the R fitted references and each one's sorted pool rows (int64).
    """
    if n_test < 1 or n_draws < 1:
        raise ParameterError(f"n_test and n_draws must be >= 1, got {n_test}, {n_draws}")
    pool = as_layers(test_pool, "test pool")
    n_pool = np.shape(pool[0])[0]
    if n_draws * n_test > n_pool:
        raise InputError(f"test pool: {n_draws} disjoint draws of {n_test} rows need "
                         f"{n_draws * n_test} rows, the pool has {n_pool}")
    perm = np.random.default_rng(seed).permutation(n_pool)
    rows = [np.sort(perm[r * n_test:(r + 1) * n_test]).astype(np.int64) for r in range(n_draws)]
    shared = {}
    if fit_kwargs.get("variant", "ct") == "ct" and n_draws > 1:   # one T: its PCA is fit once for every draw
        shared["t_space"] = fit_t_space(train_layers, **{k: fit_kwargs[k] for k in ("n_cells", "pca_dim", "small_t")
                                                         if k in fit_kwargs})
    refs = [fit_reference(train_layers, _Rows(pool, idx), seed=seed + r, **fit_kwargs, **shared)
            for r, idx in enumerate(rows)]
    return refs, rows


def hierarchical_bootstrap(groups: Mapping[str, Sequence[SetStat]], *, n_boot: int, seed: int,
                           resample: Sequence[str] = LEVELS) -> HierDraws:
    """Replicates of each group's mean statistic and of their pooled mean (module docstring).

    Args:
        groups: group name -> its sets (:class:`SetStat`, all with the same K and R).
        n_boot: replicates (>= 1). seed: ``np.random.default_rng(seed)``; a fixed seed gives
            identical replicates.
        resample: the levels redrawn, a subset of :data:`LEVELS`. Between-set levels
            (``clusters``, ``sets``) need >= 2 units in every group.

    Returns:
        :class:`HierDraws`.

    Raises:
        InputError: an empty group, a group with one set (or one cluster) where that level is
        resampled, sets with different K or R. ParameterError: bad n_boot or levels.
    """
    levels = set(resample)
    if not levels <= set(LEVELS):
        raise ParameterError(f"resample: levels must be among {LEVELS}, got {sorted(levels - set(LEVELS))}")
    if n_boot < 1:
        raise ParameterError(f"n_boot must be >= 1, got {n_boot}")
    names = list(groups)
    if not names:
        raise InputError("hierarchical_bootstrap needs at least one group of sets")
    sets = [s for g in names for s in groups[g]]
    _check_groups(groups, levels)
    n_refs = sets[0].n_refs
    if any(s.n_refs != n_refs for s in sets):
        raise InputError(f"every set needs the same number of reference draws: "
                         f"{ {s.name: s.n_refs for s in sets} }")
    rng = np.random.default_rng(seed)
    refs = (rng.integers(0, n_refs, n_boot) if "reference" in levels and n_refs > 1
            else None)
    g_of = np.concatenate([np.full(len(groups[g]), i) for i, g in enumerate(names)])
    first = np.cumsum([0] + [len(groups[g]) for g in names])
    inst_b, inst_s = [], []                       # one entry per set instance of a replicate
    for b in range(n_boot):
        for gi, g in enumerate(names):
            chosen = first[gi] + _draw_sets(groups[g], levels, rng)
            inst_b.append(np.full(len(chosen), b))
            inst_s.append(chosen)
    inst_b, inst_s = np.concatenate(inst_b), np.concatenate(inst_s)
    full = [_full_scores(s) for s in sets]        # (R, K) each: the data as they are
    k = full[0].shape[1]
    if any(f.shape[1] != k for f in full):
        raise InputError(f"every set's statistic needs the same K: "
                         f"{ {s.name: f.shape[1] for s, f in zip(sets, full)} }")
    vals = np.empty((len(inst_s), k))
    for si, s in enumerate(sets):
        at = np.flatnonzero(inst_s == si)
        if len(at):
            vals[at] = _instance_scores(s, full[si], inst_b[at], refs, "points" in levels, rng)
    boot = _group_means(vals, inst_b, g_of[inst_s], n_boot, len(names))
    point = _group_means(np.stack([f.mean(axis=0) for f in full]), np.zeros(len(sets), int),
                         g_of, 1, len(names))[0]
    return HierDraws(tuple(names) + (POOLED,), point, boot)


def reduce_draws(draws: HierDraws, fn: Callable[[np.ndarray], np.ndarray]) -> HierDraws:
    """The same replicates with ``fn`` applied over the last axis, (..., K) -> (...), e.g.
    :func:`memlib.bootstrap.late_minus_early`; the result has K = 1."""
    return HierDraws(draws.labels, np.asarray(fn(draws.point))[..., None],
                     np.asarray(fn(draws.boot))[..., None])


def summary_table(draws: HierDraws, level: float) -> pd.DataFrame:
    """One row per label and k (0-based): value, ci_low, ci_high (percentile, NaN replicates
    left out, :func:`memlib.bootstrap.percentile_ci`), width = ci_high − ci_low."""
    lo, hi = percentile_ci(draws.boot, level)
    rows = [dict(label=lab, k=k, value=float(draws.point[i, k]), ci_low=float(lo[i, k]),
                 ci_high=float(hi[i, k]), width=float(hi[i, k] - lo[i, k]))
            for i, lab in enumerate(draws.labels) for k in range(draws.point.shape[1])]
    return pd.DataFrame(rows, columns=["label", "k", "value", "ci_low", "ci_high", "width"])


# --------------------------------------------------------------------------- internals


class _Rows:
    """Rows ``idx`` of every layer of per-layer features, read one layer at a time."""

    def __init__(self, layers, idx):
        self.layers, self.idx = layers, idx

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, layer):
        return np.asarray(self.layers[layer][self.idx])



def _check_groups(groups, levels):
    for g, sets in groups.items():
        if len(sets) == 0:
            raise InputError(f"group {g!r} has no sets; drop it or give it sets")
        for s in sets:
            if s.m < 1:
                raise InputError(f"group {g!r}: set {s.name!r} has no rows")
        clusters = {s.cluster for s in sets}
        if "clusters" in levels and len(clusters) < 2:
            raise InputError(f"group {g!r}: its {len(sets)} sets form {len(clusters)} cluster; "
                             f"resampling clusters needs >= 2 (leave 'clusters' out of resample "
                             f"to keep them fixed)")
        if "sets" in levels and "clusters" not in levels and len(sets) < 2:
            raise InputError(f"group {g!r} has one set ({sets[0].name!r}); resampling sets needs "
                             f">= 2 (a single set has no between-set spread to estimate)")


def _draw_sets(sets, levels, rng):
    """Indices (into ``sets``) of one replicate's set instances of a group."""
    by_cluster: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        by_cluster.setdefault(s.cluster, []).append(i)
    members = list(by_cluster.values())
    if "clusters" in levels:
        members = [members[c] for c in rng.integers(0, len(members), len(members))]
    out = []
    for mem in members:
        out.extend(np.asarray(mem)[rng.integers(0, len(mem), len(mem))] if "sets" in levels else mem)
    return np.asarray(out, np.int64)


def _full_scores(s):
    """(R, K) the statistic of all of a set's rows on every reference draw."""
    whole = np.arange(s.m)[None]
    return np.stack([np.asarray(s.score(r, whole), np.float64)[0] for r in range(s.n_refs)])


def _instance_scores(s, full, inst_b, refs, points, rng):
    """(n, K) statistic of n instances of one set (instance i belongs to replicate inst_b[i]);
    row draws are made block by block, in instance order."""
    n, k = len(inst_b), full.shape[1]
    if not points:
        return full[refs[inst_b]] if refs is not None else np.broadcast_to(full.mean(axis=0), (n, k))
    out = np.empty((n, k))
    block = max(1, BLOCK // s.m)
    for a in range(0, n, block):
        draws = rng.integers(0, s.m, size=(min(block, n - a), s.m))
        if refs is None:
            out[a:a + len(draws)] = np.mean([s.score(r, draws) for r in range(s.n_refs)], axis=0)
            continue
        which = refs[inst_b[a:a + len(draws)]]
        for r in np.unique(which):
            out[a + np.flatnonzero(which == r)] = s.score(int(r), draws[which == r])
    return out


def _group_means(vals, b_of, g_of, n_boot, n_groups):
    """(n_boot, G+1, K): per replicate, each group's mean over its instances (NaN values left
    out; NaN where none is finite), then the equal-weight mean over groups."""
    k = vals.shape[1]
    ok = np.isfinite(vals)
    key = b_of * n_groups + g_of
    total = np.zeros((n_boot * n_groups, k))
    count = np.zeros((n_boot * n_groups, k))
    np.add.at(total, key, np.where(ok, vals, 0.0))
    np.add.at(count, key, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (total / count).reshape(n_boot, n_groups, k)
    return np.concatenate([means, means.mean(axis=1, keepdims=True)], axis=1)
