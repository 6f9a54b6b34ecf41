"""Claim 3-recipe (memlib.claims.claim_3_recipe_verdict / claim_3_recipe_claim): known answers of
the rule, written before any recipe model existed, on synthetic curves whose recipes cluster by
architecture or scatter."""
import numpy as np
import pandas as pd
import pytest

from memlib import claims
from memlib import recipe_eval as re_

FAMILY = {"a": "f1", "a2": "f1", "b": "f2", "c": "f3"}.get


@pytest.mark.parametrize("worst_hi, share, n_arch, n_fam, want", [
    (0.5, 1.0, 3, 2, "reproduced"),
    (0.999, 1.0, 3, 2, "reproduced"),
    (1.0, 1.0, 3, 2, "partly"),            # the CI must lie strictly below 1
    (1.2, 0.5, 4, 3, "partly"),
    (1.2, 0.49, 4, 3, "not reproduced"),
    (float("nan"), 0.0, 3, 2, "not reproduced"),
    (0.5, 1.0, 2, 2, "untestable here"),   # too few architectures
    (0.5, 1.0, 3, 1, "untestable here"),   # one family only
])
def test_verdict_known_answers(worst_hi, share, n_arch, n_fam, want):
    assert claims.claim_3_recipe_verdict(worst_hi, share, n_arch, n_fam) == want


def synthetic(spread_recipe, archs=("a", "a2", "b", "c"), recipes=("default", "half-steps", "lr-x2"),
              seeds=(0, 1), spread_run=0.02, seed=0):
    """Full-set curves on 6 layers: architecture k has level k and slope k; each (architecture,
    recipe) adds an offset of size spread_recipe, each run noise of size spread_run."""
    rng = np.random.default_rng(seed)
    rows = [(a, r, s) for a in archs for r in recipes for s in seeds]
    t = pd.DataFrame(rows, columns=["arch", "recipe", "seed"])
    shape = np.linspace(-1, 1, 6)
    off = {(a, r): rng.normal(0, spread_recipe, 6) for a in archs for r in recipes}
    curves = np.stack([archs.index(a) * (1 + shape) + off[a, r] + rng.normal(0, spread_run, 6)
                       for a, r in zip(t.arch, t.recipe)])
    return t, curves


def row_of(t, curves):
    arch = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=300, seed=3)
    fam = None
    if t.arch.map(FAMILY).nunique() > 1:
        fam = re_.recipe_separation(curves, t.arch.map(FAMILY), t.arch + "/" + t.recipe, t.seed, n_boot=300, seed=3)
    return claims.claim_3_recipe_claim(arch, FAMILY, family=fam)


def test_recipes_that_cluster_by_architecture_reproduce():
    row = row_of(*synthetic(0.02))
    assert set(row) == set(claims.CLAIM_COLUMNS)
    assert row["claim"] == claims.CLAIM_3_RECIPE == "3-recipe"
    assert row["verdict"] == "reproduced"
    assert row["ci_high"] < 1 and row["ci_low"] <= row["value"] <= row["ci_high"] and row["value"] < 0.2
    assert "4 architectures of >= 3 recipes x >= 2 seeds from 3 families" in row["metric"]
    assert "family grain" in row["metric"] and "95% CI of the largest ratio" in row["rule"]


def test_recipes_that_scatter_do_not_reproduce():
    row = row_of(*synthetic(2.0))
    assert row["value"] > 1 and row["verdict"] in ("not reproduced", "partly")
    assert row["verdict"] != "reproduced"


def test_too_few_recipes_is_untestable():
    t, curves = synthetic(0.02, recipes=("default", "half-steps"))      # 2 recipes: below the minimum
    assert row_of(t, curves)["verdict"] == "untestable here"
    t, curves = synthetic(0.02, seeds=(0, 1))
    keep = ~(t.arch.isin(["b", "c"]))                                    # family f1 only
    assert row_of(t[keep].reset_index(drop=True), curves[keep.to_numpy()])["verdict"] == "untestable here"


def test_rule_history_says_before():
    out = claims.with_rule_history(pd.DataFrame({"claim": [claims.CLAIM_3_RECIPE]}))
    # fixed before its first numbers (an uncommitted cold run of 6512366, after the rule's commit)
    assert out.rule_history.tolist() == ["before"] and out.numbers_first_seen.tolist() == ["6512366"]
    assert out.rule_commit.tolist() == ["8637873"]


def family_row_of(t, curves):
    arch = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=300, seed=3)
    fam = re_.recipe_separation(curves, t.arch.map(FAMILY), t.arch + "/" + t.recipe, t.seed, n_boot=300, seed=3)
    return claims.claim_3_recipe_family_claim(fam, arch, FAMILY)


def test_family_grain_row_has_its_own_id_rule_and_condition():
    """The family row: its own claim id and rule (families as labels, (architecture, recipe)
    pairs as recipes), reproduced where every family's recipes cluster, untestable under the
    architecture row's data condition, not reproduced where recipes scatter."""
    row = family_row_of(*synthetic(0.02, archs=("a", "b", "c")))
    assert set(row) == set(claims.CLAIM_COLUMNS) and row["claim"] == claims.CLAIM_3_RECIPE_FAMILY == "3-recipe-family"
    assert row["verdict"] == "reproduced" and row["ci_high"] < 1
    assert "nearest set of another family" in row["rule"] and "95% CI" in row["rule"]
    assert row["rule"] != claims.RULE_3_RECIPE.format(level=0.95)
    t, curves = synthetic(0.02, recipes=("default", "half-steps"))      # 2 recipes: below the minimum
    assert family_row_of(t, curves)["verdict"] == "untestable here"
    scattered = family_row_of(*synthetic(3.0, archs=("a", "b", "c")))
    assert scattered["verdict"] != "reproduced"


def test_family_rule_history_says_before():
    out = claims.with_rule_history(pd.DataFrame({"claim": [claims.CLAIM_3_RECIPE_FAMILY]}))
    assert out.rule_history.tolist() == ["before"] and out.numbers_first_seen.tolist() == ["6512366"]
