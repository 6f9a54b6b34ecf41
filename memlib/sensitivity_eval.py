"""Notebook 05's evaluators: every claim's verdict recomputed under one setting of the analysis
choices a referee questions (``n_cells``, ``pca_dim``, ``token``, ``final_norm``,
``image_size``, the size and the split of the public T, the generated-set size m).

Each evaluator, ``evaluator(study, sub, m) -> list[dict]``, takes a :class:`SettingStudy` (the
profile's study under one setting), the subset ``sub`` (``sensitivity_subset``) and the set size
m, and returns the claims.csv-style rows (claim, value, ci_low, ci_high, verdict) of its claims
(registered in :data:`EVALUATORS`, its claim names in :data:`CLAIMS_OF`), computed by the
same memlib functions the notebooks use (:func:`memlib.depth_signal.score_set` and
:func:`memlib.claims.depth_signal_claim` for claim 1; :func:`memlib.copy_sensitivity.measure_spaces`
and :func:`memlib.claims.copy_levels_claim` for claim 2;
:func:`memlib.fingerprint_study.run_fingerprinting` and :func:`memlib.claims.fingerprint_claims`
for claims 3-4). To cost minutes, they run on a stated subset of each claim's inputs
(``sensitivity_subset`` in the profile: fewer generated samples, bootstrap draws, mixtures and
seeds); their default row is therefore the subset's own verdict, which may differ from
``claims.csv``. :func:`memlib.sensitivity_grid.sensitivity_grid` varies one choice at a time.

Two choices are computed from the cache instead of embedding again: ``final_norm`` applies the
encoder's final LayerNorm to the cached raw CLS token of every layer (LayerNorm acts per token, so
this equals embedding with the norm up to float16 caching; CLS token only), and the size of T
takes its first images. ``image_size`` other than the profile's embeds everything again, so at
``sensitivity_large_image_size`` only claims 3-4 run, on ``sensitivity_large_subset``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from . import claims, copies, copy_sensitivity, depth_signal, fingerprint_study, metrics, zoo
from .bootstrap import resample_indices
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
    first images of T (None: all).
    """

    def __init__(self, params: dict[str, Any], settings: dict[str, Any]):
        p = {**params, **{k: settings[k] for k in STUDY_KEYS if k in settings}, "final_norm": False}
        if params["final_norm"]:
            raise ParameterError("sensitivity: the profile must use final_norm: false (the setting applies the norm)")
        self.apply_norm = bool(settings.get("final_norm", False))
        if self.apply_norm and p["token"] != "cls":
            raise ParameterError("sensitivity: final_norm from the cache needs token cls "
                                 "(the norm of a mean token is not the mean of normed tokens)")
        self.reference_n = settings.get("reference_n")
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


def depth_trend_rows(study: Study, sub: dict[str, Any], m: int) -> list[dict]:
    """Claim 1 (notebook 03's rule) on the subset: the copying gradient sets against their own
    training images, the KDE sweep around T and the mixtures of ``sub["mixture_families"]``'s
    first seed at ``sub["mixture_rho"]`` (every copy kind) against the seed's training window;
    the first m samples of each set, ``sub["n_bootstrap"]`` draws.

    Built from notebook 03's own sets, so that nothing is embedded twice: the gradient models'
    ``gradient_n_samples`` samples, the KDE sets of ``copy_m`` samples (copy rate of the whole
    set, as there), the mixtures from notebook 03's copies (``mixture_m``, ``mixture_rhos``; new
    copies when m or ρ needs more) and the base model's samples; each cut to its first m rows (:meth:`Study.features` ``first``). A
    set that does not copy is skipped before it is embedded. With another T, the KDE sets are
    new images, and only their first m are embedded."""
    P = study.params
    rho = sub["mixture_rho"]
    if m < 1:
        raise ParameterError(f"sensitivity: m must be a positive integer, got {m!r}")
    if not 0.0 < rho <= 1.0:
        raise ParameterError(f"sensitivity: mixture_rho must lie in (0, 1], got {rho!r}")
    boot = dict(n_boot=sub["n_bootstrap"], seed=P["seed"], level=P["ci_level"])
    contrasts = []

    def score(reference, gen, copy_rate, **labels):
        """gen: a callable giving the set's features, called only for a set that copies."""
        if claims.is_copying_set(labels["group"], copy_rate):
            contrasts.extend(depth_signal.score_set(reference, gen(), **boot, **labels)[1])

    for family, variant, seed in zoo.gradient_models(P):
        s = zoo.zoo_samples(family, seed, variant, P, n_samples=P["gradient_n_samples"], progress=False)
        score(study.reference(train=s.manifest["train_spec"]),
              lambda: study.features(s.images, name=f"{family}-{variant}-s{seed}", first=m),
              s.manifest["copy_rate"], group="gradient", set=f"{family}-{variant}")
    train_T, test = study.images("reference_train"), study.images("test").images
    whole_kde = getattr(study, "default_t", True)      # notebook 03 embedded these whole sets
    n_kde = max(m, P["copy_m"])                        # notebook 03's sets, unless m asks for more
    for sigma in P["kde_sigmas"]:
        samples, _ = copies.kde_samples(train_T.images, sigma=sigma, m=n_kde, seed=P["seed"])
        rate = metrics.copy_metrics(samples, train_T.images, test, quantile=P["zoo_copy_quantile"])["copy_rate"]
        score(study.reference(), lambda: study.features(samples, name=f"kde-{sigma:g}", first=m,
                                                        whole_set_used=whole_kde),
              rate, group="kde", set=f"kde-{sigma:g}")
    if not sub["mixture_families"] or not P["mixture_kinds"]:
        return _depth_claim(study, contrasts)
    # notebook 03's copies (cached) when they suffice, else copies for m at rho (embedded here)
    notebook_copies = m <= P["mixture_m"] and rho <= max(P["mixture_rhos"])
    src = (depth_signal.mixture_sources(len(study.images("zoo_train")), P["mixture_m"], P["mixture_rhos"], P["seed"])
           if notebook_copies else depth_signal.mixture_sources(len(study.images("zoo_train")), m, [rho], P["seed"]))
    seed0 = P["zoo_seeds"][0]
    spec = zoo.seed_train_spec(P, seed0)
    own, train = study.reference(train=spec), study.images(spec)
    for kind, strength in P["mixture_kinds"].items():
        copied = (study.features(train).subset(src) if kind == "exact" else
                  study.features(copies.make_copies(kind, train.images[src], strength=strength, seed=P["seed"]),
                                 name=f"mixture-{kind}"))
        for family in sub["mixture_families"]:
            s = zoo.zoo_samples(family, seed0, "standard", P, progress=False)
            base = study.features(s.images, name=f"{family}-standard-s{seed0}", first=m)
            score(own, lambda: depth_signal.mixture_features(base, copied, rho), float("nan"),
                  group="mixture", set=f"{family}+{kind}")
    return _depth_claim(study, contrasts)


