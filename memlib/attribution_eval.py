"""How well C_T-layer curves attribute a set to the model that made it (claims 3-4, notebook 04).

The Study v2 evaluation protocol on top of :mod:`memlib.fingerprint`: leave-one-seed-out folds
over a table of generated sets (seeds are independent training runs on disjoint data; fold
leaks are checked by :func:`fold_leaks`), every method applied to the same query subsets with
the same reference samples (:class:`SizeInputs`, :func:`query_predictions`), at two grains
(:data:`GRAINS`: family or architecture labels); accuracy with a cluster-bootstrap interval
(:func:`accuracy_table`); the curve against each baseline group with a paired CI
(:func:`baseline_gap_table`, :func:`paired_gap_ci`); open-set scores and their ROC
(:func:`open_set_scores`, :func:`open_set_roc`); the within- and between-class curve distances
of claim 3 (:func:`family_separation`). The rules that turn these tables into verdicts are in
:mod:`memlib.claims`.

Inputs shared by the functions here, one entry per generated set ``i`` of the table:

- ``labels`` (N,) (a set's family or architecture) and ``seeds`` (N,): its training seed;
- ``curves[i]``: (S_i, L) C_T-layer curves of S_i random subsets of set i, all of one size
  (NaN-free: :func:`size_inputs` sets an undefined layer to 0);
- ``subsets[i]``: the S_i index arrays those curves were computed from, and ``features[i]``:
  (N_i, D) final-layer features of set i (for the feature baselines; optional).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import fingerprint as fp
from .errors import InputError

CURVE_METHOD = "C_T-layer curve"
SHAPE_METHOD = "C_T-layer curve, shape only"
# Stated before the shape-only method's first number (issue 31 point 4): the curve (Euclidean:
# level and shape) is the primary attribution method of claims 4a / 4b; the shape-only curve
# (z-normalised over layers, memlib.fingerprint distance "znorm") is a labelled secondary.
PRIMARY_METHOD, SECONDARY_METHOD = CURVE_METHOD, SHAPE_METHOD
CURVE_METHODS = (CURVE_METHOD, SHAPE_METHOD)   # the methods under test; every other one is a baseline
FINAL_LAYER_METHOD = "final-layer C_T"
BEST_LAYER_METHOD = "best single layer"
FD_METHOD = "Fréchet distance (final layer)"
KNN_METHOD = "k-NN probe (final layer)"
FINAL_NORM_METHOD = "final-layer C_T (final norm)"
# the baselines of the split claim 4b, in tie-breaking order
BASELINE_GROUPS = {"C_T": (FINAL_LAYER_METHOD, FINAL_NORM_METHOD, BEST_LAYER_METHOD),
                   "features": (FD_METHOD, KNN_METHOD)}
GRAINS = ("family", "architecture")


def fold_curves(curves: Sequence[np.ndarray], families: np.ndarray,
                sets: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curves of the given sets stacked -> (curves (S, L), family (S,), set index (S,))."""
    c = [curves[i] for i in sets]
    return (np.concatenate(c), np.concatenate([[families[i]] * len(x) for i, x in zip(sets, c)]),
            np.concatenate([[i] * len(x) for i, x in zip(sets, c)]))


@dataclass(frozen=True)
class SizeInputs:
    """What every method sees of a table of sets at one query size (one entry per set i).

    curves: (S_i, L) C_T-layer curves of set i's subsets (NaN-free);
    subsets: the S_i index arrays (rows of ``features[i]``) those curves were computed from;
    features: (N_i, D) final-layer features of set i (the feature baselines), optional;
    final_norm: (S_i, 1) final-layer C_T of the same subsets on the final-norm embedding
        (dgm-eval's), optional.
    As references, a set contributes exactly the samples of its ``subsets`` to every method
    (:func:`reference_rows`): the curve sees their curves, the Fréchet distance their pooled
    statistics, the k-NN probe their samples (equal information).
    """

    curves: Sequence[np.ndarray]
    subsets: Sequence[Sequence[np.ndarray]]
    features: Sequence[np.ndarray] | None = None
    final_norm: Sequence[np.ndarray] | None = None
    undefined_share: float = 0.0


