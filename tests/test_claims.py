"""The verdict rules (memlib.claims) and the tables they read (memlib.attribution_eval), on
hand-made inputs whose verdicts and numbers are known, thresholds included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import claims
from memlib.errors import InputError
from memlib.claims import full_set_verdict, signature_verdict

# --------------------------------------------------------------------------- claim 1


def test_spearman_depth_known_answers():
    assert claims.spearman_depth([1, 2, 3, 4]) == pytest.approx(1.0)
    assert claims.spearman_depth([4, 3, 2, 1]) == pytest.approx(-1.0)
    assert claims.spearman_depth([1, 3, 2]) == pytest.approx(0.5)
    assert claims.spearman_depth([1, np.nan, 2, 3]) == pytest.approx(1.0)   # NaN layer left out
    assert np.isnan(claims.spearman_depth([2, 2, 2, 2]))                    # flat: undefined
    assert np.isnan(claims.spearman_depth([1, np.nan, 2]))                  # < 3 finite layers


def _curve_rows(ct, **labels):
    base = dict(encoder="vit", architecture="kde", variant="standard", seed=0, token="cls",
                reference="public")
    return [dict(base, **labels, layer=l + 1, ct=c) for l, c in enumerate(ct)]


def test_depth_table_one_row_per_curve_in_layer_order():
    rows = _curve_rows([-9.0, -4.0, -1.0, 2.0], seed=1) + _curve_rows([3.0, -5.0, -5.0, 1.0], seed=0)
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)   # layers shuffled
    depth = claims.depth_table(frame)
    assert list(depth.columns) == claims.DEPTH_KEYS + ["spearman", "ct_first", "ct_last", "ct_min_layer"]
    assert depth.seed.tolist() == [0, 1]                             # sorted group order
    s0, s1 = depth.iloc[0], depth.iloc[1]
    assert s1.spearman == pytest.approx(1.0) and (s1.ct_first, s1.ct_last, s1.ct_min_layer) == (-9.0, 2.0, 1)
    assert (s0.ct_first, s0.ct_last) == (3.0, 1.0)
    assert s0.ct_min_layer == 2                                      # tie at layers 2 and 3: first
    assert s0.spearman == pytest.approx(claims.spearman_depth([3.0, -5.0, -5.0, 1.0]))


# the claim-1 (Study v2) rules: tests/test_claims_depth.py


# --------------------------------------------------------------------------- claim 2


@pytest.mark.parametrize("low,high,beyond_low,beyond_high,n_seen,verdict", [
    (-0.1, -0.01, True, True, 2, "reproduced"),
    (-0.1, -0.01, True, False, 2, "partly"),          # both directions, one reference not beaten
    (-0.1, 0.0, True, True, 2, "partly"),             # a CI ending at 0 does not lie below 0
    (-0.1, float("nan"), True, True, 1, "partly"),    # a kind without seen strengths
    (0.0, 0.2, True, True, 2, "not reproduced"),
    (float("nan"), float("nan"), True, True, 0, "untestable here"),
])
def test_copy_levels_verdict(low, high, beyond_low, beyond_high, n_seen, verdict):
    assert claims.copy_levels_verdict(low, high, beyond_low, beyond_high, n_seen) == verdict


def test_half_sensitivity_strength_known_answers():
    grid = [0.1, 0.2, 0.4]
    # ratio to exact: 1 (strength 0), 0.8, 0.6, 0.2 -> half crossed between 0.2 and 0.4, a quarter in
    assert claims.half_sensitivity_strength(grid, [-0.8, -0.6, -0.2], -1.0) == pytest.approx(0.25)
    # ratio falls below half at the first grid point: between 0 and 0.1
    assert claims.half_sensitivity_strength(grid, [-0.25, -0.1, 0.0], -0.5) == pytest.approx(0.1)
    # exactly half at 0.1 (not below half yet), below at 0.2: the interpolation lands on 0.1
    assert claims.half_sensitivity_strength(grid, [-0.5, 0.0, 0.0], -1.0) == pytest.approx(0.1)
    assert claims.half_sensitivity_strength(grid, [-0.5, -0.5, -0.5], -1.0) == 0.4   # never below
    assert claims.half_sensitivity_strength(grid, [-0.9, -0.8, -0.7], -1.0) == 0.4    # censored
    assert np.isnan(claims.half_sensitivity_strength(grid, [-0.9, -0.8, -0.7], 0.0))
    assert np.isnan(claims.half_sensitivity_strength(grid, [-0.9, -0.8, -0.7], float("nan")))
    assert np.isnan(claims.half_sensitivity_strength(grid, [-0.9, float("nan"), -0.7], -1.0))  # undecidable
    with pytest.raises(ValueError, match="increase"):
        claims.half_sensitivity_strength([0.1, 0.1, 0.4], [-0.9, -0.8, -0.7], -1.0)


@pytest.mark.parametrize("sensitivity, exact, censored", [
    ([-0.9, -0.8, -0.7], -1.0, True),       # keeps ≥ half everywhere: the largest strength is a bound
    ([-0.5, -0.5, -0.5], -1.0, True),       # exactly half is not below half
    ([-0.8, -0.6, -0.2], -1.0, False),      # crosses
    ([-0.9, -0.8, -0.7], 0.0, False),       # the layer does not see exact copies: no strength at all
    ([-0.9, float("nan"), -0.7], -1.0, False),
])
def test_half_sensitivity_censored_known_answers(sensitivity, exact, censored):
    assert claims.half_sensitivity_censored(sensitivity, exact) is censored


def test_predicted_contrast_signs():
    early_sees = np.array([-0.9, -0.9, -0.1, -0.1, 0.0, 0.0])     # copies seen in early layers
    assert claims.predicted_contrast("low-level", early_sees) == pytest.approx(-0.9)
    assert claims.predicted_contrast("high-level", early_sees) == pytest.approx(0.9)
    both = np.stack([early_sees, early_sees[::-1]])
    np.testing.assert_allclose(claims.predicted_contrast("high-level", both), [0.9, -0.9])
    with pytest.raises(ValueError):
        claims.predicted_contrast("exact", early_sees)


def _crossings(trained_early, shuffled_early, pixels):
    rows = [dict(encoder="vit", kind="low-level", layer=l, half_strength=v)
            for l, v in zip((1, 2, 3), (trained_early, 0.0, 0.0))]
    rows += [dict(encoder="vit+shuffled", kind="low-level", layer=l, half_strength=v)
             for l, v in zip((1, 2, 3), (shuffled_early, 1.0, 1.0))]
    rows.append(dict(encoder="pixels", kind="low-level", layer=1, half_strength=pixels))
    return pd.DataFrame(rows)


def test_beyond_references_is_strict_and_nan_is_not_beyond():
    assert claims.beyond_references(_crossings(0.5, 0.3, 0.4), "low-level", [1], "vit")
    assert not claims.beyond_references(_crossings(0.5, 0.5, 0.4), "low-level", [1], "vit")   # tie
    assert not claims.beyond_references(_crossings(0.5, 0.3, 0.5), "low-level", [1], "vit")
    assert not claims.beyond_references(_crossings(float("nan"), 0.3, 0.1), "low-level", [1], "vit")
    assert not claims.beyond_references(_crossings(0.5, 0.3, 0.1), "low-level", [2], "vit")


def _contrast(kind, point, boot):
    return [dict(kind=kind, draw=-1, contrast=point)] + [dict(kind=kind, draw=b, contrast=c)
                                                        for b, c in enumerate(boot)]


def test_copy_levels_claim_rows():
    boot = np.linspace(-0.3, -0.1, 101)
    contrasts = pd.DataFrame(_contrast("low-level", -0.2, boot) + _contrast("high-level", -0.05, boot + 0.2))
    cross = pd.concat([_crossings(0.5, 0.3, 0.4),
                       _crossings(0.5, 0.3, 0.4).assign(kind="high-level", layer=lambda d: 4 - d.layer)])
    row = claims.copy_levels_claim(contrasts, cross, encoder="vit", n_layers=3, level=0.9)
    assert set(row) == set(claims.CLAIM_COLUMNS) and row["claim"] == "2-memorization-levels"
    # the weaker direction (high-level: CI [-0.09, 0.09]) decides the number
    assert row["value"] == pytest.approx(-0.05)
    assert row["ci_low"] == pytest.approx(-0.09) and row["ci_high"] == pytest.approx(0.09)
    assert row["verdict"] == "partly"
    assert "low-level: -0.200 [-0.290, -0.110]" in row["metric"]
    strong = pd.DataFrame(_contrast("low-level", -0.2, boot) + _contrast("high-level", -0.2, boot))
    assert claims.copy_levels_claim(strong, cross, encoder="vit", n_layers=3, level=0.9)["verdict"] == "reproduced"
    none = pd.DataFrame(columns=["kind", "draw", "contrast"])
    assert claims.copy_levels_claim(none, cross, encoder="vit", n_layers=3, level=0.9)["verdict"] == "untestable here"


# --------------------------------------------------------------------------- claims 3 and 4


@pytest.mark.parametrize("share,acc_lo,verdict", [(1.0, 0.9, "reproduced"), (1.0, 0.89999, "partly"),
                                                  (0.75, 1.0, "partly"), (0.5, 1.0, "partly"),
                                                  (0.49999, 1.0, "not reproduced")])
def test_signature_verdict(share, acc_lo, verdict):
    assert signature_verdict(share, acc_lo) == verdict


@pytest.mark.parametrize("lo,hi,verdict", [(0.8, 0.95, "reproduced"), (1.0, 1.0, "reproduced"),
                                           (0.79999, 1.0, "partly"), (0.9, 0.94999, "partly"),
                                           (0.2, 0.6, "partly"), (0.1, 0.9, "not reproduced"),
                                           (float("nan"), float("nan"), "not reproduced")])
def test_full_set_verdict(lo, hi, verdict):
    assert full_set_verdict(lo, hi, chance=0.1) == verdict


def test_share_ci_known_answers():
    assert claims.share_ci([True] * 5) == (1.0, 1.0, 1.0)
    share, lo, hi = claims.share_ci([True, True, False, True])
    assert share == 0.75 and 0.0 <= lo < 0.75 < hi <= 1.0
    assert all(np.isnan(claims.share_ci([])))


GRAINS_ROWS = [("family", 4), ("architecture", 6)]


def _v2_inputs(curve_full=(1.0, 0.9), curve_lo=(1.0, 0.8), curve_hi=(1.0, 1.0)):
    acc, gaps = [], []
    for (grain, _), a, lo, hi in zip(GRAINS_ROWS, curve_full, curve_lo, curve_hi):
        for n in (50, 100):
            full = n == 100
            acc.append(dict(grain=grain, corruption="none", level=0.0, query_size=n, method=ae.CURVE_METHOD,
                            accuracy=a if full else 0.5, acc_lo=lo if full else 0.4, acc_hi=hi if full else 0.6))
            for group, best, gap in (("C_T", ae.FINAL_LAYER_METHOD, 0.35 if n == 50 else 0.1),
                                     ("features", ae.FD_METHOD, -0.3 if n == 50 else 0.0)):
                gaps.append(dict(grain=grain, corruption="none", level=0.0, query_size=n, baselines=group,
                                 best_baseline=best, curve=0.5, baseline=0.5 - gap, gap=gap, gap_lo=gap - 0.1,
                                 gap_hi=gap + 0.1, relative=gap / (0.5 - gap)))
        acc.append(dict(grain=grain, corruption="jpeg", level=50.0, query_size=100, method=ae.CURVE_METHOD,
                        accuracy=0.0, acc_lo=0.0, acc_hi=0.0))     # corrupted rows never decide a verdict
    sig = [dict(family=f"c{i}", grain=grain, distance=d, separated=i != 0 or d == "znorm")
           for grain, k in GRAINS_ROWS for d in ("euclidean", "znorm") for i in range(k)]
    return pd.DataFrame(acc), pd.DataFrame(gaps), pd.DataFrame(sig)


def _runs(accuracy, **override):
    """{method: RunBootstrap} as the accuracy table's architecture grain, clean, largest size says
    (a training-run interval equal to the query-set one), ``override`` {method: (lo, hi)} apart."""
    full = accuracy[(accuracy.grain == "architecture") & (accuracy.corruption == "none")
                    & (accuracy.query_size == accuracy.query_size.max())].set_index("method")
    out = {}
    for method, r in full.iterrows():
        lo, hi = override.get(method, (r.acc_lo, r.acc_hi))
        out[method] = ae.RunBootstrap(float(r.accuracy), lo, hi, 0.95, np.array([lo, hi]), 0.1, 0)
    return out


def _claims(accuracy, gaps, signature, run_ci=None, **kw):
    return claims.fingerprint_claims(accuracy, gaps, signature, run_ci=run_ci or _runs(accuracy), **kw)


def test_fingerprint_claims_known_rows():
    accuracy, gaps, signature = _v2_inputs()
    rows = _claims(accuracy, gaps, signature)
    assert [r["claim"] for r in rows] == ["3-architecture-signature", "4a-fingerprint-full",
                                          "4b-vs-ct-baselines", "4b-vs-feature-baselines"]
    assert all(set(r) == set(claims.CLAIM_COLUMNS) for r in rows)
    c3, c4a, ct, feat = rows
    assert c3["value"] == pytest.approx(5 / 6) and c3["verdict"] == "partly"       # 5 of 6 architectures
    assert c3["ci_low"] <= 5 / 6 <= c3["ci_high"]
    assert "shape only (z-normalised, secondary): 1.00" in c3["metric"]
    assert "family grain: 0.75 of 4" in c3["metric"] and "family is right: 0.90" in c3["metric"]
    assert (c4a["value"], c4a["ci_low"], c4a["ci_high"], c4a["verdict"]) == (0.9, 0.8, 1.0, "reproduced")
    assert "chance 0.17" in c4a["metric"] and "family grain: 1.00 [1.00, 1.00] (query-set CI, chance 0.25)" in c4a["metric"]
    assert "training-run CI [0.80, 1.00]" in c4a["metric"] and "unit is the training run" in c4a["rule"]
    assert (ct["value"], ct["verdict"]) == (0.35, "reproduced")          # m=50: CI [0.25, 0.45]
    assert ct["ci_low"] == pytest.approx(0.25) and "m=50: 0.50 vs final-layer C_T" in ct["metric"]
    assert (feat["value"], feat["verdict"]) == (0.0, "not reproduced")   # largest gap 0 at m=100
    assert "relative +0%" in feat["metric"]


def test_the_shape_only_secondary_row_follows_4a_rule():
    accuracy, gaps, signature = _v2_inputs()
    shape = accuracy[accuracy.method == ae.CURVE_METHOD].assign(method=ae.SHAPE_METHOD)
    shape.loc[(shape.grain == "architecture") & (shape.query_size == 100), ["accuracy", "acc_lo", "acc_hi"]] = [0.5, 0.3, 0.7]
    shape_gaps = gaps.assign(gap=-0.4, gap_lo=-0.5, gap_hi=-0.3)
    rows = _claims(pd.concat([accuracy, shape]), gaps, signature, shape_gaps=shape_gaps)
    assert [r["claim"] for r in rows][-1] == claims.CLAIM_4A_SHAPE and len(rows) == 5
    row = rows[-1]
    assert set(row) == set(claims.CLAIM_COLUMNS) and row["statement"].startswith("(secondary")
    assert (row["value"], row["ci_low"], row["ci_high"], row["verdict"]) == (0.5, 0.3, 0.7, "partly")   # above chance 1/6
    assert "vs features baselines at m=100: -0.40 [-0.50, -0.30]" in row["metric"]
    assert rows[1]["value"] == 0.9                         # the primary 4a is untouched
    shape.loc[shape.grain == "architecture", ["acc_lo", "acc_hi"]] = [0.96, 1.0]
    assert _claims(pd.concat([accuracy, shape]), gaps, signature)[-1]["verdict"] == "reproduced"
    assert len(_claims(accuracy, gaps, signature)) == 4    # no shape-only method, no row


def test_fingerprint_claims_verdicts_move_with_their_inputs():
    accuracy, gaps, signature = _v2_inputs(curve_lo=(1.0, 0.79))
    signature.loc[signature.distance == "euclidean", "separated"] = True
    c3, c4a, ct, feat = _claims(accuracy, gaps, signature)
    assert c3["verdict"] == "partly"                       # every one separated but accuracy CI below 0.9
    assert c4a["verdict"] == "partly"                      # CI low 0.79 < 0.8, above chance
    gaps.loc[(gaps.baselines == "C_T") & (gaps.query_size == 50), ["gap", "gap_lo", "gap_hi"]] = [0.2, 0.05, 0.28]
    assert _claims(accuracy, gaps, signature)[2]["verdict"] == "partly"
    accuracy, gaps, signature = _v2_inputs(curve_lo=(1.0, 0.95))
    signature["separated"] = True
    assert _claims(accuracy, gaps, signature)[0]["verdict"] == "reproduced"
    no_features = gaps[gaps.baselines == "C_T"]
    assert _claims(accuracy, no_features, signature)[3]["verdict"] == "untestable here"


# --------------------------------------------------------------------------- attribution evaluation

FAMS = ["dcgan", "kde", "vae"]
N_LAYERS, N_SUBSETS = 5, 4


def _table(identical=False, seed=0):
    """3 families x 2 seeds; each set: N_SUBSETS curves, 40 feature rows, its subsets."""
    rng = np.random.default_rng(seed)
    families = np.repeat(FAMS, 2)
    seeds = np.tile([0, 1], 3)
    curves, features = [], []
    for f in families:
        level = 0.0 if identical else 10.0 * FAMS.index(f)
        curves.append(np.full((N_SUBSETS, N_LAYERS), level) + (0 if identical else rng.normal(0, 0.1, (N_SUBSETS, N_LAYERS))))
        features.append(rng.normal(0, 1, (40, 3)) + 8.0 * np.eye(3)[FAMS.index(f)])
    subsets = [[np.arange(10 * d, 10 * d + 10) for d in range(N_SUBSETS)] for _ in families]
    return families, seeds, curves, features, subsets


def _inputs(curves, subsets, features=None, final_norm=True):
    return ae.SizeInputs(curves, subsets, features, [c[:, -1:] for c in curves] if final_norm else None)


def test_fold_curves_stacks_labels_and_set_ids():
    families, _, curves, _, _ = _table()
    c, labels, groups = ae.fold_curves(curves, families, [1, 4])
    assert c.shape == (2 * N_SUBSETS, N_LAYERS)
    assert labels.tolist() == ["dcgan"] * N_SUBSETS + ["vae"] * N_SUBSETS
    assert groups.tolist() == [1] * N_SUBSETS + [4] * N_SUBSETS


def test_separable_families_are_attributed_perfectly_by_every_method():
    families, seeds, curves, features, subsets = _table()
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, features))
    methods = [ae.CURVE_METHOD, ae.SHAPE_METHOD, ae.FINAL_LAYER_METHOD, ae.BEST_LAYER_METHOD, ae.FINAL_NORM_METHOD,
               ae.FD_METHOD, ae.KNN_METHOD]
    assert list(preds.columns) == ["fold", "set", "draw", "method", "true", "pred"]
    assert list(dict.fromkeys(preds.method)) == methods
    assert len(preds) == len(methods) * 6 * N_SUBSETS            # every set queried once, every draw
    preds = preds[preds.method != ae.SHAPE_METHOD]                # flat curves: their shape is noise (next test)
    assert (preds.true == preds.pred).all()
    table = ae.accuracy_table(preds.assign(query_size=10), ["query_size"], seed=0)
    assert list(table.columns) == ["query_size", "method", "accuracy", "acc_lo", "acc_hi", "n_queries"]
    assert (table.accuracy == 1.0).all() and (table.acc_lo == 1.0).all() and (table.n_queries == 6 * N_SUBSETS).all()


def test_predictions_by_grain_equal_one_call_per_grain():
    """Two labellings of one table (families, and a coarser one that merges two of them) on one
    FD / k-NN pass give each labelling's own rows, those of one call per labelling."""
    families, seeds, curves, features, subsets = _table()
    rng = np.random.default_rng(5)
    noisy = [f + rng.normal(0, 2.0, f.shape) for f in features]   # near ties, so labels disagree somewhere
    inputs = _inputs(curves, subsets, noisy)
    coarse = np.where(families == "vae", "vae", "other")
    both = ae.query_predictions_by_grain({"family": families, "coarse": coarse}, seeds, inputs)
    assert set(both["coarse"].pred) <= {"vae", "other"}
    for grain, labels in (("family", families), ("coarse", coarse)):
        pd.testing.assert_frame_equal(both[grain], ae.query_predictions(labels, seeds, inputs))
    with pytest.raises(InputError, match="no labels"):
        ae.query_predictions_by_grain({}, seeds, inputs)


