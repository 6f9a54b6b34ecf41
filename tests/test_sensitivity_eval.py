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


def test_final_norm_is_applied_once_to_the_first_rows_of_a_set(smoke, cache_dir, monkeypatch):
    """Study.features cuts the first rows from the whole set's features, which SettingStudy
    already normed: the norm (here a stand-in that is not idempotent) is applied once."""
    from memlib.encoders import shared_encoder
    from memlib.study import Study
    images = Study(smoke).images("test").images[:16]
    raw = Study(smoke).features(images, name="raw")
    enc = shared_encoder(smoke["encoder"], smoke["image_size"], smoke["device"], smoke["precision"])
    monkeypatch.setattr(enc, "apply_final_norm", lambda x: x + 1.0)
    for whole_set_used in (True, False):
        first = se.setting_study(smoke, {"final_norm": True}).features(images, name="raw", first=5,
                                                                      whole_set_used=whole_set_used)
        assert first.n == 5
        np.testing.assert_allclose(first[0], raw[0][:5] + 1.0, atol=0.05)


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


def test_a_setting_that_leaves_ct_undefined_is_marked_not_a_flip(smoke, monkeypatch):
    """An evaluator whose C_T is undefined at a setting (InputError, as a kept cell without test
    points raises) gives UNDEFINED rows with the error in the note, never a flip; the same error
    at the defaults stops the table (every claim must be decided there)."""
    from memlib.errors import InputError
    limit = smoke["n_cells"]

    def fragile(study, sub, m):
        if study.params["n_cells"] > limit:
            raise InputError("test (layer 7): cell 3 holds 22 generated points of gen but no test points")
        return [dict(claim="1-depth-trend", value=0.5, ci_low=0.1, ci_high=0.9, verdict="reproduced")]

    def steady(claim):
        return lambda study, sub, m: [dict(claim=claim, value=0.5, ci_low=0.1, ci_high=0.9, verdict="reproduced")]
    monkeypatch.setattr(se, "EVALUATORS", {"1": fragile, "2": steady("2-memorization-levels"),
                                           "3-4": steady("3-architecture-signature")})
    monkeypatch.setitem(se.CLAIMS_OF, "3-4", ["3-architecture-signature"])
    table = se.sensitivity_table(smoke, progress=False)
    undefined = table[table.verdict == se.UNDEFINED]
    bigger = [v for v in smoke["sensitivity_grid"]["n_cells"] if v > limit]
    assert bigger, "the smoke grid must vary n_cells above the default"
    assert set(undefined.claim) == {"1-depth-trend"} and set(undefined.choice) == {"n_cells"}
    assert sorted(undefined.value) == sorted(bigger)
    assert undefined.note.str.contains("no test points").all()
    assert not undefined.flips.any() and not table.flips.any()
    assert se.not_run_mask(table)[table.verdict.eq(se.UNDEFINED).to_numpy()].all()
    monkeypatch.setitem(smoke, "n_cells", max(bigger))
    with pytest.raises(InputError, match="no test points"):
        se.sensitivity_table(smoke, progress=False)