def size_inputs(reference, distances, subsets, *, features=None, final_norm_reference=None,
                final_norm_distances=None) -> SizeInputs:
    """:class:`SizeInputs` of a table of sets from their per-point distances.

    reference: the fitted :class:`memlib.ct.Reference`; distances: per set its
    ``reference.layer_distances(...)``; subsets: per set its index arrays (one size);
    features: per set (N_i, D) final-layer features; final_norm_reference /
    final_norm_distances: the same for the one-layer final-norm embedding. A layer where a
    subset keeps no cell (a cell needs more than 20 of the subset's points, memlib.ct) has an
    undefined C_T: it becomes 0, "no evidence either way", and ``undefined_share`` counts them.
    """
    raw = [reference.subset_curves(d, s) for d, s in zip(distances, subsets)]
    fn = None
    if final_norm_reference is not None and final_norm_distances is not None:
        fn = [np.nan_to_num(final_norm_reference.subset_curves(d, s), nan=0.0)
              for d, s in zip(final_norm_distances, subsets)]
    return SizeInputs([np.nan_to_num(c, nan=0.0) for c in raw], list(subsets), features, fn,
                      float(np.mean([np.isnan(c).mean() for c in raw])))


def reference_rows(subsets: Sequence[np.ndarray]) -> np.ndarray:
    """The rows a reference set contributes: the sorted union of its subsets' indices."""
    return np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in subsets]))


def leave_one_seed_out(labels, seeds) -> list[fp.Fold]:
    """:func:`memlib.fingerprint.seed_folds` for a table where one label may have several sets
    per seed (the family grain: two architectures of a family share a seed): for each seed s,
    queries = the sets of seed s, references = every other set. Raises InputError if a queried
    label has no reference left."""
    from .errors import InputError

    labels, seeds = np.asarray(labels), np.asarray(seeds)
    if labels.ndim != 1 or labels.shape != seeds.shape or labels.size == 0:
        raise InputError(f"labels and seeds must be 1-D and equally long; got {labels.shape}, {seeds.shape}")
    folds = []
    for s in np.unique(seeds):
        refs, queries = np.flatnonzero(seeds != s), np.flatnonzero(seeds == s)
        missing = set(labels[queries].tolist()) - set(labels[refs].tolist())
        if missing:
            raise InputError(f"{sorted(missing)} have no set besides seed {s!r}; leave-one-seed-out needs >= 2 seeds")
        folds.append(fp.Fold(s.item() if hasattr(s, "item") else s, refs, queries, np.array([], dtype=int)))
    return folds


def query_predictions(labels, seeds, refs: SizeInputs, queries: SizeInputs | None = None, *,
                      k: int = 5, folds: Sequence[fp.Fold] | None = None) -> pd.DataFrame:
    """Every method's attribution of every query subset, leave one seed out.

    labels (N,): each set's class at the grain being tested (family or architecture); seeds
    (N,): its training seed (sets of one seed share nothing with other seeds' training data).
    refs: the clean inputs at one query size; queries: what is attributed, the same sets
    (e.g. corrupted, at the same size), default ``refs``. In the fold of seed s the queries are
    the subsets of the seed-s sets and the references everything with another seed.
    Methods: the whole curve (1-NN, :func:`memlib.fingerprint.attribute`), its shape only
    (the same 1-NN on curves z-normalised over layers, the secondary), its final layer, the
    best single layer (chosen on the references, sets as groups), with ``final_norm`` the
    final-layer C_T on the final-norm embedding, with ``features`` the Fréchet distance of each
    query subset to each reference set's pooled :func:`reference_rows` and the majority vote of
    a ``k``-NN probe trained on those rows.
    ``folds``: other folds over the same table instead of leave-one-seed-out (e.g.
    :func:`memlib.recipe_eval.cross_recipe_folds`); ``fold`` is then each fold's ``held_out``.
    Returns one row per (fold, set, draw, method): fold, set (index into the table), draw,
    method, true, pred. Several labellings of the same table: :func:`query_predictions_by_grain`.
    """
    return query_predictions_by_grain({"": labels}, seeds, refs, queries, k=k, folds=folds)[""]