def test_shape_only_attribution_ignores_the_level_and_euclidean_does_not():
    """Families differ in shape only (rising, falling, a V), every set sits at a random level:
    the shape-only curve attributes every query, the Euclidean curve is thrown by the levels."""
    rng = np.random.default_rng(3)
    families, seeds = np.repeat(FAMS, 2), np.tile([0, 1], 3)
    x = np.linspace(-1, 1, N_LAYERS)
    shapes = {FAMS[0]: x, FAMS[1]: -x, FAMS[2]: np.abs(x) - 0.5}
    levels = [0.0, 30.0, 30.0, 0.0, 0.0, 30.0]          # each family's two seeds sit at different levels
    curves = [np.tile(shapes[f], (N_SUBSETS, 1)) + lev + rng.normal(0, 0.02, (N_SUBSETS, N_LAYERS))
              for f, lev in zip(families, levels)]
    subsets = [[np.arange(10 * d, 10 * d + 10) for d in range(N_SUBSETS)] for _ in families]
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, final_norm=False))
    shape = preds[preds.method == ae.SHAPE_METHOD]
    assert (shape.true == shape.pred).all()
    euclid = preds[preds.method == ae.CURVE_METHOD]
    assert (euclid.true == euclid.pred).mean() < 0.5
    assert ae.PRIMARY_METHOD == ae.CURVE_METHOD and ae.SECONDARY_METHOD == ae.SHAPE_METHOD


