"""The verdict rules (memlib.claims) and the tables they read (memlib.attribution_eval), on
hand-made inputs whose verdicts and numbers are known, thresholds included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import claims
from memlib.claims import (baseline_gap_verdict, full_set_verdict,
                           signature_verdict)

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


@pytest.mark.parametrize("share,acc,verdict", [
    (1.0, 0.9, "reproduced"), (1.0, 0.89999, "partly"), (0.99, 1.0, "partly"),
    (0.5, 1.0, "partly"), (0.49999, 1.0, "not reproduced"), (0.0, 0.0, "not reproduced")])
def test_signature_verdict(share, acc, verdict):
    assert signature_verdict(share, acc) == verdict


@pytest.mark.parametrize("acc,verdict", [(1.0, "reproduced"), (0.95, "reproduced"), (0.94999, "partly"),
                                         (0.6, "partly"), (0.59999, "not reproduced")])
def test_full_set_verdict(acc, verdict):
    assert full_set_verdict(acc) == verdict


@pytest.mark.parametrize("gap,verdict", [(0.5, "reproduced"), (0.30, "reproduced"), (0.29999, "partly"),
                                         (1e-9, "partly"), (0.0, "not reproduced"), (-0.2, "not reproduced"),
                                         (float("nan"), "not reproduced")])
def test_baseline_gap_verdict(gap, verdict):
    assert baseline_gap_verdict(gap) == verdict


def _accuracy(by_method, reference="public", sizes=(50, 100)):
    return [dict(reference=reference, method=m, query_size=n, accuracy=a)
            for m, accs in by_method.items() for n, a in zip(sizes, accs)]


def _fingerprint_inputs():
    accuracy = pd.DataFrame(
        _accuracy({ae.CURVE_METHOD: [0.75, 1.0], ae.FINAL_LAYER_METHOD: [0.5, 0.25],
                   ae.BEST_LAYER_METHOD: [0.25, 0.5], ae.FD_METHOD: [0.25, 0.625],
                   ae.KNN_METHOD: [0.125, 0.5]})
        + _accuracy({ae.CURVE_METHOD: [0.5, 0.875]}, reference="own-train"))
    signature = pd.DataFrame({"family": ["a", "b", "c", "d"], "separated": [True, True, True, False]})
    return accuracy, signature


def test_baseline_gaps_per_query_size():
    accuracy, _ = _fingerprint_inputs()
    g = claims.baseline_gaps(accuracy)
    assert g.index.tolist() == [50, 100]
    assert g.curve.tolist() == [0.75, 1.0] and g.best_baseline.tolist() == [0.5, 0.625]
    assert g.best_baseline_method.tolist() == [ae.FINAL_LAYER_METHOD, ae.FD_METHOD]
    assert g.gap.tolist() == [0.25, 0.375] and g.ct_baseline.tolist() == [0.5, 0.5]


def test_fingerprint_claims_known_rows():
    accuracy, signature = _fingerprint_inputs()
    c3, c4a, c4b = claims.fingerprint_claims(accuracy, signature)
    assert [c["claim"] for c in (c3, c4a, c4b)] == ["3-architecture-signature", "4a-fingerprint-full",
                                                     "4b-fingerprint-vs-baselines"]
    assert all(set(c) == set(claims.CLAIM_COLUMNS) for c in (c3, c4a, c4b))
    assert (c3["value"], c3["verdict"]) == (0.75, "partly")          # 3 of 4 families separated
    assert c3["metric"].endswith("leave-one-seed-out accuracy at n=100: 1.00")
    assert (c4a["value"], c4a["verdict"]) == (1.0, "reproduced")
    assert c4a["metric"] == ("leave-one-seed-out accuracy of nearest size-matched reference curve at n=100 "
                             "(public reference; own-train reference: 0.88; chance 0.25)")
    assert (c4b["value"], c4b["verdict"]) == (0.375, "reproduced")
    assert c4b["metric"] == (
        f"max over n of (curve accuracy - best baseline accuracy); per n: n=50: +0.25 vs {ae.FINAL_LAYER_METHOD}; "
        f"n=100: +0.38 vs {ae.FD_METHOD}; for comparison, gap to the best C_T-only baseline "
        "(final layer or best single layer): n=50: +0.25; n=100: +0.50")


def test_fingerprint_claims_signature_needs_accuracy_too():
    accuracy, signature = _fingerprint_inputs()
    signature["separated"] = True
    assert claims.fingerprint_claims(accuracy, signature)[0]["verdict"] == "reproduced"
    accuracy.loc[(accuracy.reference == "public") & (accuracy.method == ae.CURVE_METHOD), "accuracy"] = [0.5, 0.875]
    c3, c4a, c4b = claims.fingerprint_claims(accuracy, signature)
    assert (c3["verdict"], c4a["verdict"]) == ("partly", "partly")     # 0.875 < 0.9 and < 0.95
    assert c4b["value"] == pytest.approx(0.25) and c4b["verdict"] == "partly"


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


def test_fold_curves_stacks_labels_and_set_ids():
    families, _, curves, _, _ = _table()
    c, labels, groups = ae.fold_curves(curves, families, [1, 4])
    assert c.shape == (2 * N_SUBSETS, N_LAYERS)
    assert labels.tolist() == ["dcgan"] * N_SUBSETS + ["vae"] * N_SUBSETS
    assert groups.tolist() == [1] * N_SUBSETS + [4] * N_SUBSETS


def test_separable_families_are_attributed_perfectly_by_every_method():
    families, seeds, curves, features, subsets = _table()
    table, confusions = ae.attribution_accuracy({2: curves, 5: curves}, families, seeds, seed=0,
                                                subsets={2: subsets, 5: subsets}, features=features)
    methods = [ae.CURVE_METHOD, ae.FINAL_LAYER_METHOD, ae.BEST_LAYER_METHOD, ae.FD_METHOD, ae.KNN_METHOD]
    assert list(table.columns) == ["method", "query_size", "accuracy", "acc_lo", "acc_hi", "n_queries"]
    assert table.method.tolist() == methods * 2 and table.query_size.tolist() == [2] * 5 + [5] * 5
    assert (table.accuracy == 1.0).all() and (table.acc_lo == 1.0).all() and (table.acc_hi == 1.0).all()
    assert (table.n_queries == 3 * N_SUBSETS * 2).all()      # 3 families x subsets x 2 folds
    true, pred = confusions[ae.CURVE_METHOD]
    assert sorted(confusions) == sorted(methods) and (true == pred).all()
    assert sorted(set(true)) == FAMS


def test_identical_families_fall_to_chance():
    """Identical curves tie at every reference: ties go to the first family, so 1/3 exactly."""
    families, seeds, curves, _, _ = _table(identical=True)
    table, confusions = ae.attribution_accuracy({4: curves}, families, seeds, seed=0)
    assert table.method.tolist() == [ae.CURVE_METHOD, ae.FINAL_LAYER_METHOD, ae.BEST_LAYER_METHOD]
    np.testing.assert_allclose(table.accuracy, 1 / 3)
    assert ((table.acc_lo <= 1 / 3) & (table.acc_hi >= 1 / 3)).all()
    assert set(confusions[ae.CURVE_METHOD][1]) == {"dcgan"}


def test_one_family_confused_lowers_accuracy_by_its_share():
    families, seeds, curves, _, _ = _table()
    curves[4] = curves[0].copy()        # vae seed 0 looks exactly like dcgan seed 0
    table, confusions = ae.attribution_accuracy({4: curves}, families, seeds, seed=0)
    curve = table[table.method == ae.CURVE_METHOD].iloc[0]
    # fold seed 0: the vae query (dcgan-like) -> dcgan; fold seed 1: vae's only reference is now
    # dcgan-like, so the vae query's nearest reference is kde's (a tie dcgan/vae for the dcgan
    # query goes to dcgan, first in sorted order): 2 of 6 sets wrong
    assert curve.accuracy == pytest.approx(4 / 6)
    true, pred = confusions[ae.CURVE_METHOD]
    assert ((true == "vae") & (pred != "vae")).sum() == 2 * N_SUBSETS


def test_open_set_table_rejects_a_far_unknown_family():
    families, seeds, curves, _, _ = _table()
    curves[4] = curves[4] + 100.0        # vae far from everything
    curves[5] = curves[5] + 100.0
    table = ae.open_set_table(curves, families, seeds)
    assert list(table.columns) == ["left_out", "seed", "auroc", "reject_unknown", "reject_known"]
    assert table[["left_out", "seed"]].values.tolist() == [[f, s] for f in FAMS for s in (0, 1)]
    vae = table[table.left_out == "vae"]
    assert (vae.auroc == 1.0).all() and (vae.reject_unknown == 1.0).all()


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
