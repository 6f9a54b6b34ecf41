"""The verdict rules of the study, once: each paper claim's rule, its thresholds and its tables.

Each rule was fixed before looking at results; the notebooks state it in words, call the
function here and write the row it returns with :meth:`memlib.study.Study.claims` into
``claims.csv`` (columns :data:`CLAIM_COLUMNS`, verdict one of :data:`VERDICTS`). Every threshold
is a module constant below; the rules compare with ``>=`` / ``>`` / ``<`` exactly as written.

=========================== ======== ==========================================================
claim                       notebook rule (row builder / verdict function)
=========================== ======== ==========================================================
1 depth trend               03       :func:`depth_trend_claim` / :func:`depth_trend_verdict`
2 memorization levels       02       :func:`memorization_levels_claim` /
                                     :func:`memorization_levels_verdict`
3 architecture signature    04       :func:`fingerprint_claims` / :func:`signature_verdict`
4a fingerprint, full sets   04       :func:`fingerprint_claims` / :func:`full_set_verdict`
4b fingerprint vs baselines 04       :func:`fingerprint_claims` / :func:`baseline_gap_verdict`
=========================== ======== ==========================================================

Tables the rules read: :func:`depth_table` (claim 1), :func:`crossing` and :func:`early_late`
(claim 2); the attribution accuracy and family separation of claims 3-4 come from
:mod:`memlib.attribution_eval`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .attribution_eval import BEST_LAYER_METHOD, CURVE_METHOD, FINAL_LAYER_METHOD

CLAIMS_TABLE = "claims.csv"
CLAIM_COLUMNS = ["claim", "statement", "metric", "value", "paper_value", "verdict"]
VERDICTS = ("reproduced", "partly", "not reproduced")

# A set counts as flagged for copying where C_T < FLAG_THRESHOLD. Under the null C_T is a
# weighted mean of the kept cells' z-scores, each about N(0, 1), so its standard deviation is
# sqrt(sum w^2) / sum w: 1/sqrt(k) for k equally weighted cells (more when the weights differ
# or cells are dropped), about 0.58 for the profiles' k = 3 cells. -2 is then about -3.5 null
# standard deviations (one-sided p ~ 3e-4), not the p ~ 0.023 of a single N(0, 1) z of -2.
FLAG_THRESHOLD = -2.0

# Claim 1: a model shows the depth trend when Spearman rho(layer, C_T) >= DEPTH_RHO_MIN.
DEPTH_RHO_MIN = 0.5
DEPTH_SHARE_REPRODUCED = 0.8   # share of standard zoo models showing it: reproduced at >=
DEPTH_SHARE_PARTLY = 0.4       # partly at >= (else not reproduced)
DEPTH_KEYS = ["encoder", "architecture", "variant", "seed", "token", "reference"]

# Claim 2: a direction (early < late for low-level copies, late < early for high-level)
# holds when it holds at more than DIRECTION_MAJORITY of the flagged strengths.
DIRECTION_MAJORITY = 0.5

# Claim 3: reproduced when every family is separated (share == 1) and the largest query size's
# accuracy is >= SIGNATURE_ACCURACY_MIN; partly when the separated share is >= SIGNATURE_SHARE_PARTLY.
SIGNATURE_ACCURACY_MIN = 0.9
SIGNATURE_SHARE_PARTLY = 0.5
# Claim 4a (paper: up to 100 % on full datasets): accuracy at the largest query size.
FULL_ACCURACY_REPRODUCED = 0.95
FULL_ACCURACY_PARTLY = 0.6
# Claim 4b (paper: +30 % over baselines): the largest gap over n of curve - best baseline
# accuracy; reproduced at >= BASELINE_GAP_REPRODUCED, partly when > 0.
BASELINE_GAP_REPRODUCED = 0.30


# --------------------------------------------------------------------------- claim 1


def spearman_depth(ct) -> float:
    """Spearman rank correlation between layer index and C_T, ct (L,) (+1: C_T rises with depth).

    Non-finite layers are left out; NaN when fewer than 3 finite layers remain or they are
    all equal.
    """
    from scipy.stats import spearmanr
    ct = np.asarray(ct, float)
    ok = np.isfinite(ct)
    if ok.sum() < 3 or np.ptp(ct[ok]) == 0:
        return float("nan")
    return float(spearmanr(np.arange(len(ct))[ok], ct[ok]).statistic)


def depth_table(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per C_T-layer curve: its depth trend.

    curves: tidy rows with columns :data:`DEPTH_KEYS`, ``layer`` (1..L) and ``ct``.
    Returns :data:`DEPTH_KEYS` + ``spearman`` (:func:`spearman_depth` over layers in order),
    ``ct_first``, ``ct_last`` (C_T at the first and last layer) and ``ct_min_layer`` (the layer
    of the lowest C_T, the first on ties), one row per group in sorted group order.
    """
    out = []
    for keys, g in curves.groupby(DEPTH_KEYS):
        g = g.sort_values("layer")
        out.append(dict(zip(DEPTH_KEYS, keys),
                        spearman=spearman_depth(g.ct.values), ct_first=g.ct.iloc[0], ct_last=g.ct.iloc[-1],
                        ct_min_layer=int(g.layer.values[np.nanargmin(g.ct.values)])))
    return pd.DataFrame(out)


