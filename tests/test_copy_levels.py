"""memlib.copy_levels: claim 2's one path (notebook 02, the sensitivity grid, notebook 06)."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import claims, copy_levels, copy_sensitivity


@pytest.fixture(scope="module")
def study(cache_dir):
    from memlib.params import load_params
    from memlib.study import Study
    P = {**load_params("smoke"), "reference_train": "fashion-mnist:train[30000:30300]",
         "test": "fashion-mnist:test[:200]", "copy_m": 60, "low_strengths": [1.0], "high_strengths": [0.5, 1.0],
         "n_bootstrap": 12}
    return Study(P)


def test_conditions_transform_copies_and_fresh_images_alike(study):
    cond = copy_levels.make_conditions(study)
    assert cond.m == 60 and cond.conditions == copy_sensitivity.conditions(study.params)
    assert len(set(cond.source_index.tolist())) == 60                        # distinct rows of T
    np.testing.assert_array_equal(cond.made["exact", 0.0], cond.train.images[cond.source_index])
    again = copy_levels.make_conditions(study)                                # seeded: the same copies
    for c in cond.conditions:
        np.testing.assert_array_equal(cond.made[c], again.made[c])
        assert cond.made[c].shape == cond.made_fresh[c].shape == (60, 28, 28, 1)


def test_claim_tables_are_the_rule_and_its_two_intervals(study):
    cond = copy_levels.make_conditions(study)
    sens = copy_levels.measure(study, cond, n_boot=12)
    assert set(sens) == {(s, k, st) for s in (study.params["encoder"], study.params["encoder"] + "+shuffled", "pixels")
                         for k, st in cond.conditions}
    L = study.reference().n_layers
    out = copy_levels.claim_tables(sens, encoder=study.params["encoder"], n_layers=L, level=0.95)
    expect = claims.copy_levels_claim(copy_sensitivity.contrast_table(sens, study.params["encoder"], 0.95),
                                      copy_sensitivity.crossing_table(sens), encoder=study.params["encoder"],
                                      n_layers=L, level=0.95, learned=out.learned, margins=out.margins)
    assert out.row == expect
    assert list(out.margin_table.columns) == copy_levels.MARGIN_COLUMNS
    assert set(out.margin_table.quantity) == {"learned_did", "beyond_margin"}


def test_fewer_rows_are_the_first_rows_of_the_whole_sets(study):
    cond = copy_levels.make_conditions(study)
    whole = copy_levels.measure(study, cond, n_boot=5)
    first = copy_levels.measure(study, cond, n_boot=5, rows=30)
    key = (study.params["encoder"], "low-level", 1.0)
    assert first[key].boot.shape == (5, study.reference().n_layers)
    assert not np.allclose(first[key].point, whole[key].point)               # rows reach the score
    # the first 30 rows scored alone: the same as scoring the cut features directly
    ref = study.reference()
    c = study.features(cond.made["low-level", 1.0], name="copies-low-level-1").subset(np.arange(30))
    f = study.features(cond.made_fresh["low-level", 1.0], name="fresh-low-level-1").subset(np.arange(30))
    direct = copy_sensitivity.measure(ref, c, f, np.zeros((1, 30), int) + np.arange(30))
    np.testing.assert_allclose(first[key].point, direct.point, atol=1e-12)
