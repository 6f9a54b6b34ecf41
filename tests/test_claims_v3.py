"""Claim 1 of Study v3 (memlib.claims: copy_kind, enters_claim_1b, claim_1a_verdict,
claim_1b_verdict), on inputs whose verdicts are known, and one synthetic run through
memlib.row_effects and memlib.hierarchical whose copy signal weakens with depth by construction."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import claims
from memlib import hierarchical as hb
from memlib import knn, metrics
from memlib.bootstrap import late_minus_early
from memlib.ct import fit_reference
from memlib.row_effects import row_terms, split_table

NAN = float("nan")


def test_copy_kind_known_answers_and_the_manifest_copy_rate():
    got = claims.copy_kind([0.0, 0.1, 0.5, 0.4999, 2.0], 0.5)
    assert got.tolist() == ["exact", "near", "none", "near", "none"]
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(200, 8, 8), dtype=np.uint8)
    test = rng.integers(0, 256, size=(100, 8, 8), dtype=np.uint8)
    near = np.clip(train[:30].astype(int) + rng.integers(-3, 4, size=(30, 8, 8)), 0, 255).astype(np.uint8)
    samples = np.concatenate([train[30:40], near, rng.integers(0, 256, size=(60, 8, 8), dtype=np.uint8)])
    cm = metrics.copy_metrics(samples, train, test, quantile=0.01)
    d = knn.NNIndex(train.reshape(200, -1).astype(np.float32) / 255).distances(
        samples.reshape(100, -1).astype(np.float32) / 255)
    kind = claims.copy_kind(d, cm["copy_threshold"])
    assert (kind != "none").mean() == cm["copy_rate"] == pytest.approx(0.40)
    assert (kind == "exact").mean() == cm["exact_copy_rate"] == pytest.approx(0.10)


def test_enters_claim_1b():
    assert claims.enters_claim_1b("near") is True
    assert claims.enters_claim_1b("exact") is False and claims.enters_claim_1b("exact", seen=True) is False
    assert claims.enters_claim_1b("low-level", seen=True) is True
    assert claims.enters_claim_1b("high-level", seen=False) is False
    with pytest.raises(ValueError, match="kind must be"):
        claims.enters_claim_1b("none")


@pytest.mark.parametrize("ci_low, below, n, want", [
    (0.01, 0, 5, "reproduced"), (0.01, 2, 5, "partly"), (0.0, 0, 5, "not reproduced"),
    (-0.2, 0, 5, "not reproduced"), (NAN, 0, 5, "not reproduced"), (0.3, 0, 1, "untestable here"),
])
def test_claim_1a_verdict(ci_low, below, n, want):
    assert claims.claim_1a_verdict(ci_low, below, n) == want


@pytest.mark.parametrize("ci_low, groups, n, want", [
    (0.02, {"gradient": 0.01, "mixture": 0.03}, 6, "reproduced"),
    (0.02, {"gradient": -0.01, "mixture": 0.03}, 6, "partly"),
    (-0.01, {"gradient": -0.05, "mixture": 0.01}, 6, "partly"),
    (-0.01, {"gradient": -0.05, "mixture": NAN}, 6, "not reproduced"),
    (NAN, {}, 0, "untestable here"),
])
def test_claim_1b_verdict(ci_low, groups, n, want):
    assert claims.claim_1b_verdict(ci_low, groups, n) == want


def test_rules_are_stated_before_numbers():
    assert "exact copies are excluded" in claims.RULE_1B and "fresh real images" in claims.RULE_1B
    assert "descriptive" in claims.RULE_1A and "hierarchical" in claims.RULE_1A


def test_a_copy_signal_that_weakens_with_depth_reads_reproduced_on_the_copy_rows():
    """Near copies whose jitter grows with depth (0.05 -> 0.6 of T's spread) among rows that
    under-fit: the copy rows' effect rises with depth, the net effect hides it."""
    rng = np.random.default_rng(1)
    L, D = 3, 6
    train = rng.normal(size=(L, 400, D)).astype(np.float32)
    test = rng.normal(size=(L, 300, D)).astype(np.float32)
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    jitter = np.array([0.05, 0.3, 0.6])[:, None, None]
    groups = {}
    for g, n_sets in (("gradient", 3), ("mixture", 3)):
        sets = []
        for s in range(n_sets):
            src = rng.choice(400, 80, replace=False)
            copies = train[:, src] + jitter * rng.normal(size=(L, 80, D))
            under = 1.8 * rng.normal(size=(L, 120, D))
            gen = np.concatenate([copies, under], axis=1).astype(np.float32)
            flags = np.arange(200) < 80
            t = split_table(ref, gen, {"all": np.ones(200, bool), "copies": flags})
            eff = t.pivot(index="part", columns="layer", values="effect")
            assert eff.loc["copies"].is_monotonic_increasing
            assert (eff.loc["all"] > 0).all()                       # the net score looks like under-fitting
            dist = ref.layer_distances(gen[:, :80])                # the copy rows as a set of their own
            sets.append(hb.reference_stat(f"{g}{s}", [ref], [dist]))
        groups[g] = sets
    d = hb.reduce_draws(hb.hierarchical_bootstrap(groups, n_boot=200, seed=0, resample=("sets", "points")),
                        late_minus_early)
    t = hb.summary_table(d, 0.95).set_index("label")
    assert t.loc["all", "value"] > 0.3
    verdict = claims.claim_1b_verdict(t.loc["all", "ci_low"], t.drop("all").ci_low.to_dict(), 6)
    assert verdict == "reproduced"
    # and the row terms of the copy rows are what reference_stat re-counts
    terms = row_terms(ref, dist)
    np.testing.assert_allclose((terms.weight * terms.effect).sum(axis=1),
                               ref.subset_curves(dist, [np.arange(80)], statistic="effect")[0], atol=1e-12)
