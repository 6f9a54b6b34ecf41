"""memlib.sensitivity_eval: settings reach the study, cached final-norm features equal the norm
applied by hand, claims that a setting cannot afford are marked and never count as flips."""
import numpy as np
import pytest

from memlib import sensitivity_eval as se
from memlib.errors import ParameterError
from memlib.params import load_params


@pytest.fixture(scope="module")
def smoke():
    return load_params("smoke")


def test_final_norm_setting_applies_the_encoders_norm_to_every_cached_layer(smoke, cache_dir):
    from memlib.encoders import shared_encoder
    from memlib.study import Study
    images = Study(smoke).images("test").images[:16]
    raw = Study(smoke).features(images, name="raw")
    normed = se.setting_study(smoke, {"final_norm": True}).features(images, name="raw")
    enc = shared_encoder(smoke["encoder"], smoke["image_size"], smoke["device"], smoke["precision"])
    assert len(normed) == len(raw)
    for layer in (0, len(raw) - 1):
        np.testing.assert_allclose(normed[layer], enc.apply_final_norm(raw[layer]), atol=1e-6)
        assert np.abs(normed[layer] - raw[layer]).max() > 0.1
    pixels = se.setting_study(smoke, {"final_norm": True}).features(images, encoder="pixels")
    np.testing.assert_array_equal(pixels[0], Study(smoke).features(images, encoder="pixels")[0])


def test_settings_reach_the_study(smoke):
    s = se.setting_study(smoke, {"n_cells": 5, "pca_dim": None, "reference_n": 300,
                                 "reference_split": "fashion-mnist:train[31000:31600]"})
    assert s.params["n_cells"] == 5 and s.params["pca_dim"] is None
    assert s.params["reference_train"] == "fashion-mnist:train[31000:31600]"
    assert len(s.images("reference_train")) == 300
    assert len(se.setting_study(smoke, {"reference_split": "default"}).images("reference_train")) == 600


def test_bad_settings_are_refused(smoke):
    with pytest.raises(ParameterError, match="token cls"):
        se.setting_study(smoke, {"final_norm": True, "token": "mean"})
    with pytest.raises(ParameterError, match="final_norm: false"):
        se.setting_study({**smoke, "final_norm": True}, {})


def test_which_claims_a_setting_runs(smoke):
    assert se.default_reference_n(smoke) == 600
    assert se.claims_run(smoke, {"n_cells": 5}) == {"1": "", "2": "", "3-4": ""}
    other_size = se.claims_run(smoke, {"image_size": 48})
    assert other_size["3-4"] == "" and "48 px" in other_size["1"] and "48 px" in other_size["2"]
    for t in ({"reference_n": 300}, {"reference_split": "fashion-mnist:train[31000:31600]"}):
        why = se.claims_run(smoke, t)
        assert why["1"] == why["3-4"] == "" and "another T" in why["2"]
    assert se.claims_run(smoke, {"reference_n": 600})["2"] == ""        # the whole T is the default


def test_sensitivity_table_with_toy_evaluators(smoke, monkeypatch):
    """Toy evaluators read the study's n_cells: the verdict flips at n_cells=5 only; claim 2 is
    not run at another T and its rows are never flips."""
    def toy(claim):
        def evaluator(study, sub, m):
            big = study.params["n_cells"] > 3
            return [dict(claim=claim, value=float(study.params["n_cells"]), ci_low=0.0, ci_high=1.0,
                         verdict="reproduced" if big else "partly")]
        return evaluator
    monkeypatch.setattr(se, "EVALUATORS", {"1": toy("1-depth-trend"), "2": toy("2-memorization-levels"),
                                           "3-4": toy("3-architecture-signature")})
    monkeypatch.setitem(se.CLAIMS_OF, "3-4", ["3-architecture-signature"])
    table = se.sensitivity_table(smoke, progress=False)
    assert set(table.claim) == {"1-depth-trend", "2-memorization-levels", "3-architecture-signature"}
    flips = table[table.flips]
    assert set(flips.choice) == {"n_cells"} and set(flips.value) == {5}
    not_run = table[table.verdict == se.NOT_RUN]
    assert set(not_run.claim) == {"1-depth-trend", "2-memorization-levels"}
    assert set(not_run.choice) == {"image_size", "reference_n", "reference_split"}
    assert not not_run.flips.any() and not_run.note.str.len().gt(0).all()
    assert (table.seconds >= 0).all()
