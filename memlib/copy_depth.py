"""Claim 1 under the Study v3 protocol: the copy signal separated from under-fitting, with
intervals whose unit is what varies (``docs/design.md``, "Study v3: claim 1 as two rows").

C_T and its effect size are **net** scores: the rows of a set that copy pull them toward −1,
the rows that under-fit push them up. So each set is scored in **parts** (row subsets, each
scored as a set of its own with :meth:`memlib.ct.Reference.subset_curves`), and claim 1 becomes
two rows with rules fixed before their numbers (:data:`memlib.claims.RULE_1A`, ``RULE_1B``):

* ``1a`` (descriptive): the standard zoo's whole sets, each against its model's own training
  data: does the effect rise with depth?
* ``1b`` (the paper's reading): only rows that copy — the memorization gradient's near-copy
  rows and the mixtures' transformed copies padded with fresh real images — does the copy
  signal weaken with depth?

Every set is scored on R **reference draws** (:func:`memlib.hierarchical.reference_draws`:
disjoint P_n draws and k-means seeds, T fixed: a generator's training set is what it is), and
every interval is a hierarchical bootstrap (:func:`memlib.hierarchical.hierarchical_bootstrap`:
reference draw, clusters of sets, sets, points). The point estimate is the mean over the R
draws. :func:`ci_widths` states each interval's width with points resampled alone (the Study v2
interval) beside the hierarchical one.

Notebook 03 and the sensitivity grid (:func:`memlib.sensitivity_eval.claim_1_rows`) build the
:class:`ScoredSet` s from their features with :class:`ClaimOneSets` (which rows enter 1b, and
why the others do not); everything that turns them into tables, claims.csv rows and the groups'
numbers (:func:`group_numbers`) is here, once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import claims, hierarchical
from .bootstrap import late_minus_early
from .ct import LayerDistances, Reference
from .errors import InputError
from .row_effects import contribution, row_indices, row_terms

ALL = "all"
DECOMPOSITION_COLUMNS = ["set", "group", "part", "n", "share", "copy_rate", "layer", "effect",
                         "ci_low", "ci_high", "contribution"]
WIDTH_COLUMNS = ["claim", "label", "resample", "value", "ci_low", "ci_high", "width"]
V2_RESAMPLE = ("points",)


@dataclass(frozen=True)
class ScoredSet:
    """One generated set on every reference draw of its reference.

    name: unique set name; group: ``"zoo"`` (claim 1a), ``"gradient"`` or ``"mixture"``;
    cluster: the unit above sets (e.g. the architecture); reference: the key of its reference
    draws; dists: one :class:`memlib.ct.LayerDistances` per draw, (L, m) each; parts: part name
    -> (k,) int64 row indices (``"all"`` = every row); copy_rate: the set's copy share (NaN
    where it has none); labels: extra columns (architecture, n_train, rho, kind, ...).
    """

    name: str
    group: str
    cluster: str
    reference: str
    dists: tuple
    parts: Mapping[str, np.ndarray]
    copy_rate: float = float("nan")
    labels: Mapping[str, Any] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return int(self.dists[0].dist.shape[1])


def distances(references: Sequence[Reference], gen: Any) -> tuple:
    """One set's :class:`memlib.ct.LayerDistances` on each reference draw (one search per
    draw); gen: its L layers of (m, D) features."""
    if len(references) == 0:
        raise InputError("no reference draws")
    return tuple(r.layer_distances(gen) for r in references)


def stack_distances(*pieces: tuple[Sequence[LayerDistances], Any]) -> tuple:
    """The distances of a set made of rows of other sets, without a new search: pieces are
    (distances on each draw, rows) pairs, stacked in order. A point's L(q) and cell do not
    depend on the other points of its set (:class:`memlib.ct.Reference`), so this equals
    searching the stacked features."""
    n_draws = {len(d) for d, _ in pieces}
    if len(n_draws) != 1:
        raise InputError(f"pieces scored on different numbers of reference draws: {sorted(n_draws)}")
    out = []
    for r in range(n_draws.pop()):
        parts = [(d[r].dist[:, np.asarray(rows)], d[r].cells[:, np.asarray(rows)]) for d, rows in pieces]
        out.append(LayerDistances(np.concatenate([p[0] for p in parts], axis=1),
                                  np.concatenate([p[1] for p in parts], axis=1)))
    return tuple(out)


def score_set(name: str, group: str, dists: Sequence[LayerDistances], *,
              reference: str, cluster: str | None = None,
              parts: Mapping[str, Any] | None = None, copy_rate: float = float("nan"),
              whole: str = ALL, **labels: Any) -> ScoredSet:
    """A set on each reference draw of ``reference``, with its parts named.

    dists: :func:`distances` (or :func:`stack_distances`) on each draw. parts: part name ->
    row indices or an (m,) boolean mask; the whole set is added as part ``whole`` (e.g.
    ``"fresh-padded"``, ``"base"``). Raises InputError for an empty set or bad indices.
    """
    dists = tuple(dists)
    if len(dists) == 0:
        raise InputError(f"set {name!r}: no reference draws")
    m = dists[0].dist.shape[1]
    if m == 0:
        raise InputError(f"set {name!r} has no rows")
    named = {whole: np.arange(m, dtype=np.int64)}
    for part, sel in (parts or {}).items():
        named[part] = row_indices(sel, m, f"{name}/{part}")
    return ScoredSet(name, group, name if cluster is None else cluster, reference, dists, named,
                     float(copy_rate), dict(labels))


def part_stat(s: ScoredSet, references: Sequence[Reference], part: str = ALL) -> hierarchical.SetStat:
    """The effect-size curve of one part of a set as a :class:`memlib.hierarchical.SetStat`
    (K = L layers; a draw of k rows picks rows of the part)."""
    rows = s.parts[part]
    if len(rows) == 0:
        raise InputError(f"set {s.name!r}: part {part!r} is empty")
    if len(references) != len(s.dists):
        raise InputError(f"set {s.name!r}: scored on {len(s.dists)} reference draws, "
                         f"{len(references)} given")
    return hierarchical.SetStat(
        f"{s.name}/{part}", s.cluster, len(rows), len(references),
        lambda r, draws: references[r].subset_curves(s.dists[r], rows[np.asarray(draws)],
                                                     statistic="effect"))


def decomposition_table(sets: Sequence[ScoredSet], references: Mapping[str, Sequence[Reference]],
                        *, n_boot: int, seed: int, level: float) -> pd.DataFrame:
    """``claim1_decomposition.csv``: one row per set, part and layer (:data:`DECOMPOSITION_COLUMNS`).

    effect: the part scored as a set of its own, mean over the reference draws; ci_low/ci_high:
    its interval with the reference draw and the part's points resampled; contribution: the
    part's rows' share of the whole set's effect (mean over draws; parts that partition a set
    add up to its effect, :mod:`memlib.row_effects`). share = n / m. A part whose effect is
    undefined on a layer (no cell keeps more than 20 of its rows) has NaN there.
    """
    rows = []
    for i, s in enumerate(sets):
        refs = references[s.reference]
        terms = [row_terms(r, d) for r, d in zip(refs, s.dists)]
        for part, idx in s.parts.items():
            if len(idx) == 0:
                continue
            draws = hierarchical.hierarchical_bootstrap(
                {s.name: [part_stat(s, refs, part)]}, n_boot=n_boot, seed=seed + i,
                resample=("reference", "points"))
            table = hierarchical.summary_table(draws, level)
            table = table[table.label == s.name]
            contrib = np.mean([contribution(t, idx) for t in terms], axis=0)
            for k, r in enumerate(table.itertuples()):
                rows.append(dict(set=s.name, group=s.group, part=part, n=len(idx),
                                 share=len(idx) / s.m, copy_rate=s.copy_rate, layer=k + 1,
                                 effect=r.value, ci_low=r.ci_low, ci_high=r.ci_high,
                                 contribution=float(contrib[k])))
    return pd.DataFrame(rows, columns=DECOMPOSITION_COLUMNS)


def resample_levels(groups: Mapping[str, Sequence[hierarchical.SetStat]]) -> tuple[str, ...]:
    """The levels a hierarchical interval can redraw for these groups: every level where each
    group has >= 2 clusters; without ``clusters`` where each has >= 2 sets; else the reference
    and the points only (a group of one set has no between-set spread to estimate)."""
    if all(len({s.cluster for s in g}) >= 2 for g in groups.values()):
        return hierarchical.LEVELS
    if all(len(g) >= 2 for g in groups.values()):
        return ("reference", "sets", "points")
    return ("reference", "points")


def contrast_summary(groups: Mapping[str, Sequence[hierarchical.SetStat]], *, n_boot: int,
                     seed: int, level: float, resample: Sequence[str]) -> pd.DataFrame:
    """The late-minus-early effect contrast (:func:`memlib.bootstrap.late_minus_early`, > 0:
    the effect rises with depth) of each group's mean and of their equal-weight mean
    (label ``"all"``): columns label, value, ci_low, ci_high, width."""
    draws = hierarchical.hierarchical_bootstrap(groups, n_boot=n_boot, seed=seed, resample=resample)
    out = hierarchical.summary_table(hierarchical.reduce_draws(draws, late_minus_early), level)
    return out.drop(columns="k")


def set_contrasts(stats: Sequence[hierarchical.SetStat], *, n_boot: int, seed: int,
                  level: float) -> pd.DataFrame:
    """Each set's own contrast with the reference draw and its points resampled: columns set,
    value, ci_low, ci_high, side (:func:`memlib.claims.ci_side`)."""
    rows = []
    for i, st in enumerate(stats):
        t = contrast_summary({st.name: [st]}, n_boot=n_boot, seed=seed + i, level=level,
                             resample=("reference", "points"))
        r = t[t.label == st.name].iloc[0]
        rows.append(dict(set=st.name, value=r.value, ci_low=r.ci_low, ci_high=r.ci_high,
                         side=claims.ci_side(r.ci_low, r.ci_high)))
    return pd.DataFrame(rows, columns=["set", "value", "ci_low", "ci_high", "side"])


def ci_widths(claim: str, groups: Mapping[str, Sequence[hierarchical.SetStat]], *, n_boot: int,
              seed: int, level: float, resample: Sequence[str],
              deciding: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claim's contrast intervals twice from the same inputs: points resampled alone (the
    Study v2 interval: sets, T, P_n and cells fixed; averaged over the reference draws) and
    ``resample`` (the interval that decides the verdict; ``deciding``: its
    :func:`contrast_summary` when already computed with these arguments, else computed here).
    Columns :data:`WIDTH_COLUMNS`."""
    out = []
    for levels in (V2_RESAMPLE, tuple(resample)):
        if levels == tuple(resample) and deciding is not None:
            t = deciding
        else:
            t = contrast_summary(groups, n_boot=n_boot, seed=seed, level=level, resample=levels)
        out.append(t.assign(claim=claim, resample="+".join(levels)))
    return pd.concat(out, ignore_index=True)[WIDTH_COLUMNS]


