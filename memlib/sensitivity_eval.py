"""Notebook 05's evaluators: every claim's verdict recomputed under one setting of the analysis
choices a referee questions (``n_cells``, ``pca_dim``, ``token``, ``final_norm``,
``image_size``, the size and the split of the public T, the generated-set size m).

Each evaluator, ``evaluator(study, sub, m) -> list[dict]``, takes a :class:`SettingStudy` (the
profile's study under one setting), the subset ``sub`` (``sensitivity_subset``) and the set size
m, and returns the claims.csv-style rows (claim, value, ci_low, ci_high, verdict) of its claims
(registered in :data:`EVALUATORS`, its claim names in :data:`CLAIMS_OF`), computed by the
same memlib functions the notebooks use (:class:`memlib.copy_depth.ClaimOneSets` and
:func:`memlib.copy_depth.run_claim_1` for claims 1a and 1b, with their groups' numbers;
:mod:`memlib.copy_levels` for claim 2 (as notebook 02);
:func:`memlib.fingerprint_study.run_fingerprinting` and :func:`memlib.claims.fingerprint_claims`
for claims 3-4). To cost minutes, they run on a stated subset of each claim's inputs
(``sensitivity_subset`` in the profile: fewer generated samples, bootstrap draws, mixtures and
seeds); their default row is therefore the subset's own verdict, which may differ from
``claims.csv``. :func:`memlib.sensitivity_grid.sensitivity_grid` varies one choice at a time.

Two choices are computed from the cache instead of embedding again: ``final_norm`` applies the
encoder's final LayerNorm to the cached raw CLS token of every layer (LayerNorm acts per token, so
this equals embedding with the norm up to float16 caching; CLS token only), and the size of T
takes its first images. ``image_size`` other than the profile's embeds everything again, so
every claim runs only at ``sensitivity_large_image_size``, on ``sensitivity_large_subset``
(claims 3-4 alone at other sizes). Claim 1 scores every set against its generator's own
training data, never the public T: at another T its rows are the defaults' (:data:`IGNORES`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from . import claims, copies, copy_depth, copy_levels, copy_sensitivity, fingerprint_study, hierarchical, zoo
from .ct import MIN_CELL_POINTS
from .data import head_spec
from .encoders import shared_encoder
from .errors import InputError, ParameterError
from .features import LayerFeatures
from .study import Study

STUDY_KEYS = ("n_cells", "pca_dim", "token", "image_size", "reference_train")
NOT_RUN = "not run"   # the verdict of a claim a setting does not compute (its cost is stated)
UNDEFINED = "C_T undefined"   # the verdict where the setting leaves C_T undefined for a set the claim needs


class SettingStudy(Study):
    """The profile's :class:`~memlib.study.Study` under one setting of the grid.

    settings: values of :data:`STUDY_KEYS` replace the profile's; ``final_norm`` (bool) applies
    the final LayerNorm to the cached raw CLS features of every layer; ``reference_n`` keeps the
    first images of T (None: all). ``cached_sets``: whether the image size is the profile's, so
    that notebooks 02-04 embedded whole sets that an evaluator can cut rows from (else it
    embeds only the rows it uses).

    It always reads full features (``feature_store: full``, whatever the profile says): the
    grid changes what the projected store's basis is keyed by (T, its size, the token,
    ``pca_dim``, null included) and its ``final_norm`` setting transforms features after the
    cache, so no public basis serves it (docs/scale.md).
    """

    def __init__(self, params: dict[str, Any], settings: dict[str, Any]):
        p = {**params, **{k: settings[k] for k in STUDY_KEYS if k in settings}, "final_norm": False,
             "feature_store": "full"}
        if params["final_norm"]:
            raise ParameterError("sensitivity: the profile must use final_norm: false (the setting applies the norm)")
        self.apply_norm = bool(settings.get("final_norm", False))
        if self.apply_norm and p["token"] != "cls":
            raise ParameterError("sensitivity: final_norm from the cache needs token cls "
                                 "(the norm of a mean token is not the mean of normed tokens)")
        self.reference_n = settings.get("reference_n")
        self.cached_sets = p["image_size"] == params["image_size"]   # notebooks 02-04 embedded whole sets here
        self.default_t = (p["reference_train"] == params["reference_train"]
                          and self.reference_n in (None, default_reference_n(params)))
        super().__init__(p)

    def images(self, key: str):
        if key == "reference_train" and self.reference_n:
            return super().images(head_spec(self.params["reference_train"], int(self.reference_n)))
        return super().images(key)

    def features(self, images, *, encoder: str | None = None, token: str | None = None,
                 first: int | None = None, whole_set_used: bool = True, **kw) -> LayerFeatures:
        if first is not None and whole_set_used and (encoder or self.params["encoder"]) == self.params["encoder"]:
            # as Study.features: cut from the whole set's features (here already normed: norm once)
            whole = self.features(images, encoder=encoder, token=token, **kw)
            return whole if first >= whole.n else whole.subset(np.arange(first))
        f = super().features(images, encoder=encoder, token=token, first=first, whole_set_used=whole_set_used, **kw)
        name = encoder or self.params["encoder"]
        if not self.apply_norm or name == "pixels":
            return f
        enc = shared_encoder(name, self.params["image_size"], self.params["device"], self.params["precision"])
        return LayerFeatures([enc.apply_final_norm(f[l]) for l in range(len(f))], {**f.meta, "final_norm": "cached"})

    def final_norm_features(self, feats: LayerFeatures) -> LayerFeatures:
        if self.apply_norm:   # already normed
            return LayerFeatures([feats[len(feats) - 1]], dict(feats.meta))
        return super().final_norm_features(feats)


def setting_study(params: dict[str, Any], settings: dict[str, Any]) -> SettingStudy:
    """:class:`SettingStudy` with the T split name of the grid resolved: ``reference_split``
    ``default`` keeps ``reference_train``, anything else is a spec of another public split."""
    s = dict(settings)
    split = s.pop("reference_split", "default")
    if split != "default":
        s["reference_train"] = split
    return SettingStudy(params, s)


# --------------------------------------------------------------------------- claim 1


def claim_1_sets(study: Study, sub: dict[str, Any], m: int) -> tuple[copy_depth.ClaimOneSets, dict]:
    """Claim 1's sets on the subset, built by :class:`memlib.copy_depth.ClaimOneSets` as notebook
    03 builds them, with every set cut to its first m rows: (the sets, reference key -> its
    ``reference_draws`` draws).

    * 1a: the standard models of the first ``sub["claim1_seeds"]`` seeds, each against the
      first n_T images of its own training window;
    * 1b, gradient: the sets of :func:`memlib.zoo.gradient_models` that copy
      (:func:`memlib.claims.is_copying_set` on the manifest; the others leave 1b and are not
      embedded), their near-copy rows by the manifest's per-sample flag
      (:func:`memlib.copy_depth.copy_rows` on the whole set, then its first m), each against
      its whole training set (n images);
    * 1b, fresh-padded: round(ρ·m) copies of each ``mixture_kinds`` kind (ρ =
      ``sub["mixture_rho"]``) of images of the first seed's T, then fresh images, against that
      T; a kind enters if some layer sees it as a copy (:func:`memlib.copy_depth.transform_seen`
      on the first reference draw, copies against fresh images transformed alike).

    n_T = ``own_reference_n``, or ``sub["reference_n"]`` where smaller (the large image size).
    The fresh-padded copies are copies of T's first n_T images (notebook 03 copies images of the
    whole window, against the whole window). The sets' features are cut from the cached whole
    sets where :attr:`SettingStudy.cached_sets` (else only their first rows are embedded).
    """
    P = study.params
    rho = sub["mixture_rho"]
    if m < 1:
        raise ParameterError(f"sensitivity: m must be a positive integer, got {m!r}")
    if not 0.0 < rho <= 1.0:
        raise ParameterError(f"sensitivity: mixture_rho must lie in (0, 1], got {rho!r}")
    whole = getattr(study, "cached_sets", True)
    n_t = int(min(P["own_reference_n"], sub.get("reference_n") or P["own_reference_n"]))
    refs: dict[str, list] = {}

    def draws_of(key, **how):
        if key not in refs:
            refs[key] = study.reference_draws(**how)
        return refs[key]

    def first(images, name):
        return study.features(images, name=name, first=m, whole_set_used=whole)

    sets = copy_depth.ClaimOneSets()
    seeds = P["zoo_seeds"][: int(sub["claim1_seeds"])]
    for family, variant, seed in zoo.zoo_models(P):
        if variant != "standard" or seed not in seeds:
            continue
        s = zoo.zoo_samples(family, seed, variant, P, progress=False)
        spec = s.manifest["train_spec"]
        key = f"{spec}[:{n_t}]"
        r = draws_of(key, train=spec, n_train=n_t, whole_set_used=False)
        sets.add_zoo(f"{family}-{variant}-s{seed}", copy_depth.distances(r, first(s.images, f"{family}-{variant}-s{seed}")),
                     reference=key, cluster=family, copy_rate=s.manifest["copy_rate"])
    test_pixels = study.images(P["test"]).images   # the manifests' copy threshold: the profile's whole test set
    for family, variant, seed in zoo.gradient_models(P):
        s = zoo.zoo_samples(family, seed, variant, P, n_samples=P["gradient_n_samples"], progress=False)
        rate = s.manifest["copy_rate"]
        if not claims.is_copying_set("gradient", rate):
            continue
        spec = s.manifest["train_spec"]
        kind = copy_depth.copy_rows(s.images, study.images(spec).images, test_pixels,
                                    quantile=P["zoo_copy_quantile"], copy_rate=rate)
        name = f"{family}-{variant}-s{seed}"
        feats = first(s.images, name)
        sets.add_gradient(name, copy_depth.distances(draws_of(spec, train=spec), feats), kind[: feats.n],
                          reference=spec, cluster=family, copy_rate=rate)
    kinds = P["mixture_kinds"]
    if kinds:
        spec = zoo.seed_train_spec(P, P["zoo_seeds"][0])
        key = f"{spec}[:{n_t}]"
        r = draws_of(key, train=spec, n_train=n_t, whole_set_used=False)
        k = copies.n_copies(m, rho)
        src = copies.pick_sources(n_t, k, P["seed"])
        train, fresh = study.images(spec), study.images("fresh")
        t_feats = study.features(train, first=n_t, whole_set_used=False)
        made = {kind: (t_feats.subset(src) if kind == "exact" else study.features(
            copies.make_copies(kind, train.images[src], strength=strength, seed=P["seed"]), name=f"sens-{kind}"))
            for kind, strength in kinds.items()}
        seen = {kind: copy_depth.transform_seen(r[0], made[kind], study.features(
            copies.make_copies(kind, fresh.images[:k], strength=strength, seed=P["seed"]), name=f"sens-fresh-{kind}"),
            n_boot=sub["n_bootstrap"], seed=P["seed"], level=P["ci_level"])[0]
            for kind, strength in kinds.items() if kind != "exact"}
        copy_d = {kind: copy_depth.distances(r, f) for kind, f in made.items()}
        fresh_d = copy_depth.distances(r, study.features(fresh, first=m - k, whole_set_used=whole))
        sets.add_fresh_padded(copy_d, fresh_d, [rho], m, seen, reference=key)
    return sets, refs


def claim_1_rows(study: Study, sub: dict[str, Any], m: int) -> list[dict]:
    """Claims 1a and 1b (notebook 03's rules, :func:`memlib.copy_depth.run_claim_1`) on the
    subset's sets (:func:`claim_1_sets`), ``sub["n_bootstrap"]`` hierarchical draws, no
    decomposition table. Each row carries its groups' numbers (:func:`group_columns`) and a
    note that states the subset."""
    sets, refs = claim_1_sets(study, sub, m)
    P = study.params
    n_layers = next(iter(refs.values()))[0].n_layers
    run = sets.run(refs, n_boot=sub["n_bootstrap"], seed=P["seed"], level=P["ci_level"], n_layers=n_layers,
                   decompose=False)
    groups = copy_depth.group_numbers(run)
    n_t = int(min(P["own_reference_n"], sub.get("reference_n") or P["own_reference_n"]))
    note = (f"subset: first m = {m} rows of each set; 1a: standard models of seed(s) "
            f"{P['zoo_seeds'][: int(sub['claim1_seeds'])]} vs the first {n_t} images of their training data; "
            f"1b: the copying gradient sets' near copies vs their whole training sets, fresh-padded copies at "
            f"rho = {sub['mixture_rho']:g} of the first seed's first {n_t} training images; "
            f"{P['reference_draws']} P_n draws of {len(study.images('test'))} test images; "
            f"{sub['n_bootstrap']} hierarchical draws")
    return [dict(r, note=note, **group_columns(groups[groups.claim == r["claim"]])) for r in run.rows]


def group_columns(groups: pd.DataFrame) -> dict[str, Any]:
    """One claim's per-group numbers (:func:`memlib.copy_depth.group_numbers`) as the extra
    columns of its sensitivity.csv row: ``<group>_metric``, ``<group>_ci_low``, ``<group>_ci_high``,
    ``<group>_n_sets`` for every group (``zoo`` for 1a; ``gradient``, ``mixture`` for 1b), the
    pooled number's set count ``n_sets`` and the levels its interval resampled (``resample``)."""
    out: dict[str, Any] = {}
    for r in groups.itertuples():
        if r.group == hierarchical.POOLED:
            out.update(n_sets=int(r.n_sets), resample=r.resample)
        else:
            out.update({f"{r.group}_metric": r.value, f"{r.group}_ci_low": r.ci_low,
                        f"{r.group}_ci_high": r.ci_high, f"{r.group}_n_sets": int(r.n_sets)})
    return out


# --------------------------------------------------------------------------- claim 2


def copy_levels_rows(study: Study, sub: dict[str, Any], m: int) -> list[dict]:
    """Claim 2 (notebook 02's rule) on the subset: notebook 02's ``copy_m`` copies of T's images
    and fresh images per condition (so their features are cached), of which the first m rows are
    scored, with the trained and shuffled encoders and pixels, ``sub["n_bootstrap"]`` paired draws.

    Where the study's sets are not cached (:attr:`SettingStudy.cached_sets` False: another image
    size), only the first m rows of each condition are embedded, and ``sub["claim2_strengths"]``
    (if given) keeps that many of each kind's strengths (:func:`strength_subset`)."""
    P = study.params
    whole = getattr(study, "cached_sets", True)
    if not whole and sub.get("claim2_strengths"):
        P = strength_subset(P, int(sub["claim2_strengths"]))
    cond = copy_levels.make_conditions(study, P)
    first = np.arange(min(m, cond.m))
    sens = copy_levels.measure(study, cond, n_boot=sub["n_bootstrap"], rows=len(first), whole=whole)
    row = copy_levels.claim_tables(sens, encoder=P["encoder"], n_layers=study.reference().n_layers,
                                   level=P["ci_level"]).row
    train = cond.train
    if not whole:
        row["note"] = (f"subset: first m = {len(first)} copies and fresh images per condition; strengths "
                       f"low-level {P['low_strengths']}, high-level {P['high_strengths']}; "
                       f"T = {len(train)} images, P_n = {len(study.images('test'))} images")
    return [row]


def strength_subset(params: dict[str, Any], k: int) -> dict[str, Any]:
    """``params`` with at most k of each kind's copy strengths (``low_strengths``,
    ``high_strengths``): evenly spaced over the list, its mildest and strongest kept."""
    def pick(values):
        values = list(values)
        if k >= len(values):
            return values
        if k < 2:
            raise ParameterError(f"sensitivity: claim2_strengths must be >= 2, got {k}")
        return [values[i] for i in sorted(set(np.linspace(0, len(values) - 1, k).round().astype(int)))]
    return {**params, "low_strengths": pick(params["low_strengths"]), "high_strengths": pick(params["high_strengths"])}


# --------------------------------------------------------------------------- claims 3-4


def fingerprint_rows(study: Study, sub: dict[str, Any], m: int) -> list[dict]:
    """Claims 3-4 (notebook 04's rules) on the subset: the standard models of the first
    ``sub["fingerprint_seeds"]`` seeds, their first m samples, queries of ``sub["query_size"]``
    and m samples, ``sub["n_query_draws"]`` draws, no corrupted queries."""
    P = study.params
    seeds = P["zoo_seeds"][: sub["fingerprint_seeds"]]
    images = {(a, s): zoo.zoo_samples(a, s, "standard", P, progress=False).images[:m]
              for a, v, s in zoo.zoo_models(P) if v == "standard" and s in seeds}
    run = fingerprint_study.run_fingerprinting(study, images, zoo.family_of, sizes=[min(sub["query_size"], m), m],
                                               n_draws=sub["n_query_draws"], level=P["ci_level"], progress=False)
    rows = fingerprint_study.claim_rows(run, level=P["ci_level"], seed=P["seed"])
    return [r for r in rows if r["claim"] in CLAIMS_OF["3-4"]]   # the grid varies the primary claims only


EVALUATORS: dict[str, Callable[[Study, dict, int], list[dict]]] = {
    "1": claim_1_rows, "2": copy_levels_rows, "3-4": fingerprint_rows}


def claims_run(params: dict[str, Any], settings: dict[str, Any]) -> dict[str, str]:
    """Which evaluators a setting runs: {evaluator: "" (runs) or why not}. An image size other
    than the profile's embeds every input again: at ``sensitivity_large_image_size`` every claim
    runs, on ``sensitivity_large_subset``; at any other size only claims 3-4 do. Another T (size
    or split) changes claim 2's copies, which are copies of T's images: 15 conditions × 2 sets ×
    copy_m images × 2 encoders to embed again, so claim 2 does not run there (claim 1 does not
    read T: :data:`IGNORES`)."""
    size = settings.get("image_size", params["image_size"])
    other_size = size != params["image_size"] and size != params["sensitivity_large_image_size"]
    other_t = (settings.get("reference_split", "default") != "default"
               or settings.get("reference_n") not in (None, default_reference_n(params)))
    n_copies = 2 * 2 * params["copy_m"] * len(copy_sensitivity.conditions(params))
    why = {"1": "", "2": "", "3-4": ""}
    if other_size:
        why["1"] = why["2"] = (f"image size {size} px: every input embedded again (claims 1-2 run at "
                               f"{params['sensitivity_large_image_size']} px only)")
    elif other_t and size == params["image_size"]:
        why["2"] = f"another T: its copies are new images ({n_copies} to embed)"
    return why


# the choices an evaluator does not read: its rows there are the defaults' (evaluate's memo)
IGNORES = {"1": ("reference_n", "reference_split")}


def default_reference_n(params: dict[str, Any]) -> int:
    """The number of images in the profile's T (``reference_train``)."""
    from .data import spec_window
    _, _, start, stop = spec_window(params["reference_train"])
    return stop - start


def default_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The profile's value of every choice of the grid (the point the grid varies around)."""
    return {"n_cells": params["n_cells"], "pca_dim": params["pca_dim"], "token": params["token"],
            "final_norm": False, "image_size": params["image_size"],
            "reference_n": default_reference_n(params), "reference_split": "default",
            "m": params["sensitivity_m"]}


def evaluate(params: dict[str, Any], settings: dict[str, Any], memo: dict | None = None) -> list[dict]:
    """Every claim's rows under one setting (the ``evaluate`` of
    :func:`memlib.sensitivity_grid.sensitivity_grid`), each with the seconds its evaluator took
    (shared equally by its rows) and, for a claim not run, why
    (:func:`claims_run`; verdict :data:`NOT_RUN`). Where the setting leaves C_T undefined for
    one of a claim's sets (a kept cell without test or training points: many cells around a
    small T, :func:`memlib.ct.Reference.subset_curves`), the claim's rows say so (verdict
    :data:`UNDEFINED`, the error in ``note``) instead of stopping the grid; at the defaults
    the error is raised, since every claim must be decided there. A claim whose number comes
    out NaN at a non-default setting (every cell of its sets holding too few generated points,
    e.g. many cells for m points) is :data:`UNDEFINED` too, never a flip.

    At ``sensitivity_large_image_size`` every evaluator runs on ``sensitivity_large_subset``
    (T's first ``reference_n`` images, the first ``n_test`` test images, m at most ``m``; claim 1
    at most ``m_claim1``; claim 2 ``claim2_strengths`` strengths per kind), embedding only the
    rows it uses. Rows carry any extra keys their evaluator returns (claim 1: its groups'
    numbers, :func:`group_columns`) and a ``note`` stating the subset.

    settings: the grid's choices (:data:`STUDY_KEYS`, ``final_norm``, ``reference_n``,
    ``reference_split``, ``m``). memo: a dict shared by the calls of one grid; an evaluator's rows
    at a setting that differs from an earlier one only in choices it does not read
    (:data:`IGNORES`) are that setting's, not computed again (``seconds`` 0, said in ``note``).
    """
    import time

    sub = dict(params["sensitivity_subset"])
    s = dict(settings)
    is_default = all(s.get(k) == v for k, v in default_settings(params).items())
    large = s.get("image_size") == params["sensitivity_large_image_size"] != params["image_size"]
    m_of = {name: int(s["m"]) for name in EVALUATORS}
    if large:
        sub.update(params["sensitivity_large_subset"])
        s["reference_n"] = sub["reference_n"]
        m_of = {name: min(int(s["m"]), int(sub["m_claim1"] if name == "1" else sub["m"])) for name in EVALUATORS}
    why = claims_run(params, settings)
    study = setting_study(params, {k: v for k, v in s.items() if k != "m"})
    if large:
        study._images["test"] = study.images("test").subset(slice(0, sub["n_test"]))
    rows = []
    for name, evaluator in EVALUATORS.items():
        m = m_of[name]
        if why[name]:
            rows += [dict(claim=c, value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), verdict=NOT_RUN,
                          seconds=0.0, note=why[name]) for c in CLAIMS_OF[name]]
            continue
        key = (name, repr(sorted((k, v) for k, v in settings.items() if k not in IGNORES.get(name, ()))))
        if memo is not None and key in memo:
            rows += [dict(r, seconds=0.0, note=f"{r['note']}; the rows of an evaluated setting: claim {name} does "
                                               f"not read {' or '.join(IGNORES[name])}") for r in memo[key]]
            continue
        start = time.perf_counter()
        try:
            got = evaluator(study, sub, m)
        except InputError as exc:
            if is_default:
                raise
            rows += [dict(claim=c, value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), verdict=UNDEFINED,
                          seconds=(time.perf_counter() - start) / len(CLAIMS_OF[name]),
                          note=f"C_T undefined at this setting: {exc}") for c in CLAIMS_OF[name]]
            continue
        took = (time.perf_counter() - start) / max(len(got), 1)
        note = (f"subset: m = {m}, T = {sub['reference_n']} images, P_n = {sub['n_test']} images"
                if large else f"subset: m = {m}")
        new = []
        for r in got:
            undefined = not is_default and not np.isfinite(r["value"])
            extra = {k: v for k, v in r.items() if k not in ROW_KEYS}
            new.append(dict(extra, claim=r["claim"], value=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                            verdict=UNDEFINED if undefined else r["verdict"], seconds=took,
                            note=_nan_note({**s, "m": m}) if undefined else r.get("note", note)))
        if memo is not None and name in IGNORES:
            memo[key] = new
        rows += new
    return rows