def query_predictions_by_grain(labels: Mapping[str, np.ndarray], seeds, refs: SizeInputs,
                               queries: SizeInputs | None = None, *, k: int = 5,
                               folds: Sequence[fp.Fold] | None = None) -> dict[str, pd.DataFrame]:
    """:func:`query_predictions` for several labellings of one table at once ({grain: (N,)
    labels}, e.g. family and architecture), on the same folds; {grain: its rows}, each equal to
    ``query_predictions(labels[grain], ...)``.

    What does not depend on labels is computed once per fold for every grain: the Fréchet
    distance of each query subset to each reference set (:func:`memlib.fingerprint.fd_matrix`)
    and each query sample's k nearest reference samples
    (:func:`memlib.fingerprint.probe_neighbour_counts`), the two dearest methods.
    """
    seeds = np.asarray(seeds)
    labels = {g: np.asarray(y) for g, y in labels.items()}
    if not labels:
        raise InputError("query_predictions_by_grain: no labels")
    if folds is None:   # leave one seed out; its folds depend on the seeds only (each grain checked)
        folds = [leave_one_seed_out(y, seeds) for y in labels.values()][0]
    q = queries or refs
    rows: dict[str, list] = {g: [] for g in labels}
    for fold in folds:
        draw = np.concatenate([np.arange(len(q.curves[i])) for i in fold.queries])
        shared = {}
        if refs.features is not None and q.features is not None:
            pooled = [refs.features[i][reference_rows(refs.subsets[i])] for i in fold.refs]
            shared["fd"] = fp.fd_matrix([q.features[i][s] for i in fold.queries for s in q.subsets[i]], pooled)
            shared["knn"] = [fp.probe_neighbour_counts(q.features[i], pooled, k=k) for i in fold.queries]
        for grain, y in labels.items():
            rc, rl, rg = fold_curves(refs.curves, y, fold.refs)
            qc, ql, qg = fold_curves(q.curves, y, fold.queries)
            preds = {CURVE_METHOD: fp.attribute(qc, rc, rl).labels,
                     SHAPE_METHOD: fp.attribute(qc, rc, rl, distance="znorm").labels,
                     FINAL_LAYER_METHOD: fp.attribute(qc, rc, rl, layers=[-1]).labels,
                     BEST_LAYER_METHOD: fp.best_layer_attribute(qc, rc, rl, groups=rg)[0].labels}
            if refs.final_norm is not None and q.final_norm is not None:
                preds[FINAL_NORM_METHOD] = fp.attribute(fold_curves(q.final_norm, y, fold.queries)[0],
                                                        fold_curves(refs.final_norm, y, fold.refs)[0], rl).labels
            if shared:
                preds[FD_METHOD] = fp.nearest_label(shared["fd"], y[fold.refs]).labels
                preds[KNN_METHOD] = np.concatenate([
                    fp.vote(fp.probe_labels_from_counts(counts, y[fold.refs]), q.subsets[i])
                    for i, counts in zip(fold.queries, shared["knn"])])
            for method, pred in preds.items():
                rows[grain].append(pd.DataFrame(dict(fold=fold.held_out, set=qg, draw=draw, method=method,
                                                     true=ql, pred=pred)))
    return {g: pd.concat(r, ignore_index=True) for g, r in rows.items()}


def accuracy_table(predictions: pd.DataFrame, keys: Sequence[str] = (), *, seed: int,
                   level: float = 0.95) -> pd.DataFrame:
    """Accuracy of every method per group of ``keys`` (e.g. grain, corruption, query_size),
    with a cluster-bootstrap CI over the query sets (subsets of one set are not independent).

    predictions: rows of :func:`query_predictions` plus the ``keys`` columns.
    Returns keys…, method, accuracy, acc_lo, acc_hi, n_queries (groups in order of appearance).
    """
    out = []
    for key, g in predictions.groupby(list(keys) + ["method"], sort=False):
        acc, lo, hi = fp.accuracy_ci((g.true == g.pred).to_numpy(), method="bootstrap",
                                     groups=g.set.to_numpy(), seed=seed, alpha=1 - level)
        out.append(dict(zip(list(keys) + ["method"], key), accuracy=acc, acc_lo=lo, acc_hi=hi,
                        n_queries=len(g)))
    return pd.DataFrame(out)