def test_a_nan_number_off_the_defaults_is_undefined_and_pca_none_is_named(smoke, monkeypatch):
    """A claim whose number is NaN at a non-default setting (its cells too small to keep) is
    UNDEFINED with the cells arithmetic in the note, not a flip to 'not reproduced'; the same
    claim at the defaults keeps its own verdict. pca_dim null is written as 'none'."""
    limit = smoke["n_cells"]

    def thin(study, sub, m):
        nan = float("nan")
        if study.params["n_cells"] > limit:
            return [dict(claim="2-memorization-levels", value=nan, ci_low=nan, ci_high=nan, verdict="not reproduced")]
        return [dict(claim="2-memorization-levels", value=-0.2, ci_low=-0.3, ci_high=-0.1, verdict="partly")]

    def steady(claim):
        return lambda study, sub, m: [dict(claim=claim, value=0.5, ci_low=0.1, ci_high=0.9, verdict="reproduced")]
    monkeypatch.setattr(se, "EVALUATORS", {"1": steady("1-depth-trend"), "2": thin,
                                           "3-4": steady("3-architecture-signature")})
    monkeypatch.setitem(se.CLAIMS_OF, "3-4", ["3-architecture-signature"])
    monkeypatch.setitem(smoke, "sensitivity_grid", {**smoke["sensitivity_grid"], "pca_dim": [smoke["pca_dim"], None]})
    table = se.sensitivity_table(smoke, progress=False)
    undefined = table[table.verdict == se.UNDEFINED]
    assert set(undefined.claim) == {"2-memorization-levels"} and set(undefined.choice) == {"n_cells"}
    assert sorted(undefined.value) == sorted(v for v in smoke["sensitivity_grid"]["n_cells"] if v > limit)
    assert undefined.note.str.contains("per cell on average").all()
    assert not table.flips.any()
    default_row = table[(table.claim == "2-memorization-levels") & table.is_default & (table.choice == "n_cells")]
    assert default_row.verdict.tolist() == ["partly"]
    assert "none" in set(table[table.choice == "pca_dim"].value)


# --------------------------------------------------------------------------- the real evaluators


def _notebook02_claim(study):
    """Notebook 02's claim-2 computation, cell by cell (copies of T, fresh copies, three spaces)."""
    from memlib import bootstrap, claims, copies, copy_sensitivity
    P = study.params
    m, seed = P["copy_m"], P["seed"]
    train = study.images("reference_train")
    source_index = copies.pick_sources(len(train), m, seed)
    fresh = study.images("fresh").images[:m]
    conditions = copy_sensitivity.conditions(P)
    made = {(k, s): copies.make_copies(k, train.images[source_index], strength=s, seed=seed) for k, s in conditions}
    made_fresh = {(k, s): copies.make_copies(k, fresh, strength=s, seed=seed) for k, s in conditions}

    def copies_features(encoder, kind, s):
        if kind == "exact":
            return study.features(train, encoder=encoder).subset(source_index)
        return study.features(made[kind, s], encoder=encoder, name=f"copies-{kind}-{s:g}")

    def fresh_features(encoder, kind, s):
        return study.features(made_fresh[kind, s], encoder=encoder, name=f"fresh-{kind}-{s:g}")

    draws = bootstrap.resample_indices(m, P["n_bootstrap"], seed)
    spaces = [P["encoder"], P["encoder"] + "+shuffled", "pixels"]
    sens = copy_sensitivity.measure_spaces(spaces, conditions, lambda e: study.reference(encoder=e),
                                           copies_features, fresh_features, draws, progress=False)
    return claims.copy_levels_claim(copy_sensitivity.contrast_table(sens, P["encoder"], P["ci_level"]),
                                    copy_sensitivity.crossing_table(sens), encoder=P["encoder"],
                                    n_layers=study.reference().n_layers, level=P["ci_level"])


def _notebook03_kde_claim(study):
    """Notebook 03's claim-1 computation restricted to its KDE group (the sets around T)."""
    import pandas as pd
    from memlib import claims, copies, depth_signal, metrics
    P = study.params
    boot = dict(n_boot=P["n_bootstrap"], seed=P["seed"], level=P["ci_level"])
    train_T, test_images = study.images("reference_train"), study.images("test").images
    contrasts = []
    for sigma in P["kde_sigmas"]:
        samples, _ = copies.kde_samples(train_T.images, sigma=sigma, m=P["copy_m"], seed=P["seed"])
        rate = metrics.copy_metrics(samples, train_T.images, test_images, quantile=P["zoo_copy_quantile"])["copy_rate"]
        _, contrast = depth_signal.score_set(study.reference(), study.features(samples, name=f"kde-{sigma:g}"),
                                             copy_rate=rate, **boot, group="kde", set=f"kde-sigma{sigma:g}")
        if claims.is_copying_set("kde", rate):
            contrasts.extend(contrast)
    table = pd.DataFrame(contrasts, columns=["group", "set", "draw", "contrast"])
    return claims.depth_signal_claim(table, level=P["ci_level"], n_layers=study.reference().n_layers)


