"""Every claim asked again in other embedding spaces (issue 36; notebook 06; docs/design.md,
"Trained encoders").

Every verdict of notebooks 02-04 was decided in one space: the profile's encoder (the
*checkpoint*; by default the saliency-fine-tuned DINOv2-S/14 at 112 px). Here each claim is
asked again with **its own rule** and **the same sets** in every space of :func:`spaces`: the
checkpoint, the encoders the study trains itself (:mod:`memlib.trained_encoders`: ``fmnist-vit``,
``fmnist-cnn``, at their native 28 px) and raw pixels. One :class:`memlib.study.Study` per space
(the profile's parameters with ``encoder`` replaced; :meth:`memlib.study.Study.encoder_name`
resolves a trained name and :meth:`~memlib.study.Study.image_size_of` gives its input size):

* claims 1a / 1b: :func:`claim_1_sets` builds notebook 03's sets with the same
  :class:`memlib.copy_depth.ClaimOneSets` calls (the standard zoo against its own training data;
  the gradient sets' copy rows; the mixtures and the fresh-padded sets; what 1b leaves out and
  why), :func:`memlib.copy_depth.run_claim_1` decides;
* claim 2: :mod:`memlib.copy_levels` (notebook 02's copies and fresh images, the space's encoder, its
  ``+shuffled`` control and pixels, :func:`memlib.claims.copy_levels_claim`);
* claims 3-4: notebook 04's standard zoo sets, :func:`memlib.fingerprint_study.run_fingerprinting`
  on clean queries (the rows read clean queries only), :func:`memlib.claims.fingerprint_claims`.

Pixels are one layer: no depth contrast (1a, 1b, 2) and no curve over layers (3-4; its "curve"
would be the final-layer C_T baseline itself), so every claim is ``untestable here`` there, with
the reason in ``note``. Layers are compared on a relative depth axis, block / number of blocks
(:func:`relative_depth`), since the spaces have 12, 6 and 6 blocks by default.

What it costs: every space embeds the sets once (cached by content; the checkpoint's were
embedded by notebooks 02-04). To fit the study's time budget the runs use a stated subset
(``embedding_spaces_subset``: bootstrap replicates and query draws); the checkpoint is re-run on
the same subset, so the spaces are compared with equal care, and its full-size verdicts stay in
``claims.csv``. The generality verdict of each claim is :func:`memlib.claims.generality_verdict`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import claims, copies, copy_depth, copy_levels, depth_signal, fingerprint_study, zoo
from .errors import InputError, ParameterError
from .study import Study

CLAIM_IDS = (claims.CLAIM_1A, claims.CLAIM_1B, "2-memorization-levels", "3-architecture-signature",
             "4a-fingerprint-full", "4b-vs-ct-baselines", "4b-vs-feature-baselines",
             claims.CLAIM_3_RECIPE, claims.CLAIM_3_RECIPE_FAMILY)
RECIPE_CLAIMS = (claims.CLAIM_3_RECIPE, claims.CLAIM_3_RECIPE_FAMILY)
NO_RECIPES = "no training recipes in the profile (zoo_recipes is empty): nothing to compare across recipes"
TABLE_COLUMNS = ["claim", "encoder", "kind", "n_layers", "image_size", "value", "ci_low", "ci_high",
                 "verdict", "note"]
LAYER_COLUMNS = ["claim", "encoder", "kind", "quantity", "layer", "n_layers", "depth", "value"]
GENERALITY_ENCODER = "(generality)"   # the encoder column of a generality row
PIXEL_WHY = {
    claims.CLAIM_1A: "pixels are one layer: no late-minus-early contrast",
    claims.CLAIM_1B: "pixels are one layer: no late-minus-early contrast",
    "2-memorization-levels": "pixels are one layer: no early or late layers (pixels are one of "
                             "claim 2's references in every other space)",
}
PIXEL_WHY_3_4 = ("pixels are one layer: the 'curve' is one C_T number, the final-layer C_T baseline "
                 "itself, and there is no final norm")


def spaces(params: Mapping[str, Any]) -> dict[str, str]:
    """The spaces of notebook 06, name -> kind (:data:`memlib.claims.SPACE_KINDS`): the profile's
    ``encoder`` (``checkpoint``), every trained encoder of the profile (``vit`` or ``cnn``, its
    recipe's kind), and ``pixels``."""
    from .trained_encoders import recipes
    out = {params["encoder"]: "checkpoint"}
    out.update({name: r["kind"] for name, r in recipes(params).items()})
    out["pixels"] = "pixels"
    return out


def relative_depth(layer, n_layers: int) -> np.ndarray:
    """Block / number of blocks: layer l (1-based) of L at depth l / L in (0, 1] (1 = the last)."""
    return np.asarray(layer, dtype=np.float64) / float(n_layers)


def space_study(params: Mapping[str, Any], encoder: str) -> Study:
    """The profile's :class:`~memlib.study.Study` with ``encoder`` as its own (figures go nowhere:
    notebook 06 writes through its own Study)."""
    return Study({**params, "encoder": encoder})


# --------------------------------------------------------------------------- claim 1 (1a, 1b)


@dataclass
class SpaceClaimOne:
    """Claim 1's sets in one space: ``sets`` (:class:`memlib.copy_depth.ClaimOneSets`: 1a's
    zoo sets, 1b's (set, part) pairs, every other scored set, what was left out of 1b and why),
    ``references`` (reference key -> its reference draws), ``seen`` (mixture transform ->
    whether some layer sees it as a copy) and ``n_layers`` (L)."""

    sets: copy_depth.ClaimOneSets
    references: dict
    seen: dict
    n_layers: int


def name_of(key: tuple) -> str:
    """``<architecture>-<variant>-s<seed>`` of a zoo key (family, variant, seed)."""
    return f"{key[0]}-{key[1]}-s{key[2]}"


def claim_1_sets(study: Study, sets: Mapping[tuple, Any], grad_sets: Mapping[tuple, Any], *,
                 n_boot: int, progress: bool = False) -> SpaceClaimOne:
    """Notebook 03's claim-1 sets in ``study``'s space (its encoder), scored on reference draws,
    built with the same :class:`memlib.copy_depth.ClaimOneSets` calls in the same order.

    sets: (family, variant, seed) -> :class:`memlib.zoo.ZooSamples` of the zoo (1a takes the
    ``standard`` ones; the mixtures the first seed's); grad_sets: the same for the memorization
    gradient (``gradient_n_samples`` each). n_boot: bootstrap replicates of the transform check
    (:func:`memlib.copy_depth.transform_seen`). Everything else comes from ``study.params``:
    ``own_reference_n``, ``zoo_train``, ``mixture_m``, ``mixture_rhos``, ``mixture_kinds``,
    ``fresh``, ``zoo_copy_quantile``, ``seed``, ``ci_level``.
    """
    from tqdm.auto import tqdm

    P = study.params
    quiet = not progress
    boot = dict(n_boot=n_boot, seed=P["seed"], level=P["ci_level"])
    refs: dict[str, list] = {}

    def draws_of(key, **how):
        if key not in refs:
            refs[key] = study.reference_draws(**how)
        return refs[key]

    test_images = study.images("test").images
    c1 = copy_depth.ClaimOneSets()
    standard = [k for k in sets if k[1] == "standard"]
    feats = {k: study.features(sets[k].images, name=name_of(k)) for k in tqdm(standard, desc="zoo sets", disable=quiet)}
    for key in standard:   # 1a: every standard model against its own training data
        spec = sets[key].manifest["train_spec"]
        ref_key = f"{spec}[:{P['own_reference_n']}]"
        r = draws_of(ref_key, train=spec, n_train=P["own_reference_n"], whole_set_used=False)
        c1.add_zoo(name_of(key), copy_depth.distances(r, feats[key]), reference=ref_key, cluster=key[0],
                   copy_rate=sets[key].manifest["copy_rate"])
    for key, s in tqdm(list(grad_sets.items()), desc="gradient sets", disable=quiet):   # 1b: near-copy rows
        spec = s.manifest["train_spec"]
        kind = copy_depth.copy_rows(s.images, study.images(spec).images, test_images,
                                    quantile=P["zoo_copy_quantile"], copy_rate=s.manifest["copy_rate"])
        c1.add_gradient(name_of(key), copy_depth.distances(draws_of(spec, train=spec),
                                                           study.features(s.images, name=name_of(key))), kind,
                        reference=spec, cluster=key[0], copy_rate=s.manifest["copy_rate"])
    # mixtures: the first seed's standard models, a share rho replaced by copies of zoo_train's images
    own = P["zoo_train"]
    zoo_train = study.images("zoo_train")
    src = depth_signal.mixture_sources(len(zoo_train), P["mixture_m"], P["mixture_rhos"], P["seed"])
    copy_feats = {kind: (study.features(zoo_train).subset(src) if kind == "exact" else study.features(
        copies.make_copies(kind, zoo_train.images[src], strength=strength, seed=P["seed"]), name=f"mixture-{kind}"))
        for kind, strength in P["mixture_kinds"].items()}
    fresh = study.images("fresh")
    seen = {kind: copy_depth.transform_seen(study.reference(train=own), copy_feats[kind], study.features(
                copies.make_copies(kind, fresh.images[:len(src)], strength=strength, seed=P["seed"]),
                name=f"fresh-{kind}"), **boot)[0]
            for kind, strength in P["mixture_kinds"].items() if kind != "exact"}
    r_own = draws_of(own, train=own)
    copy_d = {kind: copy_depth.distances(r_own, copy_feats[kind]) for kind in P["mixture_kinds"]}
    fresh_d = copy_depth.distances(r_own, study.features(fresh))
    m_mix = P["mixture_m"]
    for key in [k for k in standard if k[2] == P["zoo_seeds"][0]]:
        c1.add_mixtures(name_of(key), copy_depth.distances(r_own, feats[key].subset(np.arange(m_mix))), copy_d,
                        P["mixture_rhos"], reference=own, cluster=key[0])
    c1.add_fresh_padded(copy_d, fresh_d, P["mixture_rhos"], m_mix, seen, reference=own)
    return SpaceClaimOne(c1, refs, seen, study.reference().n_layers)


def mean_part_curve(s: copy_depth.ScoredSet, references, part: str) -> np.ndarray:
    """(L,) effect of one part of a scored set, the mean over its reference draws (no bootstrap);
    NaN on a layer where no draw defines it (no cell keeps more than 20 of the part's rows)."""
    st = copy_depth.part_stat(s, references, part)
    whole = np.arange(st.m)[None]
    return _nanmean([st.score(r, whole)[0] for r in range(st.n_refs)])


def _nanmean(rows) -> np.ndarray:
    """Mean over the first axis ignoring NaN; NaN (without a warning) where every value is NaN."""
    a = np.asarray(rows, dtype=np.float64)
    n = np.isfinite(a).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)