def baseline_gap_table(predictions: pd.DataFrame, keys: Sequence[str] = (), *, seed: int,
                       level: float = 0.95, n_boot: int = 2000, curve_method: str = CURVE_METHOD) -> pd.DataFrame:
    """The curve against each baseline group, per group of ``keys``, with paired CIs.

    ``curve_method``: the method under test (default the primary; :data:`SHAPE_METHOD` for
    the secondary); the columns ``curve`` and ``gap`` are then its.

    For each group of baselines in :data:`BASELINE_GROUPS` that is present, the best baseline
    is the one of highest accuracy on these queries (ties: the first in the group's order; the
    choice is made on the same queries, which favours the baseline) and the gap is curve minus
    that baseline on the same queries (:func:`paired_gap_ci`, query sets as clusters).
    Returns keys…, baselines (``C_T`` | ``features``), best_baseline, curve, baseline, gap,
    gap_lo, gap_hi (accuracy points) and relative (curve / baseline − 1, the relative reading
    of "+30 %").
    """
    out = []
    key_cols = list(keys)
    for key, g in (predictions.groupby(key_cols, sort=False) if key_cols else [((), predictions)]):
        key = key if isinstance(key, tuple) else (key,)
        wide = g.assign(correct=g.true == g.pred).pivot_table(
            index=["fold", "set", "draw"], columns="method", values="correct", aggfunc="first")
        if curve_method not in wide:
            continue
        for group, methods in BASELINE_GROUPS.items():
            present = [m for m in methods if m in wide]
            if not present:
                continue
            best = max(present, key=lambda m: (wide[m].mean(), -present.index(m)))
            a, b = wide[curve_method].to_numpy(bool), wide[best].to_numpy(bool)
            gap, lo, hi = paired_gap_ci(a, b, wide.index.get_level_values("set").to_numpy(),
                                        level=level, n_boot=n_boot, seed=seed)
            base = float(b.mean())
            out.append(dict(zip(key_cols, key), baselines=group, best_baseline=best,
                            curve=float(a.mean()), baseline=base, gap=gap, gap_lo=lo, gap_hi=hi,
                            relative=float(a.mean() / base - 1) if base > 0 else float("nan")))
    return pd.DataFrame(out)


def close_pairs(score_by_class: dict, tolerance: float = 0.1) -> list[tuple[str, str, float]]:
    """Pairs of classes whose scores (e.g. mean Fréchet distance to the test set) differ by
    less than ``tolerance`` relative to the larger: [(a, b, relative difference)], a < b,
    closest first. Models this alike in quality are where a quality-blind fingerprint must work."""
    names = sorted(score_by_class)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x, y = float(score_by_class[a]), float(score_by_class[b])
            rel = abs(x - y) / max(abs(x), abs(y)) if max(abs(x), abs(y)) > 0 else 0.0
            if rel < tolerance:
                out.append((a, b, rel))
    return sorted(out, key=lambda t: t[2])


def pair_accuracy(predictions: pd.DataFrame, pairs, keys: Sequence[str] = ()) -> pd.DataFrame:
    """How well each method tells the two classes of each pair apart: among the queries of
    either class that were attributed to one of the two, the share attributed to the right one.

    predictions: :func:`query_predictions` rows (plus ``keys`` columns); pairs: (a, b, ...) tuples.
    Returns keys…, pair ("a | b"), method, accuracy, n_queries (NaN accuracy when none).
    """
    rows = []
    for a, b, *_ in pairs:
        d = predictions[predictions.true.isin([a, b]) & predictions.pred.isin([a, b])]
        for key, g in d.groupby(list(keys) + ["method"], sort=False):
            key = key if isinstance(key, tuple) else (key,)
            rows.append(dict(zip(list(keys) + ["method"], key), pair=f"{a} | {b}",
                             accuracy=float((g.true == g.pred).mean()), n_queries=len(g)))
    return pd.DataFrame(rows, columns=list(keys) + ["method", "pair", "accuracy", "n_queries"])