def test_identical_families_fall_to_chance():
    """Identical curves tie at every reference: ties go to the first family, so 1/3 exactly."""
    families, seeds, curves, _, subsets = _table(identical=True)
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, final_norm=False))
    assert list(dict.fromkeys(preds.method)) == [ae.CURVE_METHOD, ae.SHAPE_METHOD, ae.FINAL_LAYER_METHOD,
                                                 ae.BEST_LAYER_METHOD]
    table = ae.accuracy_table(preds, seed=0)
    np.testing.assert_allclose(table.accuracy, 1 / 3)
    assert ((table.acc_lo <= 1 / 3) & (table.acc_hi >= 1 / 3)).all()
    assert set(preds.pred) == {"dcgan"}


def test_one_family_confused_lowers_accuracy_by_its_share():
    families, seeds, curves, _, subsets = _table()
    curves[4] = curves[0].copy()        # vae seed 0 looks exactly like dcgan seed 0
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, final_norm=False))
    curve = preds[preds.method == ae.CURVE_METHOD]
    # fold seed 0: the vae query (dcgan-like) -> dcgan; fold seed 1: vae's only reference is now
    # dcgan-like, so the vae query's nearest reference is kde's (a tie dcgan/vae for the dcgan
    # query goes to dcgan, first in sorted order): 2 of 6 sets wrong
    assert (curve.true == curve.pred).mean() == pytest.approx(4 / 6)
    assert ((curve.true == "vae") & (curve.pred != "vae")).sum() == 2 * N_SUBSETS