def depth_trend_share(depth: pd.DataFrame) -> float:
    """Share of the rows of a :func:`depth_table` with spearman >= :data:`DEPTH_RHO_MIN`."""
    return float((depth.spearman >= DEPTH_RHO_MIN).mean())


def depth_trend_verdict(share: float) -> str:
    """Claim 1: *reproduced* if share >= 0.8, *partly* if >= 0.4, else *not reproduced*."""
    return ("reproduced" if share >= DEPTH_SHARE_REPRODUCED
            else "partly" if share >= DEPTH_SHARE_PARTLY else "not reproduced")


def depth_trend_claim(depth: pd.DataFrame, control_depth: pd.DataFrame, *, encoder: str,
                      token: str) -> dict:
    """The claims.csv row of claim 1 (notebook 03).

    depth: :func:`depth_table` of the full-size curves; the rule reads its standard zoo models
    on the public reference with ``token``. control_depth: :func:`depth_table` of the
    matched-size controls (``encoder`` and ``encoder + "+shuffled"``), reported in the metric
    only.
    """
    main = depth[(depth.token == token) & (depth.reference == "public") & (depth.variant == "standard")]
    share = depth_trend_share(main)
    shuffled_share = depth_trend_share(control_depth[control_depth.encoder == encoder + "+shuffled"])
    trained_small_share = depth_trend_share(control_depth[control_depth.encoder == encoder])
    return dict(
        claim="1-depth-trend",
        statement="The deeper the ViT layer, the less memorization C_T measures (C_T rises with depth)",
        metric=(f"share of {len(main)} standard zoo models with Spearman rho(layer, C_T) >= {DEPTH_RHO_MIN} "
                f"[public ref, {token}]; median rho {main.spearman.median():.2f}; "
                f"same share with shuffled weights {shuffled_share:.2f} vs trained {trained_small_share:.2f} at control sizes"),
        value=share, paper_value="qualitative (C_T rises with depth)", verdict=depth_trend_verdict(share))


# --------------------------------------------------------------------------- claim 2


def crossing(matched: pd.DataFrame, threshold: float = FLAG_THRESHOLD) -> pd.DataFrame:
    """Largest strength still flagged (C_T < threshold) per (encoder, kind, layer); 0 if none is.

    matched: rows with columns encoder, kind, strength, layer, ct. Returns encoder, kind,
    layer, crossing_strength, sorted by (encoder, kind, layer).
    """
    flagged = matched[matched.ct < threshold]
    top = flagged.groupby(["encoder", "kind", "layer"]).strength.max()
    full = matched.groupby(["encoder", "kind", "layer"]).strength.min() * 0
    return full.add(top, fill_value=0).reset_index(name="crossing_strength")