def open_set_scores(curves: Sequence[np.ndarray], labels, seeds, families=None) -> pd.DataFrame:
    """The nearest-reference distance of every query of every open-set fold, for a ROC curve.

    curves: per set, its (S_i, L) subset curves at one size; labels (N,): the class each
    reference is attributed to; families (N,): what is left out of the references (default
    ``labels``: a left-out family takes all its architectures with it). One fold per
    (left-out family, held-out seed), as :func:`memlib.fingerprint.open_set_folds` but with
    several sets (architectures) per (family, seed).
    Returns one row per query subset: left_out, seed, set, unknown (bool), score (curve units).
    """
    labels, seeds = np.asarray(labels), np.asarray(seeds)
    families = labels if families is None else np.asarray(families)
    rows = []
    for f in np.unique(families):
        for s in np.unique(seeds):
            refs = np.flatnonzero((families != f) & (seeds != s))
            known = np.flatnonzero((families != f) & (seeds == s))
            if not (refs.size and known.size):
                continue
            rc, rl, _ = fold_curves(curves, labels, refs)
            for i in np.concatenate([known, np.flatnonzero(families == f)]):
                score = fp.attribute(curves[i], rc, rl).distances.min(axis=1)
                rows.append(pd.DataFrame(dict(left_out=f, seed=s, set=i, unknown=bool(families[i] == f),
                                              score=score)))
    return pd.concat(rows, ignore_index=True)


def family_separation(full_curves, families, distance: str = "euclidean") -> pd.DataFrame:
    """Claim 3 in numbers: is each family's curve closer to its own other seeds than to others?

    full_curves: (N, L) one full-set curve per set; families: (N,) (or architectures);
    distance: of :func:`memlib.fingerprint.curve_distances` (``euclidean``: level and shape,
    claim 3's primary; ``znorm``: shape only).
    Returns one row per family (sorted): within (mean Euclidean distance between two different
    sets of the family; NaN for a family with one set), nearest_other (mean over the family's
    sets of the distance to the nearest set of another family) and separated (within <
    nearest_other).
    """
    full_curves, families = np.asarray(full_curves, float), np.asarray(families)
    d = fp.curve_distances(full_curves, full_curves, distance)
    off = ~np.eye(len(full_curves), dtype=bool)
    rows = []
    for f in sorted(set(families)):
        i = families == f
        rows.append(dict(family=f, within=d[np.ix_(i, i)][off[np.ix_(i, i)]].mean(),
                         nearest_other=d[np.ix_(i, ~i)].min(axis=1).mean()))
    signature = pd.DataFrame(rows)
    signature["separated"] = signature.within < signature.nearest_other
    return signature


# --------------------------------------------------------------------------- Study v3: the training run as unit


@dataclass(frozen=True)
class RunBootstrap:
    """Leave-one-seed-out 1-NN accuracy of whole-set curves with a CI whose unit is the training
    run (:func:`run_bootstrap_accuracy`).

    accuracy: on the table as it is; lo, hi: percentile interval of ``boot`` at ``level``
    (widened to contain ``accuracy``, as :func:`memlib.fingerprint.accuracy_ci`); boot: (n_boot,)
    replicate accuracies; unscored: mean share of a replicate's drawn runs that could not be
    queried (their label drew one run only); redrawn: replicates drawn again because no drawn
    run could be queried.
    """

    accuracy: float
    lo: float
    hi: float
    level: float
    boot: np.ndarray
    unscored: float = 0.0
    redrawn: int = 0