def claim_1_rows(study: Study, inputs: SpaceClaimOne, *, n_boot: int) -> tuple[list[dict], pd.DataFrame]:
    """Claims 1a and 1b in one space (:func:`memlib.copy_depth.run_claim_1`, no decomposition
    table) and their per-layer curves: the mean effect over 1a's sets, and over 1b's copy rows
    (equal weight per set), rows of :data:`LAYER_COLUMNS` without encoder / kind."""
    P = study.params
    L = inputs.n_layers
    run = inputs.sets.run(inputs.references, n_boot=n_boot, seed=P["seed"], level=P["ci_level"],
                          n_layers=L, decompose=False)
    layers = []
    for claim, quantity, pairs in (
            (claims.CLAIM_1A, "effect, standard zoo vs own training data", [(s, copy_depth.ALL) for s in inputs.sets.zoo]),
            (claims.CLAIM_1B, "effect, copy rows", list(inputs.sets.copy_sets))):
        curves = [mean_part_curve(s, inputs.references[s.reference], part) for s, part in pairs]
        if not curves:
            continue
        mean = _nanmean(np.stack(curves))
        layers += [dict(claim=claim, quantity=quantity, layer=l + 1, n_layers=L,
                        depth=float(relative_depth(l + 1, L)), value=float(mean[l])) for l in range(L)]
    return run.rows, pd.DataFrame(layers)