@dataclass
class ClaimOne:
    """Everything :func:`run_claim_1` computed.

    decomposition: :func:`decomposition_table`; contrasts: per claim (1a, 1b) and label (group,
    ``all``) the deciding contrast (label, value, ci_low, ci_high, width, claim, resample);
    per_set: each entering set's own contrast (claim, group, set, value, ci_low, ci_high, side);
    widths: :func:`ci_widths` of both claims; rows: the two claims.csv rows; excluded: the sets
    or parts left out of 1b and why.
    """

    decomposition: pd.DataFrame
    contrasts: pd.DataFrame
    per_set: pd.DataFrame
    widths: pd.DataFrame
    rows: list
    excluded: pd.DataFrame


def run_claim_1(zoo_sets: Sequence[ScoredSet], copy_sets: Sequence[tuple[ScoredSet, str]],
                decomposed: Sequence[ScoredSet], references: Mapping[str, Sequence[Reference]], *,
                excluded: Sequence[dict] = (), n_boot: int, seed: int, level: float,
                n_layers: int) -> ClaimOne:
    """Claims 1a and 1b and the decomposition, from scored sets.

    Args:
        zoo_sets: claim 1a's sets (group ``"zoo"``): the standard zoo's whole sets against
            their models' own training data (cluster = architecture).
        copy_sets: claim 1b's (set, part) pairs: the part that holds the copy rows (gradient
            sets' near copies; a fresh-padded mixture's ``"all"``); groups from each set.
        decomposed: every set whose parts go into the decomposition table (the 1a and 1b sets
            among them or not).
        references: reference key -> its R reference draws.
        excluded: rows (set, part, reason) already left out of 1b by the caller (exact copies,
            unseen transforms, sets that do not copy); parts whose effect is undefined on every
            layer are added here.
        n_boot, seed, level: bootstrap replicates, seed and CI level of every interval.
        n_layers: L (for the rule text).
    """
    def stat(s, part):
        return part_stat(s, references[s.reference], part)

    zoo = {"zoo": [stat(s, ALL) for s in zoo_sets]} if zoo_sets else {}
    copy_groups: dict[str, list] = {}
    dropped = list(excluded)
    for s, part in copy_sets:
        st = stat(s, part)
        whole = np.arange(st.m)[None]
        if all(np.isnan(st.score(r, whole)).all() for r in range(st.n_refs)):
            dropped.append(dict(set=s.name, part=part, reason=f"effect undefined on every layer "
                                f"({st.m} rows: no cell keeps more than 20)"))
            continue
        copy_groups.setdefault(s.group, []).append(st)
    rows, contrasts, per_set, widths = [], [], [], []
    for claim, groups, row_of in ((claims.CLAIM_1A, zoo, _row_1a), (claims.CLAIM_1B, copy_groups, _row_1b)):
        if not groups:
            rows.append(row_of(None, None, 0, (), n_layers, level))
            continue
        levels = resample_levels(groups)
        summary = contrast_summary(groups, n_boot=n_boot, seed=seed, level=level, resample=levels)
        sets_t = pd.concat([set_contrasts(g, n_boot=n_boot, seed=seed, level=level).assign(group=name)
                            for name, g in groups.items()], ignore_index=True)
        contrasts.append(summary.assign(claim=claim, resample="+".join(levels)))
        per_set.append(sets_t.assign(claim=claim))
        widths.append(ci_widths(claim, groups, n_boot=n_boot, seed=seed, level=level, resample=levels,
                                deciding=summary))
        rows.append(row_of(summary, sets_t, sum(len(g) for g in groups.values()), levels, n_layers, level))
    return ClaimOne(
        decomposition=decomposition_table(decomposed, references, n_boot=n_boot, seed=seed, level=level),
        contrasts=pd.concat(contrasts, ignore_index=True) if contrasts else pd.DataFrame(),
        per_set=pd.concat(per_set, ignore_index=True)[["claim", "group", "set", "value", "ci_low",
                                                       "ci_high", "side"]] if per_set else pd.DataFrame(),
        widths=pd.concat(widths, ignore_index=True) if widths else pd.DataFrame(columns=WIDTH_COLUMNS),
        rows=rows, excluded=pd.DataFrame(dropped, columns=["set", "part", "reason"]))