def _depth_claim(study: Study, contrasts: list[dict]) -> list[dict]:
    table = pd.DataFrame(contrasts, columns=["group", "set", "draw", "contrast"])
    return [claims.depth_signal_claim(table, level=study.params["ci_level"], n_layers=study.reference().n_layers)]


# --------------------------------------------------------------------------- claim 2


def copy_levels_rows(study: Study, sub: dict[str, Any], m: int) -> list[dict]:
    """Claim 2 (notebook 02's rule) on the subset: notebook 02's ``copy_m`` copies of T's images
    and fresh images per condition (so their features are cached), of which the first m rows are
    scored, with the trained and shuffled encoders and pixels, ``sub["n_bootstrap"]`` paired draws."""
    P = study.params
    n = P["copy_m"]
    train = study.images("reference_train")
    source_index = copies.pick_sources(len(train), n, P["seed"])
    sources, fresh = train.images[source_index], study.images("fresh").images[:n]
    conditions = copy_sensitivity.conditions(P)
    made = {c: copies.make_copies(c[0], sources, strength=c[1], seed=P["seed"]) for c in conditions}
    made_fresh = {c: copies.make_copies(c[0], fresh, strength=c[1], seed=P["seed"]) for c in conditions}
    first = np.arange(min(m, n))

    def copies_features(encoder, kind, s):
        if kind == "exact":
            return study.features(train, encoder=encoder).subset(source_index[first])
        return study.features(made[kind, s], encoder=encoder, name=f"copies-{kind}-{s:g}").subset(first)

    def fresh_features(encoder, kind, s):
        return study.features(made_fresh[kind, s], encoder=encoder, name=f"fresh-{kind}-{s:g}").subset(first)

    spaces = [P["encoder"], P["encoder"] + "+shuffled", "pixels"]
    sens = copy_sensitivity.measure_spaces(spaces, conditions, lambda e: study.reference(encoder=e),
                                           copies_features, fresh_features,
                                           resample_indices(len(first), sub["n_bootstrap"], P["seed"]), progress=False)
    contrasts = copy_sensitivity.contrast_table(sens, P["encoder"], P["ci_level"])
    return [claims.copy_levels_claim(contrasts, copy_sensitivity.crossing_table(sens), encoder=P["encoder"],
                                     n_layers=study.reference().n_layers, level=P["ci_level"])]


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
    return fingerprint_study.claim_rows(run, level=P["ci_level"], seed=P["seed"])


EVALUATORS: dict[str, Callable[[Study, dict, int], list[dict]]] = {
    "1": depth_trend_rows, "2": copy_levels_rows, "3-4": fingerprint_rows}