# --------------------------------------------------------------------------- claim 2


def claim_2_rows(study: Study, *, n_boot: int, progress: bool = False) -> tuple[list[dict], pd.DataFrame]:
    """Claim 2 in one space: notebook 02's copies of T's images and fresh images (``copy_m``
    each, every condition of :func:`memlib.copy_sensitivity.conditions`), the space's encoder,
    its ``+shuffled`` control and pixels on the same paired draws, :func:`memlib.claims.copy_levels_claim`.
    Per-layer curves: the trained encoder's exact-copy sensitivity and the mean over strengths of
    each kind's (rows of :data:`LAYER_COLUMNS` without encoder / kind)."""
    P = study.params
    enc = P["encoder"]
    sens = copy_levels.measure(study, copy_levels.make_conditions(study), n_boot=n_boot, progress=progress)
    L = study.reference().n_layers
    result = copy_levels.claim_tables(sens, encoder=enc, n_layers=L, level=P["ci_level"])
    row = result.row
    table = result.table
    mine = table[table.encoder == enc].groupby(["kind", "layer"], as_index=False).sensitivity.mean()
    layers = [dict(claim="2-memorization-levels", quantity=f"copy sensitivity, {r.kind}"
                   + ("" if r.kind == "exact" else " (mean over strengths)"),
                   layer=int(r.layer), n_layers=L, depth=float(relative_depth(r.layer, L)), value=float(r.sensitivity))
              for r in mine.itertuples()]
    return [row], pd.DataFrame(layers)