# --------------------------------------------------------------------------- building the sets


@dataclass
class ClaimOneSets:
    """The inputs of :func:`run_claim_1`, built set by set; notebook 03 and the sensitivity grid
    (:func:`memlib.sensitivity_eval.claim_1_rows`) both build them here, so that the rule of which
    rows enter claim 1b and why the others are left out exists once.

    zoo: claim 1a's sets; copy_sets: claim 1b's (set, part) pairs; parts: every other set of the
    decomposition table (gradient sets, mixtures and their base models, fresh-padded sets), in the
    order added; excluded: rows (set, part, reason) left out of 1b. Every ``dists`` argument is a
    set's :class:`memlib.ct.LayerDistances` on each reference draw of ``reference``, (L, m) each.
    """

    zoo: list = field(default_factory=list)
    copy_sets: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    excluded: list = field(default_factory=list)

    def add_zoo(self, name: str, dists: Sequence[LayerDistances], *, reference: str, cluster: str,
                copy_rate: float = float("nan")) -> ScoredSet:
        """A standard zoo set, whole, against its model's own training data (claim 1a)."""
        s = score_set(name, "zoo", dists, reference=reference, cluster=cluster, copy_rate=copy_rate)
        self.zoo.append(s)
        return s

    def add_gradient(self, name: str, dists: Sequence[LayerDistances], kind: np.ndarray, *,
                     reference: str, cluster: str, copy_rate: float) -> ScoredSet:
        """A memorization-gradient set with parts copies / exact copies / near copies /
        non-copies from its (m,) per-sample copy kind (:func:`copy_rows`); its near copies enter
        1b if the set copies (:func:`memlib.claims.is_copying_set` on the manifest's
        ``copy_rate``) and has near copies, else the reason is recorded."""
        kind = np.asarray(kind)
        s = score_set(name, "gradient", dists, reference=reference, cluster=cluster, copy_rate=copy_rate,
                      parts={"copies": kind != "none", "exact copies": kind == "exact",
                             "near copies": kind == "near", "non-copies": kind == "none"})
        self.parts.append(s)
        if not claims.is_copying_set("gradient", copy_rate):
            self.excluded.append(dict(set=name, part="near copies", reason=f"copy rate below {claims.COPY_RATE_MIN}"))
        elif not (kind == "near").any():
            self.excluded.append(dict(set=name, part="near copies", reason="only exact copies (the floor on every layer)"))
        else:
            self.copy_sets.append((s, "near copies"))
        return s

    def add_mixtures(self, name: str, base: Sequence[LayerDistances], copies: Mapping[str, Sequence[LayerDistances]],
                     rhos: Sequence[float], *, reference: str, cluster: str) -> list:
        """A base model's m samples alone (part ``base``) and, per copy kind and ρ, the mixture
        whose first round(ρ·m) rows are that kind's copies (parts copies / non-copies); for the
        decomposition only. copies: kind -> the copies' distances (at least round(ρ·m) rows, in
        :func:`memlib.depth_signal.mixture_sources` order); distances are stacked, not searched
        again (:func:`stack_distances`)."""
        m = base[0].dist.shape[1]
        out = [score_set(name, "mixture", base, reference=reference, cluster=cluster, whole="base")]
        for kind, rho in [(k, r) for k in copies for r in rhos]:
            k = _copies_in(m, rho, copies[kind], f"{name}+{kind}@{rho:g}")
            out.append(score_set(f"{name}+{kind}@{rho:g}", "mixture",
                                 stack_distances((copies[kind], np.arange(k)), (base, np.arange(k, m))),
                                 reference=reference, cluster=cluster, copy_rate=k / m,
                                 parts={"copies": np.arange(k), "non-copies": np.arange(k, m)}))
        self.parts.extend(out)
        return out

    def add_fresh_padded(self, copies: Mapping[str, Sequence[LayerDistances]], fresh: Sequence[LayerDistances],
                         rhos: Sequence[float], m: int, seen: Mapping[str, bool], *, reference: str) -> list:
        """Per copy kind and ρ, the set ``fresh+<kind>@<ρ>`` of m rows: the first round(ρ·m)
        copies, then fresh real images (in neither T nor P_n; their distances stacked, which equals
        scoring the concatenated features),
        cluster = the kind. It enters 1b unless its copies are exact (the floor on every layer)
        or no layer sees the kind as a copy (``seen[kind]`` False, :func:`transform_seen`).
        Raises InputError where ``fresh`` has fewer than m − round(ρ·m) rows."""
        out = []
        for kind, rho in [(k, r) for k in copies for r in rhos]:
            name = f"fresh+{kind}@{rho:g}"
            k = _copies_in(m, rho, copies[kind], name)
            if fresh[0].dist.shape[1] < m - k:
                raise InputError(f"fresh-padded set {name}: {m - k} fresh images needed, "
                                 f"{fresh[0].dist.shape[1]} given (use more `fresh` images or a smaller m)")
            s = score_set(name, "mixture", stack_distances((copies[kind], np.arange(k)), (fresh, np.arange(m - k))),
                          reference=reference, cluster=kind, copy_rate=k / m, whole="fresh-padded",
                          parts={"copies": np.arange(k)})
            out.append(s)
            if kind == "exact":
                self.excluded.append(dict(set=name, part="fresh-padded", reason="exact copies (the floor on every layer)"))
            elif not seen.get(kind, False):
                self.excluded.append(dict(set=name, part="fresh-padded", reason="no layer sees this transform as a copy"))
            else:
                self.copy_sets.append((s, "fresh-padded"))
        self.parts.extend(out)
        return out

    def run(self, references: Mapping[str, Sequence[Reference]], *, n_boot: int, seed: int, level: float,
            n_layers: int, decompose: bool = True) -> "ClaimOne":
        """:func:`run_claim_1` on these sets; ``decompose=False`` leaves the decomposition table
        empty (the sensitivity grid reads the two claims only)."""
        return run_claim_1(self.zoo, self.copy_sets, (self.zoo + self.parts) if decompose else [], references,
                           excluded=self.excluded, n_boot=n_boot, seed=seed, level=level, n_layers=n_layers)


