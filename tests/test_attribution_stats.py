"""Study v2 statistics for claims 3-4: paired gap CIs, fold leaks, open-set scores and ROC, close pairs,
and the split claim-4b rule, on hand-made inputs with known answers."""
import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import claims
from memlib import fingerprint as fp
from memlib.errors import InputError


def test_paired_gap_of_identical_methods_is_zero_with_a_ci_covering_zero():
    rng = np.random.default_rng(1)
    correct = rng.random(60) < 0.7
    groups = np.repeat(np.arange(12), 5)
    gap, lo, hi = ae.paired_gap_ci(correct, correct, groups)
    assert gap == 0.0 and lo <= 0.0 <= hi and (lo, hi) == (0.0, 0.0)


def test_paired_gap_known_answers():
    groups = np.repeat(np.arange(10), 4)
    always, never = np.ones(40, bool), np.zeros(40, bool)
    assert ae.paired_gap_ci(always, never, groups) == (1.0, 1.0, 1.0)
    assert ae.paired_gap_ci(never, always, groups) == (-1.0, -1.0, -1.0)
    half = np.tile([True, True, False, False], 10)          # A right on half of every set
    gap, lo, hi = ae.paired_gap_ci(half, never, groups)
    assert gap == 0.5 and lo == hi == 0.5                    # same in every set: no spread


def test_pairing_makes_the_gap_ci_narrower_than_unpaired_intervals():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 10)
    easy = np.repeat(rng.random(20) < 0.5, 10)              # whole sets are easy or hard for both
    a = easy | (rng.random(200) < 0.3)
    b = easy.copy()
    gap, lo, hi = ae.paired_gap_ci(a, b, groups, seed=3)
    _, alo, ahi = fp.accuracy_ci(a, method="bootstrap", groups=groups, seed=3)
    assert lo > 0 and hi - lo < ahi - alo


def test_paired_gap_rejects_bad_inputs():
    with pytest.raises(InputError, match="equally long"):
        ae.paired_gap_ci([True, False], [True], [0, 1])
    with pytest.raises(InputError, match="bool"):
        ae.paired_gap_ci([2, 0], [1, 0], [0, 1])


def test_fold_leaks_finds_shared_training_data_and_models():
    families = np.array(["vae", "vae", "gan", "gan"])
    seeds = np.array([0, 1, 0, 1])
    folds = fp.seed_folds(families, seeds)
    shared = ["train[:10000]"] * 4                            # v1: every seed on the same images
    disjoint = [f"train[{10000 * s}:{10000 * (s + 1)}]" for s in seeds]
    assert all(ae.fold_leaks(f, disjoint) == [] for f in folds)
    assert all(len(ae.fold_leaks(f, shared)) == 2 for f in folds)
    kde_like = ["vae-s0", "vae-s1", "gan-fit", "gan-fit"]    # one fitted model sampled twice
    leaks = ae.fold_leaks(folds[0], disjoint, models=kde_like)
    assert leaks == ["reference set 3 is model gan-fit, which is also queried"]


def test_open_set_roc_known_answers():
    perfect = ae.open_set_roc([1.0, 2.0, 8.0, 9.0], [False, False, True, True])
    assert perfect.attrs["auc"] == 1.0
    assert {"threshold", "false_reject", "true_reject"} == set(perfect.columns)
    assert perfect.false_reject.is_monotonic_increasing and perfect.true_reject.is_monotonic_increasing
    assert ae.open_set_roc([9.0, 8.0, 1.0, 2.0], [False, False, True, True]).attrs["auc"] == 0.0
    assert ae.open_set_roc([1.0, 1.0, 1.0, 1.0], [False, True, False, True]).attrs["auc"] == 0.5
    with pytest.raises(InputError, match="both kinds"):
        ae.open_set_roc([1.0, 2.0], [True, True])


@pytest.mark.parametrize("lo, hi, verdict", [
    (0.10, 0.40, "reproduced"), (0.31, 0.50, "reproduced"), (0.05, 0.25, "partly"),
    (-0.05, 0.40, "not reproduced"), (0.0, 0.2, "not reproduced"), (float("nan"), 0.5, "not reproduced"),
])
def test_paired_gap_verdict_known_answers(lo, hi, verdict):
    assert claims.paired_gap_verdict(lo, hi) == verdict


def test_open_set_scores_leave_a_whole_family_out_and_find_a_far_one():
    """Two architectures of family 'far' sit far from everything: leaving the family out takes
    both with it, and their queries score farther than every known query (ROC AUC 1)."""
    rng = np.random.default_rng(0)
    archs = np.array(["a", "a", "b", "b", "far-x", "far-x", "far-y", "far-y"])
    fams = np.array(["a", "a", "b", "b", "far", "far", "far", "far"])
    seeds = np.array([0, 1] * 4)
    level = {"a": 0.0, "b": 5.0, "far-x": 100.0, "far-y": 101.0}
    curves = [level[a] + rng.normal(0, 0.1, (3, 4)) for a in archs]
    scores = ae.open_set_scores(curves, archs, seeds, fams)
    assert list(scores.columns) == ["left_out", "seed", "set", "unknown", "score"]
    far = scores[scores.left_out == "far"]
    assert set(far[far.unknown].set) == {4, 5, 6, 7}           # both architectures are unknown
    assert ae.open_set_roc(far.score, far.unknown).attrs["auc"] == 1.0
    # per (left-out family, seed): the known sets of that seed and every set of the family, 3 subsets each
    assert len(scores) == 3 * 2 * ((3 + 2) + (3 + 2) + (2 + 4))


def test_close_pairs_and_pair_accuracy_known_answers():
    pairs = ae.close_pairs({"a": 100.0, "b": 95.0, "c": 50.0, "d": 54.0})
    assert [(a, b) for a, b, _ in pairs] == [("a", "b"), ("c", "d")]      # 5 % then 7.4 % apart
    assert pairs[0][2] == pytest.approx(0.05)
    assert ae.close_pairs({"a": 100.0, "b": 80.0}) == []
    preds = pd.DataFrame(dict(method="m", true=["a", "a", "b", "b", "c"], pred=["a", "b", "b", "c", "a"],
                              query_size=10))
    table = ae.pair_accuracy(preds, [("a", "b", 0.05)], ["query_size"])
    # a->a right, a->b wrong, b->b right; b->c left the pair (not counted), c is not in the pair
    assert table.to_dict("records") == [dict(query_size=10, method="m", pair="a | b", accuracy=2 / 3, n_queries=3)]


def test_leave_one_seed_out_allows_two_architectures_of_a_family_per_seed():
    families = np.array(["vae", "vae", "vae", "vae", "gan", "gan"])     # vae and vae-mlp at seeds 0, 1
    seeds = np.array([0, 0, 1, 1, 0, 1])
    folds = ae.leave_one_seed_out(families, seeds)
    assert [f.held_out for f in folds] == [0, 1]
    assert folds[0].queries.tolist() == [0, 1, 4] and folds[0].refs.tolist() == [2, 3, 5]
    with pytest.raises(InputError, match="no set besides seed"):
        ae.leave_one_seed_out(np.array(["vae", "gan"]), np.array([0, 1]))