# --------------------------------------------------------------------------- claims 3-4


def claims_3_4_rows(study: Study, images: Mapping[tuple, np.ndarray], *, n_draws: int,
                    recipe_images: Mapping[tuple, np.ndarray] | None = None,
                    train_data: Mapping[tuple, str] | None = None, progress: bool = False) -> list[dict]:
    """Claims 3, 4a and the two 4b rows in one space: notebook 04's standard zoo sets
    ({(architecture, seed): uint8 images}), every query size of ``query_sizes``, ``n_draws``
    subsets per (set, size), clean queries (the rows read clean queries only). With
    ``recipe_images`` ({(architecture, recipe, seed): images}) and ``train_data`` ({key: training
    spec} of every set), also claims 3-recipe and 3-recipe-family as notebook 04 asks them
    (:func:`memlib.recipe_eval.run_recipe_attribution`, no fold may leak); without, those two rows
    are ``untestable here``."""
    from . import recipe_eval

    P = study.params
    run = fingerprint_study.run_fingerprinting(study, dict(images), zoo.family_of, sizes=P["query_sizes"],
                                               n_draws=n_draws, level=P["ci_level"], progress=progress)
    rows = fingerprint_study.claim_rows(run, level=P["ci_level"], seed=P["seed"])
    if not recipe_images:
        return rows + [dict(claim=c, metric=NO_RECIPES, value=float("nan"), ci_low=float("nan"),
                            ci_high=float("nan"), verdict=claims.UNTESTABLE) for c in RECIPE_CLAIMS]
    rec = recipe_eval.run_recipe_attribution(study, run, dict(recipe_images), dict(train_data or {}), zoo.family_of,
                                             n_draws=n_draws, level=P["ci_level"], progress=progress)
    if rec.leaks:
        raise InputError("references share a training run, window or seed with a query: " + "; ".join(rec.leaks))
    return rows + recipe_eval.recipe_claim_rows(rec, zoo.family_of, level=P["ci_level"], seed=P["seed"])[0]


# --------------------------------------------------------------------------- every space


@dataclass
class EmbeddingSpaces:
    """What :func:`run` computed.

    table: one row per (claim, space) and the generality rows (:data:`TABLE_COLUMNS` and
    :data:`memlib.claims.HISTORY_COLUMNS`; generality rows have encoder :data:`GENERALITY_ENCODER`);
    layers: per-layer curves on the relative depth axis (:data:`LAYER_COLUMNS`); seconds: wall
    seconds per space and part (space, part, seconds); excluded: claim 1b's left-out rows per space.
    """

    table: pd.DataFrame
    layers: pd.DataFrame
    seconds: pd.DataFrame
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)


def pixel_reasons() -> dict[str, str]:
    """Why each claim of :data:`CLAIM_IDS` is untestable in pixels (one layer)."""
    return {**PIXEL_WHY, **{c: PIXEL_WHY_3_4 for c in CLAIM_IDS[3:]}}


def untestable_rows(encoder: str, kind: str, why: Mapping[str, str]) -> list[dict]:
    """``untestable here`` rows of :data:`CLAIM_IDS` for a space, ``why[claim]`` in ``note``."""
    return [dict(claim=c, encoder=encoder, kind=kind, value=float("nan"), ci_low=float("nan"),
                 ci_high=float("nan"), verdict=claims.UNTESTABLE, note=why[c]) for c in CLAIM_IDS]