GROUP_COLUMNS = ["claim", "group", "value", "ci_low", "ci_high", "n_sets", "resample"]


def group_numbers(run: "ClaimOne") -> pd.DataFrame:
    """Each claim's per-group numbers beside the pooled one that decides it: the group's mean
    late-minus-early contrast with the deciding interval (``label`` ``"all"`` = pooled) and the
    number of its sets (the groups of :func:`run_claim_1`'s ``contrasts``, whose CIs the rules
    of 1b read). Columns :data:`GROUP_COLUMNS`, one row per (claim, group), pooled last."""
    if not len(run.contrasts):
        return pd.DataFrame(columns=GROUP_COLUMNS)
    sizes = run.per_set.groupby(["claim", "group"]).size()
    rows = []
    for r in run.contrasts.itertuples():
        n = (int(sizes[r.claim].sum()) if r.label == hierarchical.POOLED
             else int(sizes.get((r.claim, r.label), 0)))
        rows.append(dict(claim=r.claim, group=r.label, value=float(r.value), ci_low=float(r.ci_low),
                         ci_high=float(r.ci_high), n_sets=n, resample=r.resample))
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _copies_in(m: int, rho: float, copies: Sequence[LayerDistances], name: str) -> int:
    from .copies import n_copies

    k = n_copies(m, rho)
    if copies[0].dist.shape[1] < k:
        raise InputError(f"set {name}: {k} copies needed, {copies[0].dist.shape[1]} given")
    return k


