"""C_T-layer curves as fingerprints of generative architectures (claims 3-4 of arXiv 2407.21159).

Everything here works on plain arrays; the notebooks compute features and curves and pass
them in. Conventions used throughout:

- a *curve* is one C_T value per encoder layer, shape ``(L,)``; a stack of curves is ``(S, L)``
  (dimensionless, Meehan's sign: < 0 data copying, > 0 under-fitting);
- a *set* is one generated sample set, identified by its (family, seed); queries are random
  subsets of a held-out set, references are curves of the other seeds of every family;
- labels are any sortable scalars (architecture names); ``families`` is always
  ``np.unique(ref_labels)`` (sorted), and per-family columns follow that order.

Size matters. C_T is a z-score: for one cell with a fixed effect (AUC - 1/2 = d),
Z_U ~ d * sqrt(12 n m / (n + m + 1)), while under H0 it is ~N(0, 1) at every size. With
n = 2,000 test points, a query of m = 100 samples therefore has ~3x smaller |C_T| than a
full set of m = 2,000, plus the same unit noise. Matching a small query against full-size
reference curves with a raw distance mostly measures this size effect. The principled fix,
and the protocol this module is built for, is to compute every reference curve at the
query's size: draw subsets of size m from each reference set (:func:`subsample_indices`) and
compute their curves cheaply (:meth:`memlib.ct.Reference.subset_curves`).
Hence the default ``distance="euclidean"`` (raw curves: level *and* shape, the most
information) *with size-matched references*. Where references cannot be size-matched, use
``"cosine"`` (divides each curve by its norm: removes the common size factor, keeps the sign,
which is meaningful for C_T). ``"znorm"`` (shape only; also removes the offset) and
``"correlation"`` (1 - Pearson r; ranks exactly as ``"znorm"``, since
||z_a - z_b||^2 = 2 L (1 - r)) amplify noise on flat curves (e.g. exact copies sit at C_T's
floor at every layer), so they are options, not the default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, NamedTuple

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import cdist, squareform

from .errors import InputError
from .metrics import feature_array as _feats, feature_stats, frechet_distance, sqrt_psd

DISTANCES = ("euclidean", "cosine", "znorm", "correlation")
RULES = ("nearest", "centroid")


class Attribution(NamedTuple):
    """Result of an attribution.

    labels: (Q,) predicted family of each query.
    distances: (Q, F) distance of each query to each family (smaller = closer); for
        ``rule="nearest"`` the distance to that family's nearest reference, for
        ``"centroid"`` to its mean curve; for :func:`fd_attribute` the smallest FD.
    families: (F,) the family of each column, sorted (``np.unique(ref_labels)``).
    """

    labels: np.ndarray
    distances: np.ndarray
    families: np.ndarray


# --------------------------------------------------------------------------- curve distances


def _curves(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name}: expected a non-empty (n_curves, n_layers) array, "
                         f"got shape {np.shape(x)}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"{name}: curve(s) {np.flatnonzero(bad)[:10].tolist()} contain NaN/inf "
                         f"(e.g. no C_T cell kept at this size); drop them or use larger sets")
    return arr


def _prepare(x: np.ndarray, distance: str) -> np.ndarray:
    """Transform curves (S, L) so that a Euclidean/dot product gives ``distance``."""
    if distance == "euclidean":
        return x
    if distance == "cosine":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    if distance in ("znorm", "correlation"):
        if x.shape[1] < 2:
            raise InputError(f"distance={distance!r} needs at least 2 layers (got 1); "
                             f"use 'euclidean' for single-layer attribution")
        centred = x - x.mean(axis=1, keepdims=True)
        std = centred.std(axis=1, keepdims=True)
        return np.divide(centred, std, out=np.zeros_like(x), where=std > 0)
    raise InputError(f"unknown distance {distance!r}; choose one of {DISTANCES}")


def curve_distances(a, b, distance: str = "euclidean") -> np.ndarray:
    """Distances between every curve of ``a`` (Q, L) and every curve of ``b`` (R, L) -> (Q, R).

    - ``"euclidean"``: ||a - b|| on raw curves (C_T units). Needs size-matched curves.
    - ``"cosine"``: ||a/|a| - b/|b||| (in [0, 2]); invariant to a positive scale factor.
    - ``"znorm"``: Euclidean after z-normalising each curve over layers (shape only;
      invariant to offset and positive scale); a constant curve maps to zeros.
    - ``"correlation"``: 1 - Pearson r over layers (in [0, 2]); same ranking as ``"znorm"``.
    """
    a, b = _curves(a, "query curves"), _curves(b, "reference curves")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"query curves have {a.shape[1]} layers but reference curves "
                         f"{b.shape[1]}; compute both with the same encoder layers")
    pa, pb = _prepare(a, distance), _prepare(b, distance)
    if distance == "correlation":
        return 1.0 - pa @ pb.T / a.shape[1]
    return cdist(pa, pb, "euclidean")


def _select_layers(x: np.ndarray, layers) -> np.ndarray:
    if layers is None:
        return x
    idx = np.atleast_1d(np.asarray(layers, dtype=int))
    n = x.shape[1]
    if idx.size == 0 or (idx >= n).any() or (idx < -n).any():
        raise InputError(f"layers={list(idx)} out of range for curves with {n} layers")
    return x[:, idx]


# --------------------------------------------------------------------------- attribution


def attribute(query_curves, ref_curves, ref_labels, *, distance: str = "euclidean",
              rule: str = "nearest", layers=None) -> Attribution:
    """Attribute each query curve to the family of the closest reference.

    query_curves: (Q, L) C_T-layer curves of the query sets.
    ref_curves: (R, L) reference curves; compute them at the queries' sample size (module doc).
    ref_labels: (R,) family of each reference.
    distance: one of ``DISTANCES`` (see :func:`curve_distances`); default ``"euclidean"``.
    rule: ``"nearest"`` (1-NN: the family of the nearest single reference curve, as in the
        paper's "nearest reference curve") or ``"centroid"`` (the nearest family mean curve;
        averages seed noise away when each family has several references).
    layers: optional sequence of layer indices to use (e.g. ``[-1]`` for the final-layer
        C_T baseline, ``[k]`` for a single layer); default all.
    Ties go to the first family in sorted order.
    """
    if rule not in RULES:
        raise InputError(f"unknown rule {rule!r}; choose one of {RULES}")
    q = _select_layers(_curves(query_curves, "query curves"), layers)
    r = _select_layers(_curves(ref_curves, "reference curves"), layers)
    labels = np.asarray(ref_labels)
    if labels.shape != (r.shape[0],):
        raise InputError(f"ref_labels has shape {labels.shape} but there are {r.shape[0]} "
                         f"reference curves")
    families, inverse = np.unique(labels, return_inverse=True)
    if rule == "centroid":
        centroids = np.stack([r[inverse == f].mean(axis=0) for f in range(len(families))])
        dist = curve_distances(q, centroids, distance)
    else:
        d = curve_distances(q, r, distance)
        dist = np.stack([d[:, inverse == f].min(axis=1) for f in range(len(families))], axis=1)
    return Attribution(families[dist.argmin(axis=1)], dist, families)


def _groups(groups, n: int) -> np.ndarray:
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise InputError(f"groups has shape {g.shape}, expected ({n},) (one per reference)")
    if len(np.unique(g)) < 2:
        raise InputError("leave-one-out over references needs at least 2 reference groups")
    return g


def _loo(ref_curves, ref_labels, groups, **kw) -> Attribution:
    """Leave-one-group-out attribution of each reference to the other references."""
    r = _curves(ref_curves, "reference curves")
    y = np.asarray(ref_labels)
    g = _groups(groups, len(r))
    families = np.unique(y)
    labels = np.empty(len(r), dtype=y.dtype)
    dist = np.full((len(r), len(families)), np.inf)
    for grp in np.unique(g):
        out = g == grp
        res = attribute(r[out], r[~out], y[~out], **kw)
        labels[out] = res.labels
        dist[np.ix_(out, np.searchsorted(families, res.families))] = res.distances
    return Attribution(labels, dist, families)


def select_layer(ref_curves, ref_labels, *, groups=None, distance: str = "euclidean",
                 rule: str = "nearest") -> tuple[int, np.ndarray]:
    """Choose the single most discriminative layer using the references only.

    Each reference group (``groups``: (R,) ids, e.g. the set each subset curve came from, so
    that subsets of one set never vouch for each other; default: each curve its own group) is
    attributed to the remaining references on one layer at a time; the layer with the
    highest leave-one-group-out accuracy wins (ties: the lowest index).
    Returns (layer index, (L,) leave-one-out accuracy per layer). Queries are never seen.
    """
    r = _curves(ref_curves, "reference curves")
    y = np.asarray(ref_labels)
    acc = np.array([np.mean(_loo(r, y, groups, distance=distance, rule=rule,
                                 layers=[k]).labels == y) for k in range(r.shape[1])])
    return int(np.argmax(acc)), acc


def best_layer_attribute(query_curves, ref_curves, ref_labels, *, groups=None,
                         distance: str = "euclidean",
                         rule: str = "nearest") -> tuple[Attribution, int]:
    """Baseline: attribution on the single layer chosen by :func:`select_layer` on references.

    Returns (attribution of the queries (Q,), chosen layer index).
    """
    layer, _ = select_layer(ref_curves, ref_labels, groups=groups, distance=distance, rule=rule)
    return attribute(query_curves, ref_curves, ref_labels, distance=distance, rule=rule,
                     layers=[layer]), layer


# --------------------------------------------------------------------------- query protocol


def subsample_indices(n_total: int, size: int, n_draws: int, seed: int) -> list[np.ndarray]:
    """``n_draws`` random subsets (sorted index arrays of length ``size``) of range(n_total).

    Without replacement within a draw; draws are independent. Deterministic given ``seed``.
    ``size == n_total`` returns the full set every time (use ``n_draws=1`` then).
    """
    if not 0 < size <= n_total or n_draws < 1:
        raise InputError(f"subsample_indices: need 0 < size <= n_total and n_draws >= 1; got "
                         f"size={size}, n_total={n_total}, n_draws={n_draws}")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n_total, size=size, replace=False)) for _ in range(n_draws)]


@dataclass(frozen=True)
class Fold:
    """One split of a table of sets (indices into that table).

    held_out: the seed (``seed_folds``) or family (``open_set_folds``: (family, seed)) held out.
    refs: sets whose curves are references.
    queries: sets whose subsets are queries of a known family.
    unknown: sets of the family left out of the references (open-set folds only).
    """

    held_out: Hashable
    refs: np.ndarray
    queries: np.ndarray
    unknown: np.ndarray


def _table(families, seeds) -> tuple[np.ndarray, np.ndarray]:
    fam, sd = np.asarray(families), np.asarray(seeds)
    if fam.ndim != 1 or fam.shape != sd.shape or fam.size == 0:
        raise InputError(f"families and seeds must be 1-D and equally long (one per set); "
                         f"got {fam.shape} and {sd.shape}")
    pairs = list(zip(fam.tolist(), sd.tolist()))
    if len(set(pairs)) != len(pairs):
        raise InputError("the table of sets has a repeated (family, seed)")
    return fam, sd


def seed_folds(families, seeds) -> list[Fold]:
    """Leave-one-seed-out folds over a table of generated sets (one row per set).

    For each seed value s: queries = every family's set with seed s; references = all sets
    with another seed. Holding the same seed out of every family keeps the number of
    references per family balanced (with 1-NN, a family with fewer references looks farther).
    Raises InputError if a queried family has no reference left (it needs >= 2 seeds).
    """
    fam, sd = _table(families, seeds)
    folds = []
    for s in np.unique(sd):
        refs, queries = np.flatnonzero(sd != s), np.flatnonzero(sd == s)
        missing = set(fam[queries].tolist()) - set(fam[refs].tolist())
        if missing:
            raise InputError(f"families {sorted(missing)} have no set besides seed {s!r}; "
                             f"leave-one-seed-out needs >= 2 seeds per family")
        folds.append(Fold(s.item() if hasattr(s, "item") else s, refs, queries,
                          np.array([], dtype=int)))
    return folds


def open_set_folds(families, seeds) -> list[Fold]:
    """Folds for open-set rejection: one family unseen, one seed held out of the others.

    For each family f and seed s: references = sets of other families with seed != s;
    known queries = sets of other families with seed s; unknown = every set of family f.
    ``held_out`` is (f, s). Folds where no known query or reference is left are skipped.
    """
    fam, sd = _table(families, seeds)
    folds = []
    for f in np.unique(fam):
        for s in np.unique(sd):
            refs = np.flatnonzero((fam != f) & (sd != s))
            queries = np.flatnonzero((fam != f) & (sd == s))
            if refs.size and queries.size:
                folds.append(Fold((f.item(), s.item()), refs, queries, np.flatnonzero(fam == f)))
    return folds


# --------------------------------------------------------------------------- accuracy


def accuracy_ci(correct, *, method: str = "wilson", alpha: float = 0.05, groups=None,
                n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy and a (1 - alpha) confidence interval -> (acc, lo, hi), all in [0, 1].

    correct: (Q,) bool, one per query.
    method: ``"wilson"`` (score interval for a binomial proportion; assumes independent
        queries) or ``"bootstrap"`` (percentile bootstrap, ``n_boot`` resamples, seeded).
    groups: (Q,) ids for a cluster bootstrap (``method="bootstrap"`` only): resample whole
        groups, e.g. the held-out set each query subset came from. Subsets of one set are not
        independent, so this gives the honest (wider) interval.
    """
    c = np.asarray(correct)
    if c.ndim != 1 or c.size == 0 or not np.isin(c, [0, 1]).all():
        raise InputError("accuracy_ci: `correct` must be a non-empty 1-D bool array")
    c = c.astype(bool)
    n, acc = c.size, float(c.mean())
    if method == "wilson":
        if groups is not None:
            raise InputError("accuracy_ci: groups needs method='bootstrap'")
        from scipy.stats import norm
        z = norm.ppf(1 - alpha / 2)
        denom = 1 + z * z / n
        centre = (acc + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n))
        lo = 0.0 if acc == 0 else max(0.0, centre - half)   # exact at the edges
        hi = 1.0 if acc == 1 else min(1.0, centre + half)
        return acc, float(lo), float(hi)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        if groups is None:
            boot = c[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
        else:
            g = np.asarray(groups)
            if g.shape != c.shape:
                raise InputError(f"groups has shape {g.shape}, expected {c.shape}")
            _, inv = np.unique(g, return_inverse=True)
            hits = np.bincount(inv, weights=c).astype(float)
            sizes = np.bincount(inv).astype(float)
            draw = rng.integers(0, len(sizes), size=(n_boot, len(sizes)))
            boot = hits[draw].sum(axis=1) / sizes[draw].sum(axis=1)
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        return acc, float(min(lo, acc)), float(max(hi, acc))
    raise InputError(f"unknown CI method {method!r}; choose 'wilson' or 'bootstrap'")


def confusion_matrix(true, pred, labels) -> np.ndarray:
    """(K, K) int counts: row = true label, column = predicted label, in the order ``labels``.

    Every value of ``true`` and ``pred`` must be in ``labels`` (add e.g. "unknown" for open set).
    """
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    t, p = np.asarray(true).tolist(), np.asarray(pred).tolist()
    if len(t) != len(p):
        raise InputError(f"true has {len(t)} entries but pred {len(p)}")
    unknown = sorted({str(v) for v in t + p if v not in index})
    if unknown:
        raise InputError(f"labels {unknown} are not in the given label order {labels}")
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(cm, ([index[v] for v in t], [index[v] for v in p]), 1)
    return cm


# --------------------------------------------------------------------------- feature baselines


def _ref_arrays(ref_feats, what: str) -> list[np.ndarray]:
    """The reference sets as finite float64 (N_r, D) arrays of one D; InputError otherwise."""
    refs = [_feats(f, f"reference set {i}") for i, f in enumerate(ref_feats)]
    if not refs:
        raise InputError(f"{what}: no reference sets")
    if len({f.shape[1] for f in refs}) != 1:
        raise InputError("reference feature sets have different dimensions")
    return refs


def _check_ref_labels(ref_labels, n_refs: int) -> None:
    """One label per reference set, before any distance is computed."""
    y = np.asarray(ref_labels)
    if y.shape != (n_refs,) or not n_refs:
        raise InputError(f"ref_labels has shape {y.shape} but there are {n_refs} reference sets")


def fd_matrix(query_feats, ref_feats) -> np.ndarray:
    """(Q, R) Fréchet distance (squared feature units) of every query set to every reference set.

    query_feats: list of Q arrays (n_q, D); ref_feats: list of R arrays (N_r, D). The matrix
    does not depend on any labels, so one matrix serves every grain (:func:`nearest_label`).
    """
    refs = _ref_arrays(ref_feats, "fd_matrix")
    ref_stats = [feature_stats(f) for f in refs]
    d = np.empty((len(query_feats), len(refs)))
    for i, q in enumerate(query_feats):
        mu_q, c_q = feature_stats(_feats(q, f"query set {i}"))
        if mu_q.shape != ref_stats[0][0].shape:
            raise InputError(f"query set {i} has {mu_q.size} features, references "
                             f"{ref_stats[0][0].size}")
        sq = sqrt_psd(c_q)
        for j, (mu_r, c_r) in enumerate(ref_stats):
            d[i, j] = frechet_distance(mu_q, c_q, mu_r, c_r, sqrt_cov1=sq)
    return d


def nearest_label(distances, ref_labels) -> Attribution:
    """Attribution from a (Q, R) query-to-reference distance matrix: each query goes to the label
    of its nearest reference (ties: the first label in sorted order); ``distances`` of the result
    holds the per-label minimum."""
    d = np.asarray(distances, dtype=float)
    y = np.asarray(ref_labels)
    if d.ndim != 2 or y.shape != (d.shape[1],):
        raise InputError(f"ref_labels has shape {y.shape} but the distances are {d.shape}")
    families, inverse = np.unique(y, return_inverse=True)
    dist = np.stack([d[:, inverse == f].min(axis=1) for f in range(len(families))], axis=1)
    return Attribution(families[dist.argmin(axis=1)], dist, families)


def fd_attribute(query_feats, ref_feats, ref_labels) -> Attribution:
    """Baseline: attribute each query set to the family of the reference set at least FD.

    query_feats: list of Q arrays (n_q, D), final-layer features of each query set.
    ref_feats: list of R arrays (N_r, D), final-layer features of each reference set.
    ref_labels: (R,) family of each reference set.
    FD is biased upward by roughly Tr(C)/n for small n, so, as for curves, use reference sets
    subsampled to the query size for a fair comparison. ``distances`` holds the per-family
    minimum FD (squared feature units). :func:`fd_matrix` then :func:`nearest_label`.
    """
    _check_ref_labels(ref_labels, len(ref_feats))
    return nearest_label(fd_matrix(query_feats, ref_feats), ref_labels)


def probe_neighbour_counts(query_samples, ref_feats, *, k: int = 5) -> np.ndarray:
    """(N, R) int: of each query sample's ``k`` nearest reference samples, how many belong to
    each reference set (ref_feats: list of R arrays (N_r, D); Euclidean on features standardised
    over the references). The neighbours do not depend on labels, so these counts serve every
    grain (:func:`probe_labels_from_counts`).

    The neighbours are scikit-learn's ``KNeighborsClassifier`` ones (fitted with each sample's
    set index as its class), so the labels equal those of a classifier fitted on any labelling
    of the sets, ties included.
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    refs = _ref_arrays(ref_feats, "probe_neighbour_counts")
    x = np.concatenate(refs)
    y = np.concatenate([np.full(len(f), i) for i, f in enumerate(refs)])
    scaler = StandardScaler().fit(x)
    model = KNeighborsClassifier(n_neighbors=k).fit(scaler.transform(x), y)
    proba = model.predict_proba(scaler.transform(_feats(query_samples, "query samples")))
    counts = np.zeros((len(proba), len(refs)), dtype=np.int64)
    counts[:, model.classes_.astype(int)] = np.rint(proba * k).astype(np.int64)
    return counts


def probe_labels_from_counts(counts, ref_labels) -> np.ndarray:
    """(N,) k-NN labels from :func:`probe_neighbour_counts`: the label with the most of a sample's
    neighbours (ties: the first in sorted order)."""
    counts = np.asarray(counts)
    y = np.asarray(ref_labels)
    if counts.ndim != 2 or y.shape != (counts.shape[1],):
        raise InputError(f"ref_labels has shape {y.shape} but the counts are {counts.shape}")
    families, inverse = np.unique(y, return_inverse=True)
    per_label = np.zeros((len(counts), len(families)), dtype=np.int64)
    for j, f in enumerate(inverse):
        per_label[:, f] += counts[:, j]
    return families[per_label.argmax(axis=1)]


def probe_sample_labels(query_samples, ref_feats, ref_labels, *, k: int = 5) -> np.ndarray:
    """Baseline: per-sample k-NN family predictions (N,) for one set's samples (N, D).

    A k-NN classifier (Euclidean, ``k`` neighbours, on features standardised over the
    references) is trained on every sample of the reference sets (ref_feats: list of R arrays
    (N_r, D); a sample's label is its set's family, ref_labels (R,)). It predicts each sample
    independently of the others, so a set's samples are classified once and any subset of them
    is attributed by :func:`vote` (the majority family of the subset).
    :func:`probe_neighbour_counts` then :func:`probe_labels_from_counts`.
    """
    _check_ref_labels(ref_labels, len(ref_feats))
    return probe_labels_from_counts(probe_neighbour_counts(query_samples, ref_feats, k=k), ref_labels)


def vote(sample_labels, subsets) -> np.ndarray:
    """Majority family (ties: first in sorted order) of each subset (S,) of per-sample labels."""
    sample_labels = np.asarray(sample_labels)
    families, codes = np.unique(sample_labels, return_inverse=True)
    out = []
    for idx in subsets:
        out.append(families[np.bincount(codes[np.asarray(idx)], minlength=len(families)).argmax()])
    return np.asarray(out)


# --------------------------------------------------------------------------- open set


class OpenSet(NamedTuple):
    """Open-set rejection numbers.

    auroc: AUROC of the nearest-reference distance as a score for "unknown" (1 = perfect,
        0.5 = chance).
    threshold: distance above which a query is called unknown (calibrated on references).
    reject_unknown: fraction of unknown-family queries rejected (true rejection rate).
    reject_known: fraction of known-family queries rejected (false rejection rate).
    scores: (Q,) nearest-reference distance of each query.
    """

    auroc: float
    threshold: float
    reject_unknown: float
    reject_known: float
    scores: np.ndarray


def open_set_threshold(ref_curves, ref_labels, *, groups=None, quantile: float = 0.95,
                       **kw) -> float:
    """The open-set rejection threshold: the ``quantile`` of the references' leave-one-group-out
    nearest-curve distances (a query farther than this from every reference is "unknown").

    ref_curves (R, L), ref_labels (R,), groups (R,) (default: each reference its own group);
    ``kw``: distance, rule, layers as :func:`attribute`. Returns a distance in curve units.
    """
    loo = _loo(ref_curves, ref_labels, groups, **kw).distances.min(axis=1)
    return float(np.quantile(loo, quantile))


def open_set(query_curves, query_unknown, ref_curves, ref_labels, *, groups=None,
             quantile: float = 0.95, distance: str = "euclidean", rule: str = "nearest",
             layers=None) -> OpenSet:
    """Open-set rejection of queries from a family absent from the references.

    query_curves: (Q, L); query_unknown: (Q,) bool, True where the query's family is not
    among the references (both kinds must occur). ref_curves (R, L), ref_labels (R,).
    Score = distance to the nearest family (as :func:`attribute` with the same options).
    Threshold = ``quantile`` of the leave-one-group-out nearest distances among the references
    (``groups`` as in :func:`select_layer`), i.e. chosen without any query: about
    1 - quantile of known queries are expected to be rejected if they resemble references.
    """
    from sklearn.metrics import roc_auc_score

    unknown = np.asarray(query_unknown, dtype=bool)
    kw = dict(distance=distance, rule=rule, layers=layers)
    scores = attribute(query_curves, ref_curves, ref_labels, **kw).distances.min(axis=1)
    if unknown.shape != scores.shape or unknown.all() or not unknown.any():
        raise InputError("open_set: query_unknown must be (Q,) bool with both known and "
                         "unknown queries")
    threshold = open_set_threshold(ref_curves, ref_labels, groups=groups, quantile=quantile, **kw)
    rejected = scores > threshold
    return OpenSet(float(roc_auc_score(unknown, scores)), threshold,
                   float(rejected[unknown].mean()), float(rejected[~unknown].mean()), scores)


# --------------------------------------------------------------------------- dendrogram


def family_linkage(curves, labels, *, distance: str = "euclidean") -> tuple[np.ndarray, list]:
    """Average-linkage hierarchy of families by the distance between their mean curves.

    curves: (R, L); labels: (R,) family of each curve; distance: as :func:`curve_distances`.
    Returns (Z, families): Z is scipy's (F-1, 4) linkage matrix, whose leaf i is families[i]
    (sorted); pass ``labels=families`` to ``scipy.cluster.hierarchy.dendrogram``.
    """
    c = _curves(curves, "curves")
    y = np.asarray(labels)
    if y.shape != (len(c),):
        raise InputError(f"labels has shape {y.shape} but there are {len(c)} curves")
    families, inverse = np.unique(y, return_inverse=True)
    if len(families) < 2:
        raise InputError("family_linkage needs at least 2 families")
    means = np.stack([c[inverse == f].mean(axis=0) for f in range(len(families))])
    d = curve_distances(means, means, distance)
    d = np.clip((d + d.T) / 2, 0, None)
    np.fill_diagonal(d, 0.0)
    return hierarchy.linkage(squareform(d, checks=False), method="average"), families.tolist()
