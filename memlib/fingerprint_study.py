"""The claims 3-4 experiment on one table of generated sets, for one study setting.

Notebook 04 runs it on every standard zoo model (and external sets); notebook 05 re-runs it
under other analysis choices. Steps (Study v2 protocol, docs/design.md): features of every set
(cached), the public C_T reference and its final-norm twin, per-point distances once per set,
size-matched subset curves at every query size (:func:`memlib.attribution_eval.size_inputs`),
every method on every query at both grains (:func:`memlib.attribution_eval.query_predictions`),
optionally the same on corrupted queries (against clean references, and against references
corrupted the same way: the ``references`` column), then the accuracy, paired-gap and separation
tables the verdict rules read (:func:`memlib.claims.fingerprint_claims`, clean queries only).

Set keys are ``(architecture, seed)`` pairs; ``images[key]`` is a uint8 (N, H, W[, C]) array.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from tqdm.auto import tqdm

from . import attribution_eval as ae
from . import fingerprint as fp
from .copies import corrupt

TABLE_KEYS = ["grain", "corruption", "level", "references", "query_size"]
# the references a query is attributed against: the clean sets (every clean query; a corrupted
# query as a database of clean samples meets it) or the other seeds' sets corrupted the same way
# (same kind and level: the matched condition, corrupted queries only)
CLEAN_REFERENCES, CORRUPTED_REFERENCES = "clean", "corrupted"
DISTANCES = ("euclidean", "znorm")   # claim 3: primary (level and shape), secondary (shape only)


@dataclass
class FingerprintRun:
    """Everything one run computed (one entry per set, in ``keys`` order).

    sizes: the query sizes (capped at the smallest set, ``m_total`` samples); clean: the
    :class:`~memlib.attribution_eval.SizeInputs` at each size; final: per set its (N, D)
    final-layer features in the PCA space of T (the feature baselines'); predictions /
    accuracy / gaps: :func:`memlib.attribution_eval.query_predictions`, ``accuracy_table`` and
    ``baseline_gap_table`` with the :data:`TABLE_KEYS` columns (``references``:
    :data:`CLEAN_REFERENCES` on every clean-query row, both values on every corrupted one); signature:
    :func:`memlib.attribution_eval.family_separation` of the full-size curves per grain and
    distance in :data:`DISTANCES`; seconds: wall time of the run.
    """

    keys: list
    architectures: np.ndarray
    families: np.ndarray
    seeds: np.ndarray
    sizes: list[int]
    m_total: int
    clean: dict[int, ae.SizeInputs]
    final: dict
    predictions: pd.DataFrame
    accuracy: pd.DataFrame
    gaps: pd.DataFrame
    signature: pd.DataFrame
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """{grain: (N,) labels}: the family or the architecture of every set."""
        return {"family": self.families, "architecture": self.architectures}

    def full_curves(self) -> np.ndarray:
        """(N, L) the curve of every whole set (the largest query size, first draw)."""
        return np.stack([c[0] for c in self.clean[self.sizes[-1]].curves])


def run_fingerprinting(study, images: dict[Hashable, np.ndarray], family_of: Callable[[str], str], *,
                       sizes: Sequence[int], n_draws: int,
                       corruptions: Sequence[tuple[str, float]] = (), robust_n: int | None = None,
                       robust_query_size: int | None = None, level: float = 0.95,
                       progress: bool = True) -> FingerprintRun:
    """Run the claims 3-4 experiment (module doc) and return its tables.

    study: a :class:`memlib.study.Study` (its encoder, token, reference split, ``n_cells``,
        ``pca_dim``, ``seed``); images: {(architecture, seed): uint8 images};
    family_of: architecture -> family; sizes: query sizes (capped at the smallest set);
    n_draws: subsets per (set, size) (one when the size is the whole set);
    corruptions: (kind, level) pairs of :func:`memlib.copies.corrupt`, applied to the first
        ``robust_n`` samples of every set and queried in subsets of ``robust_query_size``, twice:
        against the clean references of that size (``references`` = "clean") and against the
        other seeds' corrupted subsets of the same kind and level (``references`` = "corrupted",
        leave one seed out as for clean queries);
    level: of every CI.
    """
    import time

    start = time.perf_counter()
    p = study.params
    keys = list(images)
    architectures = np.array([k[0] for k in keys])
    families = np.array([family_of(a) for a in architectures])
    seeds = np.array([k[1] for k in keys])
    labels = {"family": families, "architecture": architectures}
    quiet = not progress
    feats = {k: study.features(images[k], name=f"{k[0]}-s{k[1]}") for k in keys}
    reference, fn_reference = study.reference(), study.final_norm_reference()
    dists = {k: reference.layer_distances(feats[k]) for k in tqdm(keys, desc="distances", disable=quiet)}
    fn_dists = {k: fn_reference.layer_distances(study.final_norm_features(feats[k])) for k in keys}
    t_final = study.features(study.images("reference_train"))[-1]
    # pca_dim caps the dimension (as in C_T's space): an encoder narrower than pca_dim keeps all of it
    pca = PCA(min(p["pca_dim"], *t_final.shape) if p["pca_dim"] else None, random_state=p["seed"]).fit(t_final)
    final = {k: pca.transform(feats[k][-1]) for k in keys}
    m_total = min(len(images[k]) for k in keys)
    sizes = sorted({min(int(n), m_total) for n in sizes})

    def inputs_at(n, dist, fn, feat, n_total):
        subsets = [fp.subsample_indices(n_total, n, 1 if n == n_total else n_draws, seed=p["seed"] + 1000 * i + n)
                   for i in range(len(keys))]
        return ae.size_inputs(reference, [dist[k] for k in keys], subsets, features=[feat[k] for k in keys],
                              final_norm_reference=fn_reference, final_norm_distances=[fn[k] for k in keys])

    clean = {n: inputs_at(n, dists, fn_dists, final, m_total) for n in sizes}
    by_size = {n: ae.query_predictions_by_grain(labels, seeds, clean[n])   # both grains on one FD / k-NN pass
               for n in tqdm(sizes, desc="attribution", disable=quiet)}
    preds = [by_size[n][grain].assign(grain=grain, corruption="none", level=0.0, references=CLEAN_REFERENCES,
                                      query_size=n)
             for grain in ae.GRAINS for n in sizes]
    extra: dict[str, Any] = {}
    if corruptions:
        pool = min(int(robust_n or m_total), m_total)
        n_rob = min(int(robust_query_size or pool), pool)
        refs_rob = clean[n_rob] if n_rob in clean else inputs_at(n_rob, dists, fn_dists, final, m_total)
        for kind, lev in corruptions:
            c_feats = {k: study.features(corrupt(images[k][:pool], kind, lev, seed=p["seed"]),
                                         name=f"{k[0]}-s{k[1]}-{kind}{lev}")
                       for k in tqdm(keys, desc=f"{kind} {lev}", disable=quiet)}
            q = inputs_at(n_rob, {k: reference.layer_distances(f) for k, f in c_feats.items()},
                          {k: fn_reference.layer_distances(study.final_norm_features(f)) for k, f in c_feats.items()},
                          {k: pca.transform(f[-1]) for k, f in c_feats.items()}, pool)
            against_clean = ae.query_predictions_by_grain(labels, seeds, refs_rob, q)
            # matched: the references are the other seeds' sets corrupted the same way (refs = q)
            matched = ae.query_predictions_by_grain(labels, seeds, q)
            for grain in ae.GRAINS:
                tag = dict(grain=grain, corruption=kind, level=float(lev))
                preds.append(against_clean[grain].assign(**tag, references=CLEAN_REFERENCES, query_size=n_rob))
                preds.append(matched[grain].assign(**tag, references=CORRUPTED_REFERENCES, query_size=n_rob))
        extra.update(robust_pool=pool, robust_query_size=n_rob)
    predictions = pd.concat(preds, ignore_index=True)
    full = np.stack([c[0] for c in clean[sizes[-1]].curves])
    signature = pd.concat([ae.family_separation(full, labels[g], d).assign(grain=g, distance=d)
                           for g in ae.GRAINS for d in DISTANCES], ignore_index=True)
    return FingerprintRun(
        keys, architectures, families, seeds, sizes, m_total, clean, final, predictions,
        ae.accuracy_table(predictions, TABLE_KEYS, seed=p["seed"], level=level),
        ae.baseline_gap_table(predictions, TABLE_KEYS, seed=p["seed"], level=level), signature,
        time.perf_counter() - start, extra | {"pca": pca})


def claim_rows(run: FingerprintRun, *, level: float = 0.95, seed: int = 0,
               run_ci: dict[str, ae.RunBootstrap] | None = None) -> list[dict]:
    """The claims.csv rows of claims 3, 4a, the two 4b rows and the shape-only secondary
    (:func:`memlib.claims.fingerprint_claims`; the shape-only curve's gaps to the baselines are
    computed here, at the architecture grain and the largest query size, the only ones its row
    reads, as the primary's are in :func:`run_fingerprinting`). run_ci: :func:`run_intervals`
    of this run with the same level and seed, if already computed."""
    from .claims import fingerprint_claims

    p = run.predictions
    at = (p.grain == "architecture") & (p.corruption == "none") & (p.query_size == run.sizes[-1])   # what the row reads
    shape_gaps = ae.baseline_gap_table(p[at], TABLE_KEYS, seed=seed, level=level, curve_method=ae.SHAPE_METHOD)
    return fingerprint_claims(run.accuracy, run.gaps, run.signature,
                              run_ci=run_ci or run_intervals(run, level=level, seed=seed),
                              level=level, seed=seed, shape_gaps=shape_gaps)


def run_intervals(run: FingerprintRun, *, level: float = 0.95, seed: int = 0) -> dict[str, ae.RunBootstrap]:
    """{method: :class:`memlib.attribution_eval.RunBootstrap`}: the whole-set accuracy at the
    architecture grain of the curve (Euclidean) and of its shape only (z-normalised), with the
    interval whose unit is the training run (:func:`memlib.attribution_eval.run_bootstrap_accuracy`),
    the one claims 3 and 4a read."""
    largest = run.clean[run.sizes[-1]].curves   # per set: its one whole-set curve (or the draws of the largest size)
    return {method: ae.run_bootstrap_accuracy(largest, run.architectures, run.seeds, distance=distance,
                                              seed=seed, level=level)
            for method, distance in ((ae.CURVE_METHOD, "euclidean"), (ae.SHAPE_METHOD, "znorm"))}


def interval_table(run: FingerprintRun, run_ci: dict[str, ae.RunBootstrap]) -> pd.DataFrame:
    """The two intervals of the whole-set accuracy side by side (architecture grain, clean
    queries, largest query size), one row per method of ``run_ci`` (:func:`run_intervals`):
    method, accuracy, query_lo / query_hi (cluster bootstrap over the query sets, references
    fixed: the Study v2 interval), run_lo / run_hi (training-run bootstrap, references
    resampled: the one claims 3 and 4a read), both widths, width_ratio (run / query; inf where
    the query-set interval has width 0), unscored (share of drawn runs left out as queries),
    n_boot."""
    a = run.accuracy
    full = a[(a.grain == "architecture") & (a.corruption == "none") & (a.query_size == run.sizes[-1])]
    full = full.set_index("method")
    rows = []
    for method, r in run_ci.items():
        q = full.loc[method]
        q_width, r_width = float(q.acc_hi - q.acc_lo), r.hi - r.lo
        rows.append(dict(method=method, accuracy=r.accuracy, query_lo=float(q.acc_lo), query_hi=float(q.acc_hi),
                         query_width=q_width, run_lo=r.lo, run_hi=r.hi, run_width=r_width,
                         width_ratio=r_width / q_width if q_width > 0 else float("inf"),
                         unscored=r.unscored, n_boot=int(r.boot.size)))
    return pd.DataFrame(rows)