def test_methods_see_only_the_reference_subsets_samples():
    """Rows outside a set's subsets are garbage: no method may use them as references. The same
    garbage inside the subsets breaks the feature baselines (the test can fail)."""
    families, seeds, curves, features, subsets = _table()
    garbage = [np.concatenate([f, np.tile(1e3 * np.eye(3)[(FAMS.index(fam) + 1) % 3], (20, 1))])
               for f, fam in zip(features, families)]        # 20 more rows, far out in another family's corner
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, garbage))
    preds = preds[preds.method != ae.SHAPE_METHOD]                # flat curves: their shape is noise
    assert (preds.true == preds.pred).all()
    assert ae.reference_rows(subsets[0]).tolist() == list(range(40))
    on_garbage = [[np.arange(40, 60)] * N_SUBSETS for _ in subsets]       # reference subsets on the garbage rows
    preds = ae.query_predictions(families, seeds, ae.SizeInputs(curves, on_garbage, garbage),
                                 ae.SizeInputs(curves, subsets, garbage))
    fd = preds[preds.method == ae.FD_METHOD]
    assert (fd.true != fd.pred).all()


def test_corrupted_queries_are_scored_against_clean_references():
    families, seeds, curves, features, subsets = _table()
    shifted = [c + 10.0 for c in curves]                       # every query one family up the ladder
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, features), _inputs(shifted, subsets, features))
    curve = preds[preds.method == ae.CURVE_METHOD]
    expected = {"dcgan": "kde", "kde": "vae", "vae": "vae"}
    assert (curve.pred == curve.true.map(expected)).all()
    knn = preds[preds.method == ae.KNN_METHOD]
    assert (knn.true == knn.pred).all()                       # the features were left clean


