"""How well C_T-layer curves attribute a set to its architecture (claims 3-4, notebook 04).

The evaluation protocol on top of :mod:`memlib.fingerprint`: leave-one-seed-out folds over a
table of generated sets, every method applied to every fold's queries, accuracy with a
cluster-bootstrap interval; open-set rejection of a family left out of the references; the
within- and between-family curve distances of claim 3. The rules that turn these tables into
verdicts are in :mod:`memlib.claims`.

Inputs shared by the functions here, one entry per generated set ``i`` of the table:

- ``families`` (N,) and ``seeds`` (N,): the set's architecture and training seed;
- ``curves[i]``: (S_i, L) C_T-layer curves of S_i random subsets of set i, all of one size
  (NaN-free: the caller decides what an undefined layer becomes);
- ``subsets[i]``: the S_i index arrays those curves were computed from, and ``features[i]``:
  (N_i, D) final-layer features of set i (for the feature baselines; optional).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import fingerprint as fp

CURVE_METHOD = "C_T-layer curve"
FINAL_LAYER_METHOD = "final-layer C_T"
BEST_LAYER_METHOD = "best single layer"
FD_METHOD = "Fréchet distance (final layer)"
KNN_METHOD = "k-NN probe (final layer)"


def fold_curves(curves: Sequence[np.ndarray], families: np.ndarray,
                sets: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curves of the given sets stacked -> (curves (S, L), family (S,), set index (S,))."""
    c = [curves[i] for i in sets]
    return (np.concatenate(c), np.concatenate([[families[i]] * len(x) for i, x in zip(sets, c)]),
            np.concatenate([[i] * len(x) for i, x in zip(sets, c)]))


