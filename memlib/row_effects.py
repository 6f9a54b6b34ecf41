"""Per-row terms of a set's effect size: the exact split of a net score into the rows that copy
and the rows that do not (``docs/design.md``, "Study v3": C_T is a net score).

On one layer of a fitted :class:`memlib.ct.Reference`, a generated point q in cell π has the U
contribution c_q = #{test points p of π with L(p) < L(q)} + ½ #{L(p) = L(q)} (the engine's own
per-point number, :mod:`memlib.ct`). The cell's effect E(π) = 2 U(π) / (n_π m_π) − 1 is the mean
over the cell's generated points of the **row effect**

    r_q = 2 c_q / n_π − 1   (in [−1, 1]: −1 when q is nearer to T than every test point of π),

and the set's effect E = Σ_π w_π E(π) (w_π = P_n(π) renormalised over the kept cells) is

    E = Σ_q ω_q r_q,   ω_q = w_π(q) / m_π(q) in a kept cell, 0 in a dropped one.

So the rows of any partition of a set (copies / non-copies) have **contributions** Σ ω_q r_q
that add up to the set's effect exactly, and each part can also be scored as a set of its own
(:meth:`memlib.ct.Reference.subset_curves`: its own cells' counts and τ). Both are in
:func:`split_table`. The row effects are also per-row statistics for
:func:`memlib.hierarchical.rows_stat` (rows ``m · ω_q r_q``, whose mean is E).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np
import pandas as pd

from .ct import MIN_CELL_POINTS, LayerDistances, Reference
from .errors import InputError


class RowTerms(NamedTuple):
    """A set's per-row terms on every layer of a reference.

    effect: (L, m) float64 row effect r_q in [−1, 1] (NaN in a cell without test points);
    weight: (L, m) float64 ω_q (0 in a dropped cell), Σ_q weight · effect = the set's effect.
    """

    effect: np.ndarray
    weight: np.ndarray


def row_terms(reference: Reference, gen: Any) -> RowTerms:
    """Row effects and weights of one generated set (L layers of (m, D) features, or its
    :class:`memlib.ct.LayerDistances`) on a ``ct`` / ``ct_test`` reference.

    Raises InputError where the set's effect is undefined on a layer (no kept cell, or a kept
    cell without test or training points), as :meth:`memlib.ct.Reference.curve` does.
    """
    dist = gen if isinstance(gen, LayerDistances) else reference.layer_distances(gen)
    m = dist.dist.shape[1]
    whole = reference.subset_curves(dist, [np.arange(m)], statistic="effect")[0]
    bad = np.flatnonzero(np.isnan(whole))
    if len(bad):
        raise InputError(f"gen: no cell keeps more than {MIN_CELL_POINTS} of its {m} points on "
                         f"layer(s) {(bad + 1).tolist()}; its effect size is undefined there")
    tau = MIN_CELL_POINTS / m if reference.tau is None else float(reference.tau)
    effect = np.empty((reference.n_layers, m))
    weight = np.zeros((reference.n_layers, m))
    for l in range(reference.n_layers):
        lay, cells = reference.layers[l], dist.cells[l]
        # the engine's per-point U contribution (memlib.ct, Reference class docstring)
        contrib = reference._contributions(l, dist.dist[l], cells)
        n_cell = lay.n_test.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            effect[l] = 2.0 * contrib / n_cell[cells] - 1.0
        m_cell = np.bincount(cells, minlength=len(n_cell)).astype(np.float64)
        kept = m_cell / m > tau
        w = np.where(kept, n_cell, 0.0) / np.where(kept, n_cell, 0.0).sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            weight[l] = np.where(kept[cells], w[cells] / m_cell[cells], 0.0)
    return RowTerms(effect, weight)


def contribution(terms: RowTerms, rows: np.ndarray | None = None) -> np.ndarray:
    """(L,) Σ ω_q r_q over ``rows`` (1-D indices or a boolean mask; None: all rows, the set's
    effect). Rows in dropped cells contribute 0."""
    sel = slice(None) if rows is None else np.asarray(rows)
    return np.nansum((terms.weight * np.where(terms.weight > 0, terms.effect, 0.0))[:, sel], axis=1)


def split_table(reference: Reference, gen: Any, parts: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per part and layer: the set's effect split by rows.

    Args:
        reference: a fitted ``ct`` / ``ct_test`` reference (its T the generator's own training
            set for claim 1). gen: the set's L layers of (m, D) features, or its
            :class:`memlib.ct.LayerDistances`.
        parts: part name -> rows (1-D int indices, or an (m,) boolean mask), e.g.
            ``{"all": all rows, "copies": flags, "non-copies": ~flags}``.

    Returns:
        Columns part, layer (1-based), n (rows), share (n / m), effect (the part scored as a set
        of its own, :meth:`memlib.ct.Reference.subset_curves`; NaN on a layer where none of its
        cells holds more than 20 of its rows or the part is empty), contribution (its rows' terms
        in the whole set's effect: parts that partition the set add up to its effect exactly).
    """
    dist = gen if isinstance(gen, LayerDistances) else reference.layer_distances(gen)
    m = dist.dist.shape[1]
    terms = row_terms(reference, dist)
    rows = []
    for name, sel in parts.items():
        idx = row_indices(sel, m, name)
        if len(idx):
            own = reference.subset_curves(dist, [idx], statistic="effect")[0]
        else:
            own = np.full(reference.n_layers, np.nan)
        contrib = contribution(terms, idx)
        rows += [dict(part=name, layer=l + 1, n=len(idx), share=len(idx) / m, effect=float(own[l]),
                      contribution=float(contrib[l])) for l in range(reference.n_layers)]
    return pd.DataFrame(rows, columns=["part", "layer", "n", "share", "effect", "contribution"])


def row_indices(sel, m: int, name: str) -> np.ndarray:
    """The rows a part selects, as int64 indices into [0, m): ``sel`` is an (m,) boolean mask or
    1-D integer indices. Raises InputError naming the part ``name`` otherwise."""
    a = np.asarray(sel)
    if a.dtype == bool:
        if a.shape != (m,):
            raise InputError(f"part {name!r}: a mask needs shape ({m},), got {a.shape}")
        return np.flatnonzero(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) and a.size:
        raise InputError(f"part {name!r}: rows must be 1-D integer indices or an ({m},) mask")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= m):
        raise InputError(f"part {name!r}: indices must lie in [0, {m})")
    return a