def test_baseline_gap_table_identical_methods_have_a_zero_gap_covering_ci():
    families, seeds, curves, features, subsets = _table()
    preds = ae.query_predictions(families, seeds, _inputs(curves, subsets, features)).assign(query_size=10)
    gaps = ae.baseline_gap_table(preds, ["query_size"], seed=0)
    assert gaps.baselines.tolist() == ["C_T", "features"]
    assert gaps.best_baseline.tolist() == [ae.FINAL_LAYER_METHOD, ae.FD_METHOD]      # ties: the first
    assert (gaps.gap == 0).all() and (gaps.gap_lo <= 0).all() and (gaps.gap_hi >= 0).all()
    assert (gaps.relative == 0).all()
    wrong = preds.copy()
    wrong.loc[wrong.method == ae.FD_METHOD, "pred"] = "nobody"
    wrong.loc[wrong.method == ae.KNN_METHOD, "pred"] = "nobody"
    g = ae.baseline_gap_table(wrong, ["query_size"], seed=0).set_index("baselines")
    assert g.loc["features", "gap"] == 1.0 and g.loc["features", "gap_lo"] == 1.0


def test_size_inputs_zero_undefined_layers_and_count_them():
    class Ref:
        def subset_curves(self, dist, subsets):
            return np.array([[np.nan, 1.0]] * len(subsets))
    x = ae.size_inputs(Ref(), [None, None], [[np.arange(3)], [np.arange(3), np.arange(2)]])
    assert [c.tolist() for c in x.curves] == [[[0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]
    assert x.undefined_share == 0.5 and x.final_norm is None


def test_family_separation_known_distances():
    curves = np.array([[0.0], [1.0], [10.0], [12.0], [0.0], [5.0]])
    families = np.array(["a", "a", "b", "b", "c", "c"])
    sig = ae.family_separation(curves[:4], families[:4])
    assert sig.family.tolist() == ["a", "b"]
    assert sig.within.tolist() == [1.0, 2.0]
    assert sig.nearest_other.tolist() == [(10 + 9) / 2, (9 + 11) / 2]
    assert sig.separated.tolist() == [True, True]
    sig = ae.family_separation(curves, families)      # c's seeds straddle a: not separated
    assert sig.within.tolist() == [1.0, 2.0, 5.0]
    assert sig.nearest_other.tolist() == [0.5, 6.0, 2.0]
    assert sig.separated.tolist() == [False, True, False]


def test_plots_mark_the_flag_threshold_of_the_rules():
    import matplotlib.pyplot as plt

    from memlib import plots
    fig, ax = plt.subplots()
    plots.zero_line(ax)
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [claims.FLAG_THRESHOLD, 0.0]
    plt.close(fig)
    assert claims.FLAG_THRESHOLD == -2.0


def test_the_training_run_interval_decides_claims_3_and_4a():
    """Since issue 32 the interval claims 3 and 4a read is the training-run one (run_ci), not the
    query-set CI of the accuracy table; a run_ci without the method, or of another accuracy, is refused."""
    accuracy, gaps, signature = _v2_inputs()                       # table: 0.9 [0.8, 1.0] -> reproduced
    signature["separated"] = True
    wide = _runs(accuracy, **{ae.CURVE_METHOD: (0.7, 1.0)})
    c3, c4a = _claims(accuracy, gaps, signature, run_ci=wide)[:2]
    assert (c4a["value"], c4a["ci_low"], c4a["ci_high"], c4a["verdict"]) == (0.9, 0.7, 1.0, "partly")
    assert "query sets only, references fixed (Study v2): [0.80, 1.00]" in c4a["metric"]
    assert c3["verdict"] == "partly"                               # every one separated, run CI low 0.7 < 0.9
    narrow = _runs(accuracy, **{ae.CURVE_METHOD: (0.92, 1.0)})
    accuracy.loc[accuracy.grain == "architecture", "acc_lo"] = 0.1   # the query-set CI no longer decides
    c3, c4a = _claims(accuracy, gaps, signature, run_ci=narrow)[:2]
    assert (c3["verdict"], c4a["verdict"]) == ("reproduced", "reproduced")
    with pytest.raises(InputError, match="no entry"):
        claims.fingerprint_claims(accuracy, gaps, signature, run_ci={})
    off = {ae.CURVE_METHOD: ae.RunBootstrap(0.5, 0.4, 0.6, 0.95, np.array([0.5]))}
    with pytest.raises(InputError, match="not the accuracy table"):
        claims.fingerprint_claims(accuracy, gaps, signature, run_ci=off)