def _nearest_label_correct(d: np.ndarray, row_set: np.ndarray, seeds: np.ndarray, present: np.ndarray,
                           label_ids: np.ndarray, n_labels: int) -> np.ndarray:
    """Per set i: the share of its query curves (rows of d (C, C), curve r of set row_set[r])
    whose nearest curve of a *present* set of another seed has its label. Per label the nearest
    reference is taken, then the nearest label, ties to the first label in sorted order (as
    :func:`memlib.fingerprint.attribute`). -1 where set i has no present reference of its own
    label. Returns (N,)."""
    s_seed, s_label = seeds[row_set], label_ids[row_set]
    masked = np.where(present[row_set][None, :] & (s_seed[:, None] != s_seed[None, :]), d, np.inf)
    per_label = np.stack([masked[:, s_label == k].min(axis=1) for k in range(n_labels)], axis=1)
    right = (per_label.argmin(axis=1) == s_label).astype(float)
    right[~np.isfinite(per_label[np.arange(len(d)), s_label])] = np.nan
    share = np.bincount(row_set, weights=right, minlength=len(seeds)) / np.bincount(row_set, minlength=len(seeds))
    return np.where(np.isnan(share), -1.0, share)


def run_bootstrap_accuracy(full_curves, labels, seeds, *, distance: str = "euclidean", n_boot: int = 2000,
                           seed: int = 0, level: float = 0.95) -> RunBootstrap:
    """Claims 3-4a's whole-set accuracy with an interval whose unit is the training run,
    references included.

    full_curves: (N, L) one whole-set C_T-layer curve per set (one set = one training run), or per set
    its (S_i, L) subset curves at one size (a set's accuracy is then its subsets' share, as in
    :func:`accuracy_table` with equal S_i); NaN-free; labels (N,): its class (the architecture); seeds (N,): its training seed (sets of one seed
    share a data window); distance: of :func:`memlib.fingerprint.curve_distances`.
    The accuracy is that of the leave-one-seed-out 1-NN: each set is attributed to the label of
    the nearest set of another seed (the curve method of :func:`query_predictions` at the
    whole-set size). A re-run of the study retrains every model, so it changes the queries *and*
    the references; the cluster bootstrap over query sets (:func:`accuracy_table`) holds the
    references fixed. Here each replicate redraws, with replacement, as many training runs of
    every label as it has, from that label's own runs, and attributes every drawn run (a run
    drawn twice counts twice) against the other drawn runs of another seed (a run drawn twice
    is one reference: 1-NN does not see duplicates). A drawn run whose label drew no other run
    has nothing of its own to be attributed to: it is left out of that replicate's queries
    (``unscored``) and stays a reference for the others; a replicate with no query left is
    drawn again (``redrawn``). Percentile interval at ``level``.
    Raises InputError on bad shapes, non-finite curves or a label with runs of one seed.
    """
    per_set = ([c[None, :] for c in np.asarray(full_curves, float)] if isinstance(full_curves, np.ndarray)
               else [np.atleast_2d(np.asarray(c, float)) for c in full_curves])
    labels, seeds = np.asarray(labels), np.asarray(seeds)
    if (len(per_set) != len(labels) or labels.shape != seeds.shape or len(labels) < 2
            or any(c.ndim != 2 or c.shape[1] != per_set[0].shape[1] or not len(c) for c in per_set)):
        raise InputError(f"run_bootstrap_accuracy: need one (S_i, L) block of curves per set, N = len(labels) = "
                         f"len(seeds) >= 2; got {len(per_set)} blocks, {labels.shape}, {seeds.shape}")
    curves = np.concatenate(per_set)
    row_set = np.repeat(np.arange(len(per_set)), [len(c) for c in per_set])
    if not np.isfinite(curves).all():
        raise InputError("run_bootstrap_accuracy: curves must be finite (size_inputs sets undefined layers to 0)")
    names, label_ids = np.unique(labels, return_inverse=True)
    strata = [np.flatnonzero(label_ids == k) for k in range(len(names))]
    thin = [str(names[k]) for k, s in enumerate(strata) if len(np.unique(seeds[s])) < 2]
    if thin:
        raise InputError(f"run_bootstrap_accuracy: {thin} have runs of one seed only; leave-one-seed-out needs >= 2")
    d = fp.curve_distances(curves, curves, distance)
    accuracy = float(_nearest_label_correct(d, row_set, seeds, np.ones(len(labels), bool), label_ids, len(names)).mean())
    rng = np.random.default_rng(seed)
    boot, unscored = np.empty(n_boot), np.empty(n_boot)
    b = redrawn = 0
    while b < n_boot:
        weight = np.bincount(np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata]),
                             minlength=len(labels))
        correct = _nearest_label_correct(d, row_set, seeds, weight > 0, label_ids, len(names))
        scored = weight * (correct >= 0)
        if not scored.any():
            redrawn += 1
            if redrawn > 10 * n_boot:
                raise InputError("run_bootstrap_accuracy: almost no replicate keeps two runs of any label")
            continue
        boot[b] = (scored * correct).sum() / scored.sum()
        unscored[b] = 1 - scored.sum() / weight.sum()
        b += 1
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return RunBootstrap(accuracy, float(min(lo, accuracy)), float(max(hi, accuracy)), level, boot,
                        float(unscored.mean()), redrawn)


