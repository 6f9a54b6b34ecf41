"""Architecture or training recipe? Folds and the claim-3-recipe statistic (Study v3 groundwork).

Issue 31 asks whether a C_T-layer curve is a property of the *architecture* or only of one
training recipe (docs/design.md, "Study v3 groundwork: claims 3–4"). A table of generated sets
describes each set ``i`` by

- ``labels[i]``: the class attributed (architecture, or family at the family grain);
- ``recipes[i]``: its training recipe (``default`` for today's zoo, :mod:`memlib.zoo.recipes`);
- ``seeds[i]``: its seed; every recipe of seed s trains on seed s's data window, so a set of
  seed s and a set of another seed share no training image;
- ``train_data[i]``: its training data spec (for the leak check).

A *training run* is one (architecture, recipe, seed, data window); it is the unit of every
interval here, because two subsets of one set, or two sets sampled from one model, are not
independent evidence about the architecture.

Folds (:class:`memlib.fingerprint.Fold`, indices into the table) for
:func:`memlib.attribution_eval.query_predictions` (``folds=``):

- :func:`cross_recipe_folds`: references from one recipe, queries from another, leave one seed
  out; :func:`recipe_pairs` gives both directions.
- :func:`recipe_task_folds`: the fine-grained task, which recipe of one architecture made a set.
- :func:`recipe_fold_leaks`: what a fold's references share with its queries (must be nothing).

Claim 3-recipe's statistic: :func:`recipe_separation` (per label, the curve distance across
its recipes over the distance to the nearest other label, with a cluster bootstrap over training
runs); the rule is :func:`memlib.claims.claim_3_recipe_verdict`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from . import fingerprint as fp
from .attribution_eval import fold_leaks, leave_one_seed_out
from .errors import InputError

DEFAULT_RECIPE = "default"   # the same name as memlib.zoo.recipes.DEFAULT_RECIPE


def _columns(labels, recipes, seeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, recipes, seeds = np.asarray(labels), np.asarray(recipes), np.asarray(seeds)
    if labels.ndim != 1 or not (labels.shape == recipes.shape == seeds.shape) or labels.size == 0:
        raise InputError(f"labels, recipes and seeds must be equally long 1-D arrays; got "
                         f"{labels.shape}, {recipes.shape}, {seeds.shape}")
    return labels, recipes, seeds


def recipe_pairs(recipes, *, default: str = DEFAULT_RECIPE, all_pairs: bool = False) -> list[tuple[str, str]]:
    """(reference recipe, query recipe) pairs: for every other recipe r, (default, r) and
    (r, default), i.e. both directions; with ``all_pairs`` every ordered pair of distinct recipes."""
    names = sorted(set(np.asarray(recipes).tolist()))
    if all_pairs:
        return [(a, b) for a in names for b in names if a != b]
    return [p for r in names if r != default for p in ((default, r), (r, default))]


def cross_recipe_folds(labels, recipes, seeds, reference_recipe: str, query_recipe: str, *,
                       fallback: str = DEFAULT_RECIPE) -> list[fp.Fold]:
    """Leave-one-seed-out folds whose references come from ``reference_recipe`` and queries
    from ``query_recipe``.

    For each seed s: queries = the sets of ``query_recipe`` and seed s whose label has a set of
    ``reference_recipe`` (the others cannot be asked across recipes); references = the sets of
    seed != s of ``reference_recipe`` and, for a label that has no ``reference_recipe`` set at
    all, its ``fallback`` sets, so that every label stays a candidate (the harder choice: when
    ``query_recipe`` is the fallback, those candidates share the queries' recipe). A fold
    without queries is left out. ``held_out`` is ``"<reference_recipe>-><query_recipe>/s<s>"``.

    Raises InputError for equal recipes, or when a queried label has no reference left.
    """
    labels, recipes, seeds = _columns(labels, recipes, seeds)
    if reference_recipe == query_recipe:
        raise InputError(f"cross_recipe_folds: reference and query recipe are both {query_recipe!r}")
    with_ref = np.isin(labels, np.unique(labels[recipes == reference_recipe]))
    ref_recipe_ok = (recipes == reference_recipe) | (~with_ref & (recipes == fallback))
    folds = []
    for s in np.unique(seeds):
        queries = np.flatnonzero((recipes == query_recipe) & (seeds == s) & with_ref)
        if not queries.size:
            continue
        refs = np.flatnonzero(ref_recipe_ok & (seeds != s))
        missing = set(labels[queries].tolist()) - set(labels[refs].tolist())
        if missing:
            raise InputError(f"{sorted(missing)} have no {reference_recipe!r} set besides seed {s}")
        folds.append(fp.Fold(f"{reference_recipe}->{query_recipe}/s{s}", refs, queries, np.array([], dtype=int)))
    return folds


def recipe_task_folds(architectures, recipes, seeds, architecture: str) -> list[fp.Fold]:
    """The fine-grained task: which recipe of ``architecture`` made a set? Leave-one-seed-out
    folds over that architecture's sets only (indices into the whole table); run them with
    ``labels = recipes``. Raises InputError if it has fewer than 2 recipes or a recipe with
    one seed."""
    architectures, recipes, seeds = _columns(architectures, recipes, seeds)
    idx = np.flatnonzero(architectures == architecture)
    if len(set(recipes[idx].tolist())) < 2:
        raise InputError(f"{architecture!r} has {len(set(recipes[idx].tolist()))} recipe(s); the recipe task needs >= 2")
    return [fp.Fold(f.held_out, idx[f.refs], idx[f.queries], f.unknown)
            for f in leave_one_seed_out(recipes[idx], seeds[idx])]


def training_runs(architectures, recipes, seeds, train_data) -> list[str]:
    """One id per set of its training run: ``architecture/recipe/s<seed>/<train_data>``."""
    return [f"{a}/{r}/s{s}/{d}" for a, r, s, d in zip(architectures, recipes, seeds, train_data)]


def recipe_fold_leaks(fold: fp.Fold, architectures, recipes, seeds, train_data) -> list[str]:
    """What a fold's references share with its queries, one line each: a training run
    (:func:`training_runs`), a training data window (:func:`memlib.attribution_eval.fold_leaks`)
    or a seed (every recipe of one seed trains on the same window). Empty for a sound fold."""
    runs = training_runs(architectures, recipes, seeds, train_data)
    leaks = fold_leaks(fold, list(train_data), runs)
    query_seeds = {seeds[i] for i in fold.queries}
    leaks += [f"reference set {i} has seed {seeds[i]}, as a query does" for i in fold.refs
              if seeds[i] in query_seeds]
    return leaks


# --------------------------------------------------------------------------- claim 3-recipe


@dataclass(frozen=True)
class RecipeSeparation:
    """Claim 3-recipe's numbers at one grain.

    table: one row per label with >= 2 recipes: label, n_recipes, n_runs, min_seeds (the fewest
        seeds of one of its recipes), across (mean curve
        distance between two of its sets of different recipe *and* different seed, curve units),
        nearest_other (mean over its sets of the distance to the nearest set of another label),
        ratio (across / nearest_other; < 1: its recipes are nearer each other than any other
        label), ratio_lo, ratio_hi (CI), separated (ratio < 1).
    worst, worst_lo, worst_hi: the largest ratio over the labels and its CI (each replicate's
        largest ratio): below 1 with its CI means every label is separated at once.
    boot: (n_boot, K) replicate ratios, columns in ``table`` order.
    redrawn: replicates drawn again because some label had no pair of different recipe and
        seed in them (with two seeds per recipe, a label's draw can hold one seed only).
    """

    table: pd.DataFrame
    worst: float
    worst_lo: float
    worst_hi: float
    boot: np.ndarray
    redrawn: int = 0


def _ratios(d, labels, recipes, seeds, pick, targets) -> np.ndarray:
    """Ratio per target label on the sets ``pick`` (indices, duplicates allowed: a bootstrap
    replicate); a pair of two copies of one set is never a pair."""
    L, R, S = labels[pick], recipes[pick], seeds[pick]
    dd = d[np.ix_(pick, pick)]
    same_set = pick[:, None] == pick[None, :]
    out = np.empty(len(targets))
    for t, lab in enumerate(targets):
        own = L == lab
        valid = (own[:, None] & own[None, :] & (R[:, None] != R[None, :]) & (S[:, None] != S[None, :])
                 & ~same_set)
        if not valid.any() or own.all():
            out[t] = np.inf
            continue
        across = dd[valid].mean()
        nearest = dd[np.ix_(own, ~own)].min(axis=1).mean()
        out[t] = across / nearest if nearest > 0 else np.inf
    return out


def recipe_separation(curves, labels, recipes, seeds, *, distance: str = "euclidean", n_boot: int = 2000,
                      seed: int = 0, level: float = 0.95) -> RecipeSeparation:
    """Is each label's curve the same across its recipes, and apart from every other label?

    curves: (N, L) one full-set C_T-layer curve per set (C_T units); labels, recipes, seeds: (N,)
    (module doc; at the family grain pass families as labels and ``architecture/recipe`` as
    recipes); distance: of :func:`memlib.fingerprint.curve_distances` (``euclidean``: level and
    shape; ``znorm``: shape only).
    The across-recipe distance uses only pairs of different recipe and different seed (two
    recipes of one seed share the data window, which would make them look alike). The CI is a
    cluster bootstrap whose unit is the training run: each replicate redraws, with replacement,
    as many sets of every label as it has (one set = one training run) and recomputes both
    distances; a replicate in which some label has no pair of different recipe and seed is
    drawn again (counted in ``redrawn``); percentile interval at ``level``.
    Returns :class:`RecipeSeparation`. Raises InputError with one label only, when no label has 2 recipes, or a label
    with 2 recipes has no pair of different recipe and seed.
    """
    labels, recipes, seeds = _columns(labels, recipes, seeds)
    curves = np.asarray(curves, float)
    if curves.ndim != 2 or len(curves) != len(labels) or not np.isfinite(curves).all():
        raise InputError(f"curves must be a finite (N, L) array with N = {len(labels)}; got {curves.shape}")
    targets = [lab for lab in sorted(set(labels.tolist()))
               if len(set(recipes[labels == lab].tolist())) >= 2]
    if not targets:
        raise InputError("recipe_separation: no label has sets of two recipes")
    if len(set(labels.tolist())) < 2:
        raise InputError("recipe_separation: needs sets of >= 2 labels (a nearest other label)")
    d = fp.curve_distances(curves, curves, distance)
    everything = np.arange(len(labels))
    point = _ratios(d, labels, recipes, seeds, everything, targets)
    if not np.isfinite(point).all():
        bad = [lab for lab, v in zip(targets, point) if not np.isfinite(v)]
        raise InputError(f"recipe_separation: {bad} have no two sets of different recipe and different seed")
    strata = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(targets)))
    b = redrawn = 0
    while b < n_boot:
        pick = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        boot[b] = _ratios(d, labels, recipes, seeds, pick, targets)
        if np.isfinite(boot[b]).all():
            b += 1
        else:
            redrawn += 1
            if redrawn > 10 * n_boot:
                raise InputError("recipe_separation: most replicates lack a pair of different recipe and seed "
                                 "for some label; give every recipe more seeds")
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.quantile(boot, q, axis=0)
    rows = []
    for t, lab in enumerate(targets):
        own = labels == lab
        pairs = own[:, None] & own[None, :] & (recipes[:, None] != recipes[None, :]) & (seeds[:, None] != seeds[None, :])
        per_recipe = pd.Series(seeds[own]).groupby(recipes[own]).nunique()
        rows.append(dict(label=lab, n_recipes=len(per_recipe), n_runs=int(own.sum()),
                         min_seeds=int(per_recipe.min()),
                         across=float(d[pairs].mean()) if pairs.any() else float("nan"),
                         nearest_other=float(d[np.ix_(own, ~own)].min(axis=1).mean()),
                         ratio=float(point[t]), ratio_lo=float(lo[t]), ratio_hi=float(hi[t])))
    table = pd.DataFrame(rows)
    table["separated"] = table.ratio < 1
    worst_boot = boot.max(axis=1)
    w_lo, w_hi = np.quantile(worst_boot, q)
    return RecipeSeparation(table, float(point.max()), float(w_lo), float(w_hi), boot, redrawn)