def fold_predictions(curves: Sequence[np.ndarray], families: np.ndarray, fold: fp.Fold, *,
                     subsets: Sequence[Sequence[np.ndarray]] | None = None,
                     features: Sequence[np.ndarray] | None = None,
                     sample_labels: Mapping[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each method's predicted family of every query curve of one fold -> {method: (Q,)}.

    Queries are the curves of ``fold.queries`` in order (as :func:`fold_curves`). Methods:
    the whole curve (:func:`memlib.fingerprint.attribute`), its final layer, the best single
    layer chosen on the references with their sets as groups; with ``subsets`` and
    ``features``, also the Fréchet distance of each query subset's features to each reference
    set's first subset, and the k-NN probe's vote over each query subset (``sample_labels``:
    per-sample k-NN labels of each query set for this fold, computed here when not given).
    """
    rc, rl, rg = fold_curves(curves, families, fold.refs)
    qc, _, _ = fold_curves(curves, families, fold.queries)
    preds = {CURVE_METHOD: fp.attribute(qc, rc, rl).labels,
             FINAL_LAYER_METHOD: fp.attribute(qc, rc, rl, layers=[-1]).labels,
             BEST_LAYER_METHOD: fp.best_layer_attribute(qc, rc, rl, groups=rg)[0].labels}
    if subsets is not None and features is not None:
        q_sub = [(i, s) for i in fold.queries for s in subsets[i]]
        ref_fd = [features[i][subsets[i][0]] for i in fold.refs]
        preds[FD_METHOD] = fp.fd_attribute([features[i][s] for i, s in q_sub], ref_fd,
                                           families[fold.refs]).labels
        if sample_labels is None:
            sample_labels = knn_sample_labels(features, families, fold)
        preds[KNN_METHOD] = np.concatenate([fp.vote(sample_labels[i], subsets[i]) for i in fold.queries])
    return preds


def knn_sample_labels(features: Sequence[np.ndarray], families: np.ndarray,
                      fold: fp.Fold) -> dict[int, np.ndarray]:
    """The k-NN probe's family of every sample of each query set of a fold, trained on the
    fold's reference sets: {query set: (N_i,)} (it does not depend on the query size)."""
    return {i: fp.probe_sample_labels(features[i], [features[j] for j in fold.refs], families[fold.refs])
            for i in fold.queries}


def attribution_accuracy(curves: Mapping[int, Sequence[np.ndarray]], families, seeds, *, seed: int,
                         subsets: Mapping[int, Sequence[Sequence[np.ndarray]]] | None = None,
                         features: Sequence[np.ndarray] | None = None,
                         progress: bool = False, desc: str = "attribution") -> tuple[pd.DataFrame, dict]:
    """Leave-one-seed-out attribution accuracy of every method at every query size.

    curves: {query size n: per set, (S_i, L) curves of its size-n subsets}, sizes in the order
        the rows should follow. subsets / features: {n: per set, the S_i index arrays} and per
        set (N_i, D) final-layer features; give both to add the two feature baselines.
    seed: of the cluster bootstrap (:func:`memlib.fingerprint.accuracy_ci` over the query sets:
        subsets of one set are not independent).
    Returns (table with one row per (n, method): method, query_size, accuracy, acc_lo, acc_hi,
    n_queries; {method: (true (Q,), predicted (Q,))} at the last size, for confusion matrices).
    """
    families, seeds = np.asarray(families), np.asarray(seeds)
    folds = fp.seed_folds(families, seeds)
    with_features = subsets is not None and features is not None
    knn = {}   # per fold: the k-NN probe's sample labels, the same at every size
    sizes = list(curves)
    rows, confusions = [], {}
    for n in tqdm(sizes, desc=desc, disable=not progress):
        results = {}
        for f, fold in enumerate(folds):
            _, ql, qg = fold_curves(curves[n], families, fold.queries)
            if with_features and f not in knn:
                knn[f] = knn_sample_labels(features, families, fold)
            preds = fold_predictions(curves[n], families, fold, subsets=subsets[n] if with_features else None,
                                     features=features, sample_labels=knn.get(f))
            for method, pred in preds.items():
                r = results.setdefault(method, {"true": [], "pred": [], "group": []})
                r["true"].append(ql)
                r["pred"].append(pred)
                r["group"].append(qg)
        for method, r in results.items():
            true, pred, group = (np.concatenate(r[x]) for x in ("true", "pred", "group"))
            acc, lo, hi = fp.accuracy_ci(true == pred, method="bootstrap", groups=group, seed=seed)
            rows.append(dict(method=method, query_size=n, accuracy=acc, acc_lo=lo, acc_hi=hi,
                             n_queries=len(true)))
            if n == sizes[-1]:
                confusions[method] = (true, pred)
    return pd.DataFrame(rows), confusions


def open_set_table(curves: Sequence[np.ndarray], families, seeds) -> pd.DataFrame:
    """Open-set rejection for each fold of :func:`memlib.fingerprint.open_set_folds`.

    curves: per set, its (S_i, L) subset curves at one size. In each fold one family is left
    out of the references (every seed of it is queried as unknown) and one seed of the others
    is held out (queried as known); :func:`memlib.fingerprint.open_set` calibrates the
    rejection distance on the references (leave-one-set-out).
    Returns one row per fold: left_out, seed, auroc, reject_unknown, reject_known.
    """
    families, seeds = np.asarray(families), np.asarray(seeds)
    rows = []
    for fold in fp.open_set_folds(families, seeds):
        rc, rl, rg = fold_curves(curves, families, fold.refs)
        q_idx = np.concatenate([fold.queries, fold.unknown])
        qc = np.concatenate([curves[i] for i in q_idx])
        unknown = np.concatenate([[i in set(fold.unknown)] * len(curves[i]) for i in q_idx])
        res = fp.open_set(qc, unknown, rc, rl, groups=rg)
        rows.append(dict(left_out=fold.held_out[0], seed=fold.held_out[1], auroc=res.auroc,
                         reject_unknown=res.reject_unknown, reject_known=res.reject_known))
    return pd.DataFrame(rows)


def family_separation(full_curves, families) -> pd.DataFrame:
    """Claim 3 in numbers: is each family's curve closer to its own other seeds than to others?

    full_curves: (N, L) one full-set curve per set; families: (N,).
    Returns one row per family (sorted): within (mean Euclidean distance between two different
    sets of the family; NaN for a family with one set), nearest_other (mean over the family's
    sets of the distance to the nearest set of another family) and separated (within <
    nearest_other).
    """
    full_curves, families = np.asarray(full_curves, float), np.asarray(families)
    d = fp.curve_distances(full_curves, full_curves)
    off = ~np.eye(len(full_curves), dtype=bool)
    rows = []
    for f in sorted(set(families)):
        i = families == f
        rows.append(dict(family=f, within=d[np.ix_(i, i)][off[np.ix_(i, i)]].mean(),
                         nearest_other=d[np.ix_(i, ~i)].min(axis=1).mean()))
    signature = pd.DataFrame(rows)
    signature["separated"] = signature.within < signature.nearest_other
    return signature


# --------------------------------------------------------------------------- Study v2 statistics
# (groundwork for claims 3-4 of Study v2, docs/design.md; not yet used by notebook 04)


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