# keys of a claims.csv row that a sensitivity row does not carry (its text lives in claims.csv)
ROW_KEYS = ("claim", "value", "ci_low", "ci_high", "verdict", "note", "statement", "rule", "metric", "paper_value",
            "seconds")


def _nan_note(settings: dict[str, Any]) -> str:
    """Why a claim's number came out NaN at a setting: the cells hold too few generated points."""
    m, k = int(settings["m"]), int(settings["n_cells"])
    return (f"C_T undefined at this setting: the claim's number is NaN (m = {m} generated points in "
            f"{k} cells, {m / k:.0f} per cell on average; a cell is kept only with more than "
            f"{MIN_CELL_POINTS}, memlib.ct.MIN_CELL_POINTS)")


def sensitivity_table(params: dict[str, Any], progress: bool = True):
    """The one-at-a-time grid of ``sensitivity_grid`` around the profile's defaults
    (:func:`memlib.sensitivity_grid.sensitivity_grid` over :func:`evaluate`): one row per (claim,
    choice, value), with ``seconds`` and ``note``; a claim not run at a setting never counts as
    a flip."""
    from tqdm.auto import tqdm

    from .sensitivity_grid import one_at_a_time, sensitivity_grid

    defaults = default_settings(params)
    grid = dict(params["sensitivity_grid"])
    bar = tqdm(total=len({repr(sorted(st.items())) for _, _, st in one_at_a_time(defaults, grid)}),
               desc="settings", disable=not progress)

    memo: dict = {}

    def evaluate_one(settings):
        bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in settings.items() if v != defaults[k]) or "defaults")
        rows = evaluate(params, settings, memo)
        bar.update()
        return rows

    table = sensitivity_grid(evaluate_one, defaults, grid)
    bar.close()
    table["value"] = ["none" if v is None else v for v in table.value]   # pca_dim: null = no PCA
    table.loc[not_run_mask(table), "flips"] = False
    return table


CLAIMS_OF = {"1": [claims.CLAIM_1A, claims.CLAIM_1B], "2": ["2-memorization-levels"],
             "3-4": ["3-architecture-signature", "4a-fingerprint-full", "4b-vs-ct-baselines",
                     "4b-vs-feature-baselines"]}


def not_run_mask(table) -> np.ndarray:
    """Rows of a sensitivity table whose claim was not decided at that setting: not run
    (:data:`NOT_RUN`) or C_T undefined there (:data:`UNDEFINED`)."""
    return table.verdict.isin([NOT_RUN, UNDEFINED]).to_numpy()
