"""Architecture or training recipe? Folds, attribution across recipes and claim 3-recipe (notebook 04).

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

Notebook 04 runs :func:`run_recipe_attribution` (every method on those folds, with the inputs of
the main run) and :func:`recipe_claim_rows` (claim 3-recipe at both grains).

The open set across recipes (issue 31 item 5): :func:`recipe_open_set`, whether a set of a
recipe the references (default recipe only) never saw is accepted and attributed to its
architecture or rejected, beside the rejection of a left-out family under the same threshold rule.

Claim 3-recipe's statistic: :func:`recipe_separation` (per label, the curve distance across
its recipes over the distance to the nearest other label, with a cluster bootstrap over training
runs); the rule is :func:`memlib.claims.claim_3_recipe_verdict`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import attribution_eval as ae
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


# --------------------------------------------------------------------------- attribution across recipes

ACROSS_TASK = "across recipes"       # references from one recipe, queries from another (grain: architecture, family)
RECIPE_TASK = "which recipe"         # which recipe of one architecture made a set (grain: recipe)
ALL_SPLITS = "all"                   # the split of the rows pooled over directions (or architectures)
RECIPE_KEYS = ["task", "grain", "split", "query_size"]


@dataclass
class RecipeAttribution:
    """Attribution across training recipes on one table of sets (:func:`run_recipe_attribution`).

    The table: the default-recipe sets of a :class:`memlib.fingerprint_study.FingerprintRun`
    first, in its ``keys`` order, then every recipe set. Per set i: ``keys[i]`` (architecture,
    recipe, seed); ``architectures``, ``families``, ``recipes``, ``seeds``, ``train_data``: (N,)
    arrays. ``inputs``: {query size: :class:`memlib.attribution_eval.SizeInputs` of the whole
    table} (the run's own subsets for its sets). ``folds``: {``across recipes``: every
    :func:`recipe_pairs` direction's :func:`cross_recipe_folds`; ``which recipe/<architecture>``:
    its :func:`recipe_task_folds`}. ``leaks``: :func:`recipe_fold_leaks` of every fold (a sound
    study has none). ``predictions``: :func:`memlib.attribution_eval.query_predictions` rows with
    task, grain (architecture | family | recipe), split (the direction ``<reference
    recipe>-><query recipe>``, or the architecture of the recipe task), query_size and chance
    (1 / candidate labels of the fold). ``accuracy``: ``fingerprint_recipe.csv``: task, grain,
    split (``all``: pooled over directions or architectures, listed first), query_size, method,
    accuracy, acc_lo, acc_hi (cluster bootstrap over query sets), n_queries (query subsets),
    chance.
    """

    keys: list
    architectures: np.ndarray
    families: np.ndarray
    recipes: np.ndarray
    seeds: np.ndarray
    train_data: np.ndarray
    sizes: list[int]
    inputs: dict
    folds: dict[str, list[fp.Fold]]
    leaks: list[str]
    predictions: pd.DataFrame
    accuracy: pd.DataFrame

    def full_curves(self) -> np.ndarray:
        """(N, L) the curve of every whole set (the largest query size, first draw)."""
        return np.stack([c[0] for c in self.inputs[self.sizes[-1]].curves])


def _joined(a: ae.SizeInputs, b: ae.SizeInputs) -> ae.SizeInputs:
    both = lambda x, y: None if x is None or y is None else list(x) + list(y)
    share = (a.undefined_share * len(a.curves) + b.undefined_share * len(b.curves)) / (len(a.curves) + len(b.curves))
    return ae.SizeInputs(list(a.curves) + list(b.curves), list(a.subsets) + list(b.subsets),
                         both(a.features, b.features), both(a.final_norm, b.final_norm), float(share))


def run_recipe_attribution(study, run, recipe_images: dict, train_data: dict, family_of: Callable[[str], str], *,
                           n_draws: int, level: float = 0.95, progress: bool = True) -> RecipeAttribution:
    """Every method on the cross-recipe folds and on the recipe task (issue 31 point 3).

    study: the :class:`memlib.study.Study` of ``run``; run: notebook 04's
    :class:`memlib.fingerprint_study.FingerprintRun` of the default-recipe sets (keys
    (architecture, seed)); recipe_images: {(architecture, recipe, seed): uint8 (N, H, W[, C])
    images, N >= ``run.m_total``}, recipe != ``default``, architecture one of the run's;
    train_data: {key: training data spec} for every run key and every recipe key (the leak
    check); family_of: architecture -> family; n_draws: subsets per set and query size below
    the whole set (the run's ``n_query_draws``); level: of every CI.
    A recipe set gets what a run set gets, at every size of ``run.sizes``: its own subsets
    (seeded as :func:`memlib.fingerprint_study.run_fingerprinting` seeds the i-th set), curves
    against the same public reference, final-norm C_T and final-layer features in the run's PCA
    space, so every method sees the same inputs. Across recipes: every direction of
    :func:`recipe_pairs`, leave one seed out, at the architecture and the family grain (the
    same folds, built on architectures). Which recipe: per architecture with recipe sets,
    labels = recipes. Returns :class:`RecipeAttribution`; InputError for an empty or bad table.
    """
    from tqdm.auto import tqdm

    p = study.params
    new = list(recipe_images)
    if not new:
        raise InputError("run_recipe_attribution: no recipe sets")
    bad = [k for k in new if len(k) != 3 or k[1] == DEFAULT_RECIPE or k[0] not in set(run.architectures.tolist())]
    if bad:
        raise InputError(f"run_recipe_attribution: keys must be (architecture of the run, recipe != "
                         f"{DEFAULT_RECIPE!r}, seed); got {bad}")
    short = [k for k in new if len(recipe_images[k]) < run.m_total]
    if short:
        raise InputError(f"run_recipe_attribution: {short} have fewer than the run's {run.m_total} samples")
    keys = [(a, DEFAULT_RECIPE, s) for a, s in run.keys] + new
    architectures = np.array([k[0] for k in keys])
    recipes = np.array([k[1] for k in keys])
    seeds = np.array([k[2] for k in keys])
    families = np.array([family_of(a) for a in architectures])
    data = np.array([train_data[k] for k in run.keys] + [train_data[k] for k in new])
    quiet = not progress
    reference, fn_reference, pca = study.reference(), study.final_norm_reference(), run.extra["pca"]
    feats = {k: study.features(recipe_images[k], name=f"{k[0]}-recipe-{k[1]}-s{k[2]}")
             for k in tqdm(new, desc="recipe sets", disable=quiet)}
    dists = [reference.layer_distances(feats[k]) for k in new]
    fn_dists = [fn_reference.layer_distances(study.final_norm_features(feats[k])) for k in new]
    final = [pca.transform(feats[k][-1]) for k in new]
    inputs = {}
    for n in run.sizes:
        subsets = [fp.subsample_indices(run.m_total, n, 1 if n == run.m_total else n_draws,
                                        seed=p["seed"] + 1000 * (len(run.keys) + j) + n) for j in range(len(new))]
        inputs[n] = _joined(run.clean[n], ae.size_inputs(reference, dists, subsets, features=final,
                                                         final_norm_reference=fn_reference,
                                                         final_norm_distances=fn_dists))
    folds = {ACROSS_TASK: [f for ref, q in recipe_pairs(recipes)
                           for f in cross_recipe_folds(architectures, recipes, seeds, ref, q)]}
    with_recipes = sorted(set(architectures[recipes != DEFAULT_RECIPE].tolist()))
    folds.update({f"{RECIPE_TASK}/{a}": recipe_task_folds(architectures, recipes, seeds, a) for a in with_recipes})
    leaks = [f"{f.held_out}: {leak}" for fs in folds.values() for f in fs
             for leak in recipe_fold_leaks(f, architectures, recipes, seeds, data)]

    def predict(labels, fs, n):
        """{grain: rows with their chance} on folds ``fs`` (one FD / k-NN pass for every grain)."""
        out = ae.query_predictions_by_grain(labels, seeds, inputs[n], folds=fs)
        return {g: d.assign(chance=d.fold.map({f.held_out: 1 / len(set(labels[g][f.refs].tolist())) for f in fs}))
                for g, d in out.items()}

    rows = []
    for n in tqdm(run.sizes, desc="attribution across recipes", disable=quiet):
        across = predict({"architecture": architectures, "family": families}, folds[ACROSS_TASK], n)
        for grain in ("architecture", "family"):
            d = across[grain].assign(task=ACROSS_TASK, grain=grain, query_size=n)
            rows.append(d.assign(split=d.fold.astype(str).str.split("/").str[0]))
        rows += [predict({"recipe": recipes}, folds[f"{RECIPE_TASK}/{a}"], n)["recipe"].assign(
                     task=RECIPE_TASK, grain="recipe", split=a, query_size=n) for a in with_recipes]
    predictions = pd.concat(rows, ignore_index=True)
    return RecipeAttribution(keys, architectures, families, recipes, seeds, data, list(run.sizes), inputs, folds,
                             leaks, predictions, recipe_accuracy(predictions, seed=p["seed"], level=level))


def recipe_accuracy(predictions: pd.DataFrame, *, seed: int, level: float = 0.95) -> pd.DataFrame:
    """The accuracy table of :class:`RecipeAttribution` from its predictions (columns of
    :data:`RECIPE_KEYS`, method, true, pred, set, chance): per split, and pooled over splits
    (split ``all``, first); the CI is :func:`memlib.attribution_eval.accuracy_table`'s cluster
    bootstrap over query sets (a set queried in several directions is one cluster)."""
    pooled = predictions.assign(split=ALL_SPLITS)
    out = []
    for d in (pooled, predictions):
        acc = ae.accuracy_table(d, RECIPE_KEYS, seed=seed, level=level)
        chance = d.groupby(RECIPE_KEYS + ["method"], sort=False).chance.mean().rename("chance").reset_index()
        out.append(acc.merge(chance, on=RECIPE_KEYS + ["method"], how="left"))
    return pd.concat(out, ignore_index=True)


def recipe_claim_rows(attribution: RecipeAttribution, family_of: Callable[[str], str], *, level: float = 0.95,
                      seed: int = 0, n_boot: int = 2000) -> tuple[list[dict], pd.DataFrame]:
    """Claim 3-recipe at both grains from the whole-set curves of ``attribution``.

    Architecture grain: :func:`recipe_separation` with labels = architectures (every
    architecture with recipe sets); family grain: labels = families, recipes =
    ``architecture/recipe``, reported for the families that hold recipe sets. Returns the
    claims.csv rows (:func:`memlib.claims.claim_3_recipe_claim`,
    :func:`memlib.claims.claim_3_recipe_family_claim`) and the two separation tables stacked
    with a ``grain`` column (ratios unitless, distances in curve units).
    """
    from . import claims

    a = attribution
    curves = a.full_curves()
    boot = dict(n_boot=n_boot, seed=seed, level=level)
    arch = recipe_separation(curves, a.architectures, a.recipes, a.seeds, **boot)
    fam = recipe_separation(curves, a.families, np.array([f"{x}/{r}" for x, r in zip(a.architectures, a.recipes)]),
                            a.seeds, targets=sorted(set(a.families[a.recipes != DEFAULT_RECIPE].tolist())), **boot)
    rows = [claims.claim_3_recipe_claim(arch, family_of, level=level),
            claims.claim_3_recipe_family_claim(fam, arch, family_of, level=level)]
    table = pd.concat([arch.table.assign(grain="architecture", worst=arch.worst, worst_lo=arch.worst_lo,
                                         worst_hi=arch.worst_hi, redrawn=arch.redrawn),
                       fam.table.assign(grain="family", worst=fam.worst, worst_lo=fam.worst_lo,
                                        worst_hi=fam.worst_hi, redrawn=fam.redrawn)], ignore_index=True)
    return rows, table


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
                      seed: int = 0, level: float = 0.95, targets: Sequence[str] | None = None) -> RecipeSeparation:
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
    targets: the labels to report (default: every label with sets of >= 2 recipes); at the
    family grain, e.g. only the families that hold recipe models (a family of two
    architectures has two "recipes" without any); each must have sets of >= 2 recipes.
    Returns :class:`RecipeSeparation`. Raises InputError with one label only, when no label has 2 recipes, or a label
    with 2 recipes has no pair of different recipe and seed.
    """
    labels, recipes, seeds = _columns(labels, recipes, seeds)
    curves = np.asarray(curves, float)
    if curves.ndim != 2 or len(curves) != len(labels) or not np.isfinite(curves).all():
        raise InputError(f"curves must be a finite (N, L) array with N = {len(labels)}; got {curves.shape}")
    eligible = [lab for lab in sorted(set(labels.tolist()))
                if len(set(recipes[labels == lab].tolist())) >= 2]
    if not eligible:
        raise InputError("recipe_separation: no label has sets of two recipes")
    if targets is not None:
        wrong = sorted(set(targets) - set(eligible), key=str)
        if wrong or not len(targets):
            raise InputError(f"recipe_separation: targets {wrong or '[]'} are not labels with sets of two recipes "
                             f"({eligible})")
        eligible = sorted(set(targets), key=str)
    targets = eligible
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


# --------------------------------------------------------------------------- the open set across recipes

OUTCOMES = ("rejected", "accepted, right architecture", "accepted, wrong architecture")
ALL = "all"


@dataclass(frozen=True)
class RecipeOpenSet:
    """A recipe never seen in the references: attributed to its architecture, or rejected?
    (:func:`recipe_open_set`).

    folds: one :class:`memlib.fingerprint.Fold` per held-out seed s (``held_out`` = s): refs =
        default-recipe sets of the other seeds, queries = default-recipe sets of seed s (the
        *known* queries), unknown = every non-default recipe set of seed s (the *recipe*
        queries); indices into the table.
    queries: one row per query subset: seed (the fold), set, draw, run (training run id
        ``architecture/recipe/s<seed>``), architecture, recipe, kind (``known`` | ``recipe``),
        score (distance to the nearest reference curve, curve units), threshold (the fold's),
        predicted (the nearest reference's architecture), outcome (one of :data:`OUTCOMES`).
    thresholds: per fold: seed, threshold (curve units), n_known (known query subsets),
        known_rejected (share of them above the threshold, ≈ ``false_alarm``).
    shares: one row per group of queries: kind, architecture and recipe (``all`` where pooled;
        rows: the known queries, every recipe query pooled, per recipe name pooled over
        architectures, per (architecture, recipe)), n_runs, n_queries, then for each outcome
        (``rejected``, ``right``, ``wrong``) its share of the group's query subsets and the CI
        (``*_lo``, ``*_hi``), and auc, auc_lo, auc_hi: ROC AUC of the score, these recipe
        queries against every known query (0.5: a new recipe looks as known as a known
        architecture's new seed; 1: always scored further away). NaN AUC on the known row.
    unknown_family: the contrast, a family left out of the references (as
        :func:`memlib.attribution_eval.open_set_scores`, default-recipe sets only): one row per
        left-out family and ``all``: left_out, n_runs, n_queries, rejected, rejected_lo,
        rejected_hi (share of its query subsets above the threshold of the fold, fixed by the
        same rule on the fold's known queries), auc, auc_lo, auc_hi (today's open-set ROC AUC).
        Empty with fewer than two families.
    false_alarm, level, n_boot: as given; redrawn: unknown-family folds left out of a replicate
        because none of their known runs was drawn (their threshold is undefined there).
    """

    folds: list
    queries: pd.DataFrame
    thresholds: pd.DataFrame
    shares: pd.DataFrame
    unknown_family: pd.DataFrame
    false_alarm: float
    level: float
    n_boot: int
    redrawn: int = 0

    def table(self) -> pd.DataFrame:
        """Both tables stacked for one CSV: ``what`` = ``recipe open set`` (rows of ``shares``)
        or ``unknown family`` (rows of ``unknown_family``, left_out in ``architecture``)."""
        fam = self.unknown_family.rename(columns={"left_out": "architecture"}).assign(
            what="unknown family", kind="unknown family", recipe=DEFAULT_RECIPE)
        out = pd.concat([self.shares.assign(what="recipe open set"), fam], ignore_index=True)
        first = ["what", "kind", "architecture", "recipe"]
        return out[first + [c for c in out.columns if c not in first]].assign(false_alarm=self.false_alarm)


def _per_set_curves(curves, n: int) -> list[np.ndarray]:
    """(N, L) or a sequence of (S_i, L) -> a list of finite (S_i, L) arrays, one per set."""
    if isinstance(curves, np.ndarray) and curves.ndim == 2:
        curves = [c[None, :] for c in curves]
    out = [np.asarray(c, float) for c in curves]
    if len(out) != n:
        raise InputError(f"curves: {len(out)} sets but {n} labels")
    widths = {c.shape[1] if c.ndim == 2 else -1 for c in out}
    if len(widths) != 1 or -1 in widths or any(len(c) == 0 for c in out) or not all(np.isfinite(c).all() for c in out):
        raise InputError("curves: every set needs a finite (S_i, L) array of one L, S_i >= 1")
    return out


def _stratum_counts(strata: list[np.ndarray], n_sets: int, n_boot: int, rng) -> np.ndarray:
    """(n_boot, n_sets) how often each set (training run) is drawn: per stratum, as many draws
    with replacement as it has members."""
    counts = np.zeros((n_boot, n_sets))
    for members in strata:
        k = len(members)
        draws = rng.integers(0, k, size=(n_boot, k))
        counts[:, members] += (draws[:, :, None] == np.arange(k)).sum(axis=1)
    return counts


def _thresholds(scores: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of ``scores`` (numpy's linear rule) with each score repeated ``weights[b]``
    times, per replicate b -> (B,), NaN where every weight is 0."""
    out = np.full(len(weights), np.nan)
    for b, w in enumerate(weights.astype(int)):
        if w.sum():
            out[b] = np.quantile(np.repeat(scores, w), q)
    return out


def _weighted_auc(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """ROC AUC of positives (higher score) against negatives with per-replicate weights:
    (B, P) and (B, K) -> (B,) (ties count one half; NaN where a side has no weight)."""
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    num = np.einsum("bi,ij,bj->b", w_pos, cmp, w_neg)
    den = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _share(outcome: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted share per replicate: outcome (B, Q) or (Q,) bool, weights (B, Q) -> (B,)."""
    den = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (weights * outcome).sum(axis=1) / np.where(den > 0, den, 1), np.nan)


def recipe_open_set(curves, architectures, recipes, seeds, families, *, false_alarm: float = 0.05, seed: int = 0,
                    n_boot: int = 2000, level: float = 0.95) -> RecipeOpenSet:
    """The open set across recipes (issue 31 item 5): a set from a training recipe the
    references never saw should be attributed to its architecture, not rejected as unknown.

    curves: per set, its (S_i, L) C_T-layer curves of S_i query subsets at one query size
        (C_T units; e.g. ``RecipeAttribution.inputs[m].curves``), or (N, L), one curve per set;
    architectures, recipes, seeds, families: (N,) per set (module doc); the default recipe is
        :data:`DEFAULT_RECIPE`.
    The references are what the fingerprint database holds: default-recipe sets only. Leave
    one seed out: in the fold of seed s the references are the default-recipe sets of every
    other seed, the *known* queries the default-recipe sets of seed s, the *recipe* queries
    every non-default recipe set of seed s (every recipe of seed s trains on seed s's window,
    which no reference saw). Score of a query subset: the distance to the nearest reference
    curve (Euclidean, curve units; :func:`memlib.attribution_eval.open_set_scores`' score),
    its attribution that reference's architecture.

    **Threshold rule, fixed before any number:** per fold, the threshold is the
    ``1 - false_alarm`` quantile (numpy's linear rule) of the fold's *known* query scores, so
    that about ``false_alarm`` of the known queries are rejected; no recipe query takes part in
    it. A query is rejected if its score is above the threshold; an accepted query is right if
    attributed to its own architecture. The unknown-family contrast uses the same rule on each
    open-set fold (left-out family, held-out seed) of the default-recipe sets.

    Shares are of query subsets (every subset counts once). CI: cluster bootstrap whose unit is
    the training run (architecture, recipe, seed) = one set: each replicate redraws the runs
    with replacement within strata (default-recipe runs per seed, so every fold keeps its
    number of known runs; recipe runs per (architecture, recipe)), weights each subset by its
    run's draw count and recomputes everything, the thresholds included; percentile interval
    at ``level`` (:func:`memlib.bootstrap.percentile_ci`). The references stay fixed.
    Returns :class:`RecipeOpenSet`. Raises InputError for mismatched lengths, bad curves, no
    non-default recipe, a default recipe in fewer than 2 seeds, a seed with recipe queries but
    no known query, or a recipe query whose architecture has no reference, and for
    ``false_alarm`` outside (0, 1).
    """
    from .bootstrap import percentile_ci

    architectures, recipes, seeds = _columns(architectures, recipes, seeds)
    families = np.asarray(families)
    if families.shape != architectures.shape:
        raise InputError(f"families must be as long as the other columns; got {families.shape}, {architectures.shape}")
    curves = _per_set_curves(curves, len(architectures))
    if not 0 < false_alarm < 1:
        raise InputError(f"false_alarm must lie in (0, 1), got {false_alarm}")
    default = recipes == DEFAULT_RECIPE
    if default.all():
        raise InputError(f"recipe_open_set: no set of a recipe other than {DEFAULT_RECIPE!r}")
    if len(set(seeds[default].tolist())) < 2:
        raise InputError("recipe_open_set: default-recipe sets of >= 2 seeds are needed (leave one seed out)")
    folds = []
    for s in np.unique(seeds[~default]):
        refs = np.flatnonzero(default & (seeds != s))
        known = np.flatnonzero(default & (seeds == s))
        new = np.flatnonzero(~default & (seeds == s))
        if not known.size:
            raise InputError(f"recipe_open_set: seed {s} has recipe sets but no default-recipe set (no threshold)")
        missing = sorted(set(architectures[new].tolist()) - set(architectures[refs].tolist()))
        if missing:
            raise InputError(f"recipe_open_set: {missing} have no default-recipe reference besides seed {s}")
        folds.append(fp.Fold(s.item() if hasattr(s, "item") else s, refs, known, new))

    rows = []
    for f in folds:
        rc, rl, _ = ae.fold_curves(curves, architectures, f.refs)
        for i in np.concatenate([f.queries, f.unknown]):
            att = fp.attribute(curves[i], rc, rl)
            rows.append(pd.DataFrame(dict(seed=f.held_out, set=i, draw=np.arange(len(curves[i])),
                                          run=f"{architectures[i]}/{recipes[i]}/s{seeds[i]}",
                                          architecture=architectures[i], recipe=recipes[i],
                                          kind="known" if default[i] else "recipe",
                                          score=att.distances.min(axis=1), predicted=att.labels)))
    q = pd.concat(rows, ignore_index=True)
    fold_of = q.seed.to_numpy()
    is_known = (q.kind == "known").to_numpy()
    thr = {f.held_out: float(np.quantile(q.score[is_known & (fold_of == f.held_out)], 1 - false_alarm))
           for f in folds}
    q["threshold"] = q.seed.map(thr)
    rejected = (q.score > q.threshold).to_numpy()
    right = ~rejected & (q.predicted == q.architecture).to_numpy()
    q["outcome"] = np.where(rejected, OUTCOMES[0], np.where(right, OUTCOMES[1], OUTCOMES[2]))
    thresholds = pd.DataFrame([dict(seed=s, threshold=t, n_known=int((is_known & (fold_of == s)).sum()),
                                    known_rejected=float(rejected[is_known & (fold_of == s)].mean()))
                               for s, t in thr.items()])

    # bootstrap: draw counts per training run (= set), within strata
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(default & (seeds == s)) for s in np.unique(seeds[default])]
    strata += [np.flatnonzero((architectures == a) & (recipes == r))
               for a, r in sorted({(a, r) for a, r in zip(architectures[~default], recipes[~default])})]
    counts = _stratum_counts(strata, len(architectures), n_boot, rng)
    set_of = q.set.to_numpy()
    scores = q.score.to_numpy()

    def outcomes(cnt):
        """(B, Q) weights, rejected and right of every query under the run counts ``cnt``."""
        w = cnt[:, set_of]
        t = np.empty_like(w)
        for f in folds:
            sel = is_known & (fold_of == f.held_out)
            t[:, fold_of == f.held_out] = _thresholds(scores[sel], w[:, sel], 1 - false_alarm)[:, None]
        rej = scores[None, :] > t
        return w, rej, ~rej & (q.predicted == q.architecture).to_numpy()[None, :]

    boot_out = outcomes(counts)
    point_out = (np.ones((1, len(q))), rejected[None, :], right[None, :])   # every run once: the table's outcomes
    groups = [("known", ALL, DEFAULT_RECIPE, is_known), ("recipe", ALL, ALL, ~is_known)]
    groups += [("recipe", ALL, r, (q.recipe == r).to_numpy()) for r in sorted(set(recipes[~default].tolist()))]
    groups += [("recipe", a, r, ((q.architecture == a) & (q.recipe == r)).to_numpy())
               for a, r in sorted({(a, r) for a, r in zip(architectures[~default], recipes[~default])})]
    share_rows = []
    for kind, a, r, sel in groups:
        row = dict(kind=kind, architecture=a, recipe=r, n_runs=int(len(set(set_of[sel].tolist()))),
                   n_queries=int(sel.sum()))
        for key, pick in (("rejected", lambda rej, rt: rej), ("right", lambda rej, rt: rt),
                          ("wrong", lambda rej, rt: ~rej & ~rt)):
            w, rej, rt = point_out
            row[key] = float(_share(pick(rej, rt)[:, sel], w[:, sel])[0])
            w, rej, rt = boot_out
            lo, hi = percentile_ci(_share(pick(rej, rt)[:, sel], w[:, sel]), level)
            row[f"{key}_lo"], row[f"{key}_hi"] = float(lo), float(hi)
        if kind == "known":
            row.update(auc=np.nan, auc_lo=np.nan, auc_hi=np.nan)
        else:
            row["auc"] = float(_weighted_auc(scores[sel], scores[is_known], point_out[0][:, sel],
                                             point_out[0][:, is_known])[0])
            lo, hi = percentile_ci(_weighted_auc(scores[sel], scores[is_known], boot_out[0][:, sel],
                                                 boot_out[0][:, is_known]), level)
            row["auc_lo"], row["auc_hi"] = float(lo), float(hi)
        share_rows.append(row)
    shares = pd.DataFrame(share_rows)

    unknown_family, redrawn = _unknown_family_contrast(curves, architectures, seeds, families, default, counts,
                                                       false_alarm, level)
    return RecipeOpenSet(folds, q, thresholds, shares, unknown_family, float(false_alarm), float(level), int(n_boot),
                         redrawn)


def _unknown_family_contrast(curves, architectures, seeds, families, default, counts, false_alarm, level):
    """The rows of ``RecipeOpenSet.unknown_family`` and the count of (replicate, fold) pairs
    left out for lack of known runs (the same run counts as the recipe queries')."""
    from .bootstrap import percentile_ci

    columns = ["left_out", "n_runs", "n_queries", "rejected", "rejected_lo", "rejected_hi", "auc", "auc_lo", "auc_hi"]
    idx = np.flatnonzero(default)
    if len(set(families[idx].tolist())) < 2:
        return pd.DataFrame(columns=columns), 0
    o = ae.open_set_scores([curves[i] for i in idx], architectures[idx], seeds[idx], families[idx])
    set_of = idx[o.set.to_numpy()]          # back to the whole table
    unknown, scores = o.unknown.to_numpy(bool), o.score.to_numpy()
    fold = (o.left_out.astype(str) + "/" + o.seed.astype(str)).to_numpy()

    def rejected(cnt):
        """Weights (B, Q) (0 in a fold without a drawn known run), rejected (B, Q), and how many
        (replicate, fold) pairs had no drawn known run."""
        w = cnt[:, set_of]
        t = np.full(w.shape, np.nan)
        for f in np.unique(fold):
            in_f = fold == f
            t[:, in_f] = _thresholds(scores[in_f & ~unknown], w[:, in_f & ~unknown], 1 - false_alarm)[:, None]
        undefined = np.isnan(t)
        n_undefined = int(undefined[:, np.unique(fold, return_index=True)[1]].sum())
        return np.where(undefined, 0.0, w), scores[None, :] > np.nan_to_num(t, nan=np.inf), n_undefined

    boot_w, boot_rej, redrawn = rejected(counts)
    point_w, point_rej, _ = rejected(np.ones((1, counts.shape[1])))
    rows = []
    for name in [ALL] + sorted(set(o.left_out.tolist())):
        in_g = np.ones(len(o), bool) if name == ALL else (o.left_out == name).to_numpy()
        u, k = in_g & unknown, in_g & ~unknown
        lo, hi = percentile_ci(_share(boot_rej[:, u], boot_w[:, u]), level)
        a_lo, a_hi = percentile_ci(_weighted_auc(scores[u], scores[k], boot_w[:, u], boot_w[:, k]), level)
        rows.append(dict(left_out=name, n_runs=int(len(set(set_of[u].tolist()))), n_queries=int(u.sum()),
                         rejected=float(_share(point_rej[:, u], point_w[:, u])[0]), rejected_lo=float(lo),
                         rejected_hi=float(hi),
                         auc=float(_weighted_auc(scores[u], scores[k], point_w[:, u], point_w[:, k])[0]),
                         auc_lo=float(a_lo), auc_hi=float(a_hi)))
    return pd.DataFrame(rows, columns=columns), redrawn