# --------------------------------------------------------------------------- Study v2 statistics


def paired_gap_ci(correct_a, correct_b, groups, *, level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of method A minus method B on the same queries, with a paired cluster-bootstrap
    CI -> (gap, lo, hi), in accuracy points (−1 … 1).

    correct_a, correct_b: (Q,) bool, whether each method attributed query q correctly (the same
    queries, in the same order); groups: (Q,) the query set each query subset came from. Each
    draw resamples whole query sets and scores both methods on that one resample, so what the
    two methods share (an easy set, a hard set) cancels in the gap.
    """
    from .errors import InputError

    a, b, g = np.asarray(correct_a), np.asarray(correct_b), np.asarray(groups)
    if a.ndim != 1 or a.shape != b.shape or a.shape != g.shape or a.size == 0:
        raise InputError(f"paired_gap_ci: correct_a, correct_b and groups must be equally long 1-D "
                         f"arrays; got {a.shape}, {b.shape}, {g.shape}")
    if not (np.isin(a, [0, 1]).all() and np.isin(b, [0, 1]).all()):
        raise InputError("paired_gap_ci: correct_a and correct_b must be bool")
    _, inv = np.unique(g, return_inverse=True)
    sizes = np.bincount(inv).astype(float)
    diff = np.bincount(inv, weights=a.astype(float) - b.astype(float))
    draw = np.random.default_rng(seed).integers(0, len(sizes), size=(n_boot, len(sizes)))
    boot = diff[draw].sum(axis=1) / sizes[draw].sum(axis=1)
    gap = float(diff.sum() / sizes.sum())
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return gap, float(min(lo, gap)), float(max(hi, gap))


def fold_leaks(fold: fp.Fold, train_data: Sequence[str], models: Sequence[str] | None = None) -> list[str]:
    """What a fold's references share with its queries: one line per reference set whose
    training data (``train_data[i]``, e.g. ``fashion-mnist:train[0:10000]``) or model
    (``models[i]``, optional) is also a query's. Empty when the fold tests re-training, not
    re-sampling; with the v1 zoo (every seed on the same 10,000 images) nothing is empty."""
    query_data = {train_data[i] for i in fold.queries}
    query_models = {models[i] for i in fold.queries} if models is not None else set()
    leaks = []
    for i in fold.refs:
        if train_data[i] in query_data:
            leaks.append(f"reference set {i} trains on {train_data[i]}, as a query does")
        if models is not None and models[i] in query_models:
            leaks.append(f"reference set {i} is model {models[i]}, which is also queried")
    return leaks


def open_set_roc(scores, unknown) -> pd.DataFrame:
    """The ROC curve of rejecting unknown-architecture queries by their nearest-reference
    distance (``fp.OpenSet.scores``): columns threshold, false_reject (known queries rejected),
    true_reject (unknown queries rejected), and in ``attrs['auc']`` the area under it."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from .errors import InputError

    u = np.asarray(unknown, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if u.shape != s.shape or u.all() or not u.any():
        raise InputError("open_set_roc: need (Q,) scores and (Q,) unknown with both kinds of query")
    fpr, tpr, thresholds = roc_curve(u, s)
    table = pd.DataFrame({"threshold": thresholds, "false_reject": fpr, "true_reject": tpr})
    table.attrs["auc"] = float(roc_auc_score(u, s))
    return table