# --------------------------------------------------------------------------- inputs


def copy_rows(samples: np.ndarray, train: np.ndarray, test: np.ndarray, *, quantile: float,
              copy_rate: float | None = None) -> np.ndarray:
    """(N,) per-sample copy kind (:func:`memlib.claims.copy_kind`: exact / near / none) of a
    model's uint8 samples against its training images, with the threshold of its manifest
    (:func:`memlib.metrics.copy_distances`). ``copy_rate``: the manifest's, checked to be the
    share of exact and near (InputError otherwise: the flags would not be the manifest's)."""
    from .metrics import copy_distances

    d_s, _, threshold = copy_distances(samples, train, test, quantile=quantile)
    kind = claims.copy_kind(d_s, threshold)
    share = float(np.mean(kind != "none"))
    if copy_rate is not None and not np.isclose(share, copy_rate, atol=1e-9):
        raise InputError(f"per-sample copy flags give a copy rate of {share:.4f}, the manifest "
                         f"says {copy_rate:.4f}: not the same train/test images or quantile")
    return kind


def transform_seen(reference: Reference, copies: Any, fresh: Any, *, n_boot: int, seed: int,
                   level: float) -> tuple[bool, np.ndarray, np.ndarray]:
    """Whether some layer sees transformed copies as copies (:func:`memlib.claims.enters_claim_1b`):
    its copy sensitivity E(t(copies)) − E(t(fresh)) (:func:`memlib.copy_sensitivity.measure`,
    paired draws of the m = min rows of both) has a CI below 0.

    copies, fresh: L layers of (m, D) features of t(training images of the reference's T) and
    t(held-out images), transformed alike row by row. Returns (seen, sensitivity (L,), its CI's
    upper ends (L,)).
    """
    from .bootstrap import percentile_ci, resample_indices
    from .copy_sensitivity import measure

    m = min(copies.n, fresh.n)
    rows = np.arange(m)
    sens = measure(reference, copies.subset(rows), fresh.subset(rows), resample_indices(m, n_boot, seed))
    _, hi = percentile_ci(sens.boot, level)
    return bool(np.any(hi < 0)), sens.point, hi