def claims_run(params: dict[str, Any], settings: dict[str, Any]) -> dict[str, str]:
    """Which evaluators a setting runs: {evaluator: "" (runs) or why not}. An image size other
    than the profile's embeds every input again: only claims 3-4 run there (on
    ``sensitivity_large_subset`` at ``sensitivity_large_image_size``). Another T (size or split)
    changes claim 2's copies, which are copies of T's images: 15 conditions × 2 sets × copy_m
    images × 2 encoders to embed again, so claim 2 does not run there."""
    other_size = settings.get("image_size", params["image_size"]) != params["image_size"]
    other_t = (settings.get("reference_split", "default") != "default"
               or settings.get("reference_n") not in (None, default_reference_n(params)))
    n_copies = 2 * 2 * params["copy_m"] * len(copy_sensitivity.conditions(params))
    why = {"1": "", "2": "", "3-4": ""}
    if other_size:
        why["1"] = why["2"] = f"image size {settings['image_size']} px: every input embedded again"
    elif other_t:
        why["2"] = f"another T: its copies are new images ({n_copies} to embed)"
    return why


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


def evaluate(params: dict[str, Any], settings: dict[str, Any]) -> list[dict]:
    """Every claim's rows under one setting (the ``evaluate`` of
    :func:`memlib.sensitivity_grid.sensitivity_grid`), each with the seconds its evaluator took
    (shared equally by the rows of claims 3-4) and, for a claim not run, why
    (:func:`claims_run`; verdict :data:`NOT_RUN`). Where the setting leaves C_T undefined for
    one of a claim's sets (a kept cell without test or training points: many cells around a
    small T, :func:`memlib.ct.Reference.subset_curves`), the claim's rows say so (verdict
    :data:`UNDEFINED`, the error in ``note``) instead of stopping the grid; at the defaults
    the error is raised, since every claim must be decided there. A claim whose number comes
    out NaN at a non-default setting (every cell of its sets holding too few generated points,
    e.g. many cells for m points) is :data:`UNDEFINED` too, never a flip.

    settings: the grid's choices (:data:`STUDY_KEYS`, ``final_norm``, ``reference_n``,
    ``reference_split``, ``m``).
    """
    import time

    sub = dict(params["sensitivity_subset"])
    s = dict(settings)
    is_default = all(s.get(k) == v for k, v in default_settings(params).items())
    large = s.get("image_size") == params["sensitivity_large_image_size"]
    if large:
        sub.update(params["sensitivity_large_subset"])
        s["reference_n"] = sub["reference_n"]
        s["m"] = min(int(s["m"]), sub["m"])
    why = claims_run(params, settings)
    study = setting_study(params, {k: v for k, v in s.items() if k != "m"})
    if large:
        study._images["test"] = study.images("test").subset(slice(0, sub["n_test"]))
    rows = []
    for name, evaluator in EVALUATORS.items():
        if why[name]:
            rows += [dict(claim=c, value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), verdict=NOT_RUN,
                          seconds=0.0, note=why[name]) for c in CLAIMS_OF[name]]
            continue
        start = time.perf_counter()
        try:
            got = evaluator(study, sub, int(s["m"]))
        except InputError as exc:
            if is_default:
                raise
            rows += [dict(claim=c, value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), verdict=UNDEFINED,
                          seconds=(time.perf_counter() - start) / len(CLAIMS_OF[name]),
                          note=f"C_T undefined at this setting: {exc}") for c in CLAIMS_OF[name]]
            continue
        took = (time.perf_counter() - start) / max(len(got), 1)
        note = (f"subset: m = {s['m']}, T = {sub['reference_n']} images, P_n = {sub['n_test']} images"
                if large else f"subset: m = {s['m']}")
        for r in got:
            undefined = not is_default and not np.isfinite(r["value"])
            rows.append(dict(claim=r["claim"], value=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                             verdict=UNDEFINED if undefined else r["verdict"], seconds=took,
                             note=_nan_note(s) if undefined else note))
    return rows


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

    def evaluate_one(settings):
        bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in settings.items() if v != defaults[k]) or "defaults")
        rows = evaluate(params, settings)
        bar.update()
        return rows

    table = sensitivity_grid(evaluate_one, defaults, grid)
    bar.close()
    table["value"] = ["none" if v is None else v for v in table.value]   # pca_dim: null = no PCA
    table.loc[not_run_mask(table), "flips"] = False
    return table


CLAIMS_OF = {"1": ["1-depth-trend"], "2": ["2-memorization-levels"],
             "3-4": ["3-architecture-signature", "4a-fingerprint-full", "4b-vs-ct-baselines",
                     "4b-vs-feature-baselines"]}


def not_run_mask(table) -> np.ndarray:
    """Rows of a sensitivity table whose claim was not decided at that setting: not run
    (:data:`NOT_RUN`) or C_T undefined there (:data:`UNDEFINED`)."""
    return table.verdict.isin([NOT_RUN, UNDEFINED]).to_numpy()