def _same_row(a, b):
    assert a["claim"] == b["claim"] and a["verdict"] == b["verdict"], (a, b)
    np.testing.assert_allclose([a["value"], a["ci_low"], a["ci_high"]], [b["value"], b["ci_low"], b["ci_high"]],
                               atol=1e-9, equal_nan=True)


@pytest.fixture(scope="module")
def small(smoke):
    """The smoke profile, smaller still (T of 300, 100 copies, one strength per kind, two KDE
    bandwidths) so that the real evaluators run in seconds on an empty cache."""
    return {**smoke, "reference_train": "fashion-mnist:train[30000:30300]", "test": "fashion-mnist:test[:200]",
            "copy_m": 100, "low_strengths": [1.0], "high_strengths": [1.0], "kde_sigmas": [0.02, 0.5]}


def test_claim2_evaluator_at_the_notebooks_inputs_equals_notebook_02(small, cache_dir):
    """Parity: with notebook 02's m (copy_m) and bootstrap draws, the evaluator is notebook 02;
    a smaller m changes what is computed; a second call gives the same row (n_cells: claim 1's test)."""
    from memlib.study import Study
    full = dict(n_bootstrap=small["n_bootstrap"])
    study = Study(small)
    row = se.copy_levels_rows(study, full, small["copy_m"])
    assert len(row) == 1 and row[0]["claim"] == "2-memorization-levels"
    _same_row(row[0], _notebook02_claim(study))
    _same_row(row[0], se.copy_levels_rows(study, full, small["copy_m"])[0])                # deterministic
    assert se.copy_levels_rows(study, full, 60)[0]["value"] != row[0]["value"]            # m reaches it


def test_claim1_evaluator_at_the_notebooks_inputs_equals_notebook_03(small, cache_dir):
    """Parity on notebook 03's KDE group (no gradient models or mixtures, so no zoo to train):
    the evaluator at m = copy_m is notebook 03's rule on the same sets; n_cells and m reach it;
    a fresh study gives the same row."""
    P = {**small, "gradient_families": [], "mixture_kinds": {}}
    sub = dict(n_bootstrap=P["n_bootstrap"], mixture_families=[], mixture_rho=0.5)
    study = se.setting_study(P, {})
    row = se.depth_trend_rows(study, sub, P["copy_m"])
    assert len(row) == 1 and row[0]["claim"] == "1-depth-trend"
    _same_row(row[0], _notebook03_kde_claim(study))
    _same_row(row[0], se.depth_trend_rows(se.setting_study(P, {}), sub, P["copy_m"])[0])   # deterministic
    assert se.depth_trend_rows(se.setting_study(P, {"n_cells": 5}), sub, P["copy_m"])[0]["value"] != row[0]["value"]
    assert se.depth_trend_rows(study, sub, 60)[0]["value"] != row[0]["value"]
    with pytest.raises(ParameterError, match="positive"):
        se.depth_trend_rows(study, sub, 0)
    with pytest.raises(ParameterError, match="mixture_rho"):
        se.depth_trend_rows(study, {**sub, "mixture_rho": 0.0}, 60)


def test_evaluators_share_one_signature():
    """Every evaluator is (study, subset, m) -> claims.csv-style rows; every claim it may return
    is listed in CLAIMS_OF (the rows a setting that does not run it gets)."""
    import inspect
    assert set(se.EVALUATORS) == set(se.CLAIMS_OF)
    for evaluator in se.EVALUATORS.values():
        assert list(inspect.signature(evaluator).parameters) == ["study", "sub", "m"]