def run(params: Mapping[str, Any], sets: Mapping[tuple, Any], grad_sets: Mapping[tuple, Any], *,
        subset: Mapping[str, Any], recipe_sets: Mapping[tuple, Any] | None = None, progress: bool = True,
        study_of: Callable[[str], Study] | None = None) -> EmbeddingSpaces:
    """Every claim in every space of :func:`spaces`, and each claim's generality verdict.

    sets, grad_sets: the zoo's and the gradient's samples (as :func:`claim_1_sets`); claims 3-4
    use the ``standard`` ones of ``sets``; recipe_sets: {(architecture, recipe, seed):
    :class:`memlib.zoo.ZooSamples`} of :func:`memlib.zoo.recipe_models` (claims 3-recipe and
    3-recipe-family; none: untestable). subset: ``embedding_spaces_subset`` (``n_bootstrap``:
    replicates of every interval; ``n_query_draws``: subsets per set and query size).
    study_of: encoder -> its Study (default :func:`space_study`).
    """
    for key in ("n_bootstrap", "n_query_draws"):
        if not isinstance(subset.get(key), int) or subset[key] < 1:
            raise ParameterError(f"embedding_spaces_subset.{key} must be an integer >= 1, got {subset.get(key)!r}")
    study_of = study_of or (lambda e: space_study(params, e))
    n_boot, n_draws = int(subset["n_bootstrap"]), int(subset["n_query_draws"])
    images = {(k[0], k[2]): s.images for k, s in sets.items() if k[1] == "standard"}
    recipe_images = {k: s.images for k, s in (recipe_sets or {}).items()}
    train_data = {**{(k[0], k[2]): s.manifest["train_spec"] for k, s in sets.items() if k[1] == "standard"},
                  **{k: s.manifest["train_spec"] for k, s in (recipe_sets or {}).items()}}
    rows, layers, seconds, excluded = [], [], [], []
    n_layers, sizes = {}, {}   # per space; pixels: one layer of the images as they are (28 px)
    note = f"subset: {n_boot} bootstrap replicates, {n_draws} query draws"
    for encoder, kind in spaces(params).items():
        if kind == "pixels":
            rows += untestable_rows(encoder, kind, pixel_reasons())
            n_layers[encoder], sizes[encoder] = 1, None
            continue
        study = study_of(encoder)
        n_layers[encoder], sizes[encoder] = study.reference().n_layers, study.image_size_of()
        start = time.perf_counter()
        inputs = claim_1_sets(study, sets, grad_sets, n_boot=n_boot, progress=progress)
        got1, lay1 = claim_1_rows(study, inputs, n_boot=n_boot)
        t1 = time.perf_counter()
        got2, lay2 = claim_2_rows(study, n_boot=n_boot, progress=progress)
        t2 = time.perf_counter()
        got34 = claims_3_4_rows(study, images, n_draws=n_draws, recipe_images=recipe_images,
                                train_data=train_data, progress=progress)
        t3 = time.perf_counter()
        seconds += [dict(encoder=encoder, part=p, seconds=s) for p, s in
                    (("claims 1a-1b", t1 - start), ("claim 2", t2 - t1), ("claims 3-4", t3 - t2))]
        excluded.append(pd.DataFrame(inputs.sets.excluded, columns=["set", "part", "reason"]).assign(encoder=encoder))
        for r in got1 + got2 + got34:
            rows.append(dict(claim=r["claim"], encoder=encoder, kind=kind, value=r["value"], ci_low=r["ci_low"],
                             ci_high=r["ci_high"], verdict=r["verdict"], note=f"{note}; {r['metric']}"))
        for lay in (lay1, lay2):
            layers.append(lay.assign(encoder=encoder, kind=kind))
    table = pd.DataFrame(rows)
    table["n_layers"] = table.encoder.map(n_layers).astype("Int64")
    table["image_size"] = table.encoder.map(sizes).astype("Int64")
    table = claims.with_rule_history(table[TABLE_COLUMNS])   # each claim's own rule and its history
    table = pd.concat([table, generality_rows(table, spaces(params))], ignore_index=True)
    table[["n_layers", "image_size"]] = table[["n_layers", "image_size"]].astype("Int64")
    lay = pd.concat(layers, ignore_index=True)[LAYER_COLUMNS] if layers else pd.DataFrame(columns=LAYER_COLUMNS)
    return EmbeddingSpaces(table, lay, pd.DataFrame(seconds, columns=["encoder", "part", "seconds"]),
                           pd.concat(excluded, ignore_index=True) if excluded else pd.DataFrame())


def generality_rows(table: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """One row per claim of ``table`` (rows claim, encoder, verdict): its generality verdict
    (:func:`memlib.claims.generality_verdict`) in ``verdict``, the spaces' verdicts in ``note``,
    the rule's history in :data:`memlib.claims.HISTORY_COLUMNS`."""
    out = []
    for claim, g in table[table.encoder != GENERALITY_ENCODER].groupby("claim", sort=False):
        verdicts = dict(zip(g.encoder, g.verdict))
        out.append(dict(claim=claim, encoder=GENERALITY_ENCODER, kind="", value=float("nan"),
                        ci_low=float("nan"), ci_high=float("nan"),
                        verdict=claims.generality_verdict(verdicts, dict(kinds)),
                        note="; ".join(f"{e} ({kinds[e]}): {v}" for e, v in verdicts.items())
                        + f". Rule: {claims.RULE_GENERALITY}"))
    return claims.with_generality_history(pd.DataFrame(out, columns=TABLE_COLUMNS))