# --------------------------------------------------------------------------- rows


def _interval(summary, label):
    if summary is None or label not in set(summary.label):
        return float("nan"), float("nan"), float("nan")
    r = summary[summary.label == label].iloc[0]
    return float(r.value), float(r.ci_low), float(r.ci_high)


def _levels_text(levels):
    return "+".join(levels) if levels else "none"


def _row_1a(summary, per_set, n_sets, levels, n_layers, level):
    value, lo, hi = _interval(summary, hierarchical.POOLED)
    below = int((per_set.side == "below 0").sum()) if per_set is not None else 0
    metric = (f"mean over {n_sets} standard-zoo sets of the late-minus-early effect contrast "
              f"(last third minus first third of {n_layers} layers, each set against its model's own "
              f"training data); {level:.0%} hierarchical CI resampling {_levels_text(levels)}; "
              f"{below} of {n_sets} sets have their own CI below 0")
    return dict(claim=claims.CLAIM_1A,
                statement="C_T (effect size) of generated sets rises with depth (descriptive)",
                rule=claims.RULE_1A, metric=metric, value=value, ci_low=lo, ci_high=hi,
                paper_value="qualitative", verdict=claims.claim_1a_verdict(lo, below, n_sets))


def _row_1b(summary, per_set, n_sets, levels, n_layers, level):
    value, lo, hi = _interval(summary, hierarchical.POOLED)
    groups = [] if summary is None else [g for g in summary.label if g != hierarchical.POOLED]
    group_lows = {g: _interval(summary, g)[1] for g in groups}
    parts = "; ".join(f"{g}: {_interval(summary, g)[0]:+.3f} [{_interval(summary, g)[1]:+.3f}, "
                      f"{_interval(summary, g)[2]:+.3f}]" for g in groups)
    metric = (f"equal-weight mean over groups of the copy rows' late-minus-early effect contrast "
              f"({n_sets} set{'' if n_sets == 1 else 's'}: {parts or 'none'}); {level:.0%} hierarchical CI resampling "
              f"{_levels_text(levels)}")
    return dict(claim=claims.CLAIM_1B,
                statement="The copy signal weakens with depth (rows that copy only: the paper's reading)",
                rule=claims.RULE_1B, metric=metric, value=value, ci_low=lo, ci_high=hi,
                paper_value="qualitative", verdict=claims.claim_1b_verdict(lo, group_lows, n_sets))