def layer_thirds(n_layers: int) -> tuple[list[int], list[int]]:
    """The first and the last third of layers 1..n_layers (at least one layer each)."""
    third = max(1, n_layers // 3)
    return list(range(1, third + 1)), list(range(n_layers - third + 1, n_layers + 1))


def early_late(levels: pd.DataFrame, kind: str, n_layers: int,
               threshold: float = FLAG_THRESHOLD) -> list[tuple[float, float, float]]:
    """(strength, early mean C_T, late mean C_T) for each strength of ``kind`` that a layer flags.

    levels: rows with columns kind, strength, space (``"L<layer>"`` for encoder layers, other
    spaces such as ``"pixels"`` are ignored) and ct, one copy fraction only. Early / late: the
    mean C_T over the first / last third of the layers (:func:`layer_thirds`). A strength
    enters only if some layer has C_T < threshold; strengths in increasing order.
    """
    third = max(1, n_layers // 3)
    out = []
    for s, g in levels[(levels.kind == kind)].groupby("strength"):
        layers = g[g.space.str.startswith("L")].assign(layer=lambda x: x.space.str[1:].astype(int))
        if (layers.ct < threshold).any():
            early = layers[layers.layer <= third].ct.mean()
            late = layers[layers.layer > n_layers - third].ct.mean()
            out.append((s, early, late))
    return out


def memorization_levels_verdict(low_share: float, high_share: float, beyond_low: bool,
                                beyond_high: bool) -> str:
    """Claim 2 from the two directions and the two reference comparisons.

    low_share / high_share: share of flagged strengths where early < late (low-level copies) /
    late < early (high-level copies); a direction holds at share > 0.5. beyond_low /
    beyond_high: the early (late) layers' crossing strength for low-level (high-level) copies
    beats both the shuffled-weights encoder and raw pixels. *Reproduced* if both directions
    hold and both comparisons pass, *not reproduced* if neither direction holds, else *partly*.
    """
    directions = int(low_share > DIRECTION_MAJORITY) + int(high_share > DIRECTION_MAJORITY)
    return ("reproduced" if directions == 2 and beyond_low and beyond_high
            else "not reproduced" if directions == 0 else "partly")


def memorization_levels_claim(levels: pd.DataFrame, cross: pd.DataFrame, *, encoder: str,
                              n_layers: int) -> dict:
    """The claims.csv row of claim 2 (notebook 02).

    levels: C_T rows at full sizes (columns kind, strength, rho, space, ct); the directions are
    read at rho = 1 with :func:`early_late`. cross: :func:`crossing` of the matched-size runs
    with encoders ``encoder``, ``encoder + "+shuffled"`` and ``"pixels"``; a comparison
    passes when the trained encoder's mean crossing strength over the early (low-level) or
    late (high-level) third of the layers is larger than both the shuffled encoder's over the
    same layers and the pixels' (0 where pixels have no row of that kind). See
    :func:`memorization_levels_verdict`.
    """
    at1 = levels[levels.rho == 1.0]
    low, high = early_late(at1, "low-level", n_layers), early_late(at1, "high-level", n_layers)
    low_ok = np.mean([e < l for _, e, l in low]) if low else 0.0
    high_ok = np.mean([l < e for _, e, l in high]) if high else 0.0
    ctrl = cross.pivot_table(index=["kind", "encoder"], columns="layer", values="crossing_strength")

    def ctrl_mean(kind, enc, layers):
        return float(ctrl.loc[(kind, enc), layers].mean()) if (kind, enc) in ctrl.index else float("nan")

    early_layers, late_layers = layer_thirds(n_layers)
    pix = cross[cross.encoder == "pixels"].groupby("kind").crossing_strength.max()
    shuffled = encoder + "+shuffled"
    beyond_low = ctrl_mean("low-level", encoder, early_layers) > max(
        ctrl_mean("low-level", shuffled, early_layers), pix.get("low-level", 0.0))
    beyond_high = ctrl_mean("high-level", encoder, late_layers) > max(
        ctrl_mean("high-level", shuffled, late_layers), pix.get("high-level", 0.0))
    metric = (f"direction: low-level early<late at {low_ok:.0%} of {len(low)} flagged strengths; "
              f"high-level: late<early at {high_ok:.0%} of {len(high)}; "
              f"crossing strength early/late layers — low: trained {ctrl_mean('low-level', encoder, early_layers):.2f}/"
              f"{ctrl_mean('low-level', encoder, late_layers):.2f}, shuffled {ctrl_mean('low-level', shuffled, early_layers):.2f}/"
              f"{ctrl_mean('low-level', shuffled, late_layers):.2f}, pixels {pix.get('low-level', float('nan')):.2f}; "
              f"high: trained {ctrl_mean('high-level', encoder, early_layers):.2f}/{ctrl_mean('high-level', encoder, late_layers):.2f}, "
              f"shuffled {ctrl_mean('high-level', shuffled, early_layers):.2f}/"
              f"{ctrl_mean('high-level', shuffled, late_layers):.2f}, pixels {pix.get('high-level', float('nan')):.2f}; "
              f"beyond both references: low-level early layers {beyond_low}, high-level late layers {beyond_high}")
    return dict(claim="2-memorization-levels",
                statement="Early layers are more sensitive to low-level memorization, late layers to high-level (semantic) memorization",
                metric=metric, value=float((low_ok + high_ok) / 2), paper_value="qualitative",
                verdict=memorization_levels_verdict(low_ok, high_ok, beyond_low, beyond_high))


# --------------------------------------------------------------------------- claims 3 and 4


def signature_verdict(separated_share: float, full_accuracy: float) -> str:
    """Claim 3: *reproduced* if every family is separated (share 1) and the largest query
    size's accuracy is >= 0.9, *partly* if share >= 0.5, else *not reproduced*."""
    return ("reproduced" if separated_share == 1 and full_accuracy >= SIGNATURE_ACCURACY_MIN
            else "partly" if separated_share >= SIGNATURE_SHARE_PARTLY else "not reproduced")


def full_set_verdict(full_accuracy: float) -> str:
    """Claim 4a: *reproduced* if accuracy at the largest query size is >= 0.95, *partly* if >= 0.6."""
    return ("reproduced" if full_accuracy >= FULL_ACCURACY_REPRODUCED
            else "partly" if full_accuracy >= FULL_ACCURACY_PARTLY else "not reproduced")


def baseline_gap_verdict(max_gap: float) -> str:
    """Claim 4b: *reproduced* if the largest gap (curve - best baseline accuracy) is >= 0.30,
    *partly* if it is > 0, else (also NaN) *not reproduced*."""
    return ("reproduced" if max_gap >= BASELINE_GAP_REPRODUCED
            else "partly" if max_gap > 0 else "not reproduced")


def baseline_gaps(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per query size of the public reference: the curve method against its baselines.

    accuracy: rows with columns reference, method, query_size, accuracy
    (:func:`memlib.attribution_eval.attribution_accuracy` with a reference column).
    Returns, indexed by query_size: curve (the curve method's accuracy), best_baseline (the
    highest other method's), best_baseline_method (its name; on ties one of them, as pandas'
    default sort leaves it), gap (curve - best_baseline) and ct_baseline (the higher of
    final-layer C_T and best single layer).
    """
    pub = accuracy[accuracy.reference == "public"]
    curve_acc = pub[pub.method == CURVE_METHOD].set_index("query_size").accuracy
    base = pub[pub.method != CURVE_METHOD]
    best_base = base.groupby("query_size").accuracy.max()
    best_base_name = base.sort_values("accuracy").groupby("query_size").method.last()
    ct_base = pub[pub.method.isin([FINAL_LAYER_METHOD, BEST_LAYER_METHOD])].groupby("query_size").accuracy.max()
    return pd.DataFrame({"curve": curve_acc, "best_baseline": best_base,
                         "best_baseline_method": best_base_name, "gap": curve_acc - best_base,
                         "ct_baseline": ct_base})


def fingerprint_claims(accuracy: pd.DataFrame, signature: pd.DataFrame) -> list[dict]:
    """The claims.csv rows of claims 3, 4a and 4b (notebook 04).

    accuracy: attribution accuracy rows (reference, method, query_size, accuracy) for the
    ``public`` and ``own-train`` references, query sizes in increasing order; the rules read
    the public reference at the largest size (4a, 3) and at every size (4b, :func:`baseline_gaps`).
    signature: :func:`memlib.attribution_eval.family_separation`, one row per family.
    """
    g = baseline_gaps(accuracy)
    curve_acc, gap = g.curve.dropna(), g.gap
    largest = curve_acc.index[-1]
    full_acc = float(curve_acc.iloc[-1])
    share_sep = float(signature.separated.mean())
    n_families = len(signature)
    own = accuracy[(accuracy.reference == "own-train") & (accuracy.method == CURVE_METHOD)]
    own_full = float(own.accuracy.iloc[-1])
    return [
        dict(claim="3-architecture-signature",
             statement="A generative architecture's degree of memorization across levels (its C_T-layer curve) is an inherent property of the architecture",
             metric=f"share of {n_families} families whose seeds' curves are closer to each other than to any other family; leave-one-seed-out accuracy at n={largest}: {full_acc:.2f}",
             value=share_sep, paper_value="qualitative (unique per architecture)",
             verdict=signature_verdict(share_sep, full_acc)),
        dict(claim="4a-fingerprint-full",
             statement="The C_T-layer curve identifies the generating model with up to 100% accuracy on full datasets",
             metric=f"leave-one-seed-out accuracy of nearest size-matched reference curve at n={largest} (public reference; own-train reference: {own_full:.2f}; chance {1 / n_families:.2f})",
             value=full_acc, paper_value="1.00", verdict=full_set_verdict(full_acc)),
        dict(claim="4b-fingerprint-vs-baselines",
             statement="C_T-layer curves improve identification accuracy by 30% over baseline methods",
             metric="max over n of (curve accuracy - best baseline accuracy); per n: " + "; ".join(
                 f"n={n}: {gap[n]:+.2f} vs {g.best_baseline_method[n]}" for n in gap.index)
                 + "; for comparison, gap to the best C_T-only baseline (final layer or best single layer): " + "; ".join(
                 f"n={n}: {g.curve[n] - g.ct_baseline[n]:+.2f}" for n in gap.index),
             value=float(gap.max()), paper_value="+0.30", verdict=baseline_gap_verdict(gap.max())),
    ]
