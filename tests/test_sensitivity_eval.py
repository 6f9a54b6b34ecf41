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


def se_one_at_a_time(params):
    from memlib.sensitivity_grid import one_at_a_time
    return one_at_a_time(se.default_settings(params), params["sensitivity_grid"])


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
    """Every claim runs at the large image size (on its subset), only claims 3-4 at another
    size; claim 2 not at another T, claim 1 does (it never reads T)."""
    assert se.default_reference_n(smoke) == 600
    assert se.claims_run(smoke, {"n_cells": 5}) == {"1": "", "2": "", "3-4": ""}
    assert smoke["sensitivity_large_image_size"] == 48
    assert se.claims_run(smoke, {"image_size": 48, "reference_n": 300}) == {"1": "", "2": "", "3-4": ""}
    other_size = se.claims_run(smoke, {"image_size": 40})
    assert other_size["3-4"] == "" and "40 px" in other_size["1"] and "48 px only" in other_size["2"]
    for t in ({"reference_n": 300}, {"reference_split": "fashion-mnist:train[31000:31600]"}):
        why = se.claims_run(smoke, t)
        assert why["1"] == why["3-4"] == "" and "another T" in why["2"]
    assert se.claims_run(smoke, {"reference_n": 600})["2"] == ""        # the whole T is the default
    assert se.IGNORES == {"1": ("reference_n", "reference_split")}


def test_strength_subset_keeps_the_mildest_and_the_strongest():
    p = {"low_strengths": [0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0], "high_strengths": [0.3, 1.0], "x": 1}
    got = se.strength_subset(p, 3)
    assert got["low_strengths"] == [0.05, 0.2, 1.0] and got["high_strengths"] == [0.3, 1.0] and got["x"] == 1
    assert se.strength_subset(p, 7)["low_strengths"] == p["low_strengths"]
    with pytest.raises(ParameterError, match=">= 2"):
        se.strength_subset(p, 1)


def test_sensitivity_table_with_toy_evaluators(smoke, monkeypatch):
    """Toy evaluators read the study's n_cells: the verdict flips at n_cells=5 only; claim 2 is
    not run at another T and its rows are never flips."""
    def toy(claim):
        def evaluator(study, sub, m):
            big = study.params["n_cells"] > 3
            return [dict(claim=claim, value=float(study.params["n_cells"]), ci_low=0.0, ci_high=1.0,
                         verdict="reproduced" if big else "partly")]
        return evaluator
    calls = []

    def counted(study, sub, m):
        calls.append(dict(study.params))
        return toy("1-depth-trend")(study, sub, m)
    monkeypatch.setattr(se, "EVALUATORS", {"1": counted, "2": toy("2-memorization-levels"),
                                           "3-4": toy("3-architecture-signature")})
    monkeypatch.setitem(se.CLAIMS_OF, "1", ["1-depth-trend"])
    monkeypatch.setitem(se.CLAIMS_OF, "3-4", ["3-architecture-signature"])
    table = se.sensitivity_table(smoke, progress=False)
    assert set(table.claim) == {"1-depth-trend", "2-memorization-levels", "3-architecture-signature"}
    flips = table[table.flips]
    assert set(flips.choice) == {"n_cells"} and set(flips.value) == {5}
    not_run = table[table.verdict == se.NOT_RUN]
    assert set(not_run.claim) == {"2-memorization-levels"}
    assert set(not_run.choice) == {"reference_n", "reference_split"}
    assert not not_run.flips.any() and not_run.note.str.len().gt(0).all()
    assert (table.seconds >= 0).all()
    # claim 1 does not read T: at another T its rows are the defaults', not computed again
    other_t = table[(table.claim == "1-depth-trend") & table.choice.isin(["reference_n", "reference_split"])
                    & ~table.is_default]
    assert len(other_t) == 2 and (other_t.seconds == 0).all() and other_t.note.str.contains("does not read").all()
    assert not any(c["reference_train"] != smoke["reference_train"] for c in calls)
    n_settings = len({repr(sorted(st.items())) for _, _, st in se_one_at_a_time(smoke)})
    assert len(calls) == n_settings - 2


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
    monkeypatch.setitem(se.CLAIMS_OF, "1", ["1-depth-trend"])
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
    monkeypatch.setitem(se.CLAIMS_OF, "1", ["1-depth-trend"])
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
    """Notebook 02's claim-2 computation: its three calls into memlib.copy_levels."""
    from memlib import copy_levels
    P = study.params
    sens = copy_levels.measure(study, copy_levels.make_conditions(study), n_boot=P["n_bootstrap"])
    return copy_levels.claim_tables(sens, encoder=P["encoder"], n_layers=study.reference().n_layers,
                                    level=P["ci_level"]).row


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


def test_evaluators_share_one_signature():
    """Every evaluator is (study, subset, m) -> claims.csv-style rows; every claim it may return
    is listed in CLAIMS_OF (the rows a setting that does not run it gets)."""
    import inspect
    assert set(se.EVALUATORS) == set(se.CLAIMS_OF)
    for evaluator in se.EVALUATORS.values():
        assert list(inspect.signature(evaluator).parameters) == ["study", "sub", "m"]


def _toy_claim_one(n_zoo=4):
    """Synthetic claim-1 sets (no zoo, no encoder): zoo sets and gradient near copies whose
    effect rises with depth, one fresh-padded kind, against 3 reference draws of T."""
    from memlib import copy_depth as cd
    from memlib import hierarchical as hb
    rng = np.random.default_rng(0)
    L, D = 6, 8
    train, test = rng.normal(size=(L, 600, D)).astype(np.float32), rng.normal(size=(L, 600, D)).astype(np.float32)
    refs, _ = hb.reference_draws(train, test, n_test=200, n_draws=3, seed=0, n_cells=2, pca_dim=None)
    rising = lambda: np.stack([rng.normal(size=(200, D)).astype(np.float32) * (0.6 + l / (L - 1)) for l in range(L)])
    d = lambda x: cd.distances(refs, x)
    sets = cd.ClaimOneSets()
    for i in range(n_zoo):
        sets.add_zoo(f"z{i}", d(rising()), reference="T", cluster=f"a{i % 2}")
    for i in range(3):
        sets.add_gradient(f"g{i}", d(rising()), np.array(["near"] * 120 + ["none"] * 80), reference="T",
                          cluster=f"g{i}", copy_rate=0.6)
    sets.add_fresh_padded({"low-level": d(train[:, :100] + 0.05)}, d(rising()), [0.5], 200, {"low-level": True},
                          reference="T")
    return sets, {"T": refs}


def test_claim1_rows_are_run_claim_1_with_each_groups_numbers(smoke, monkeypatch):
    """Parity: the grid's claim-1 rows are copy_depth.run_claim_1 on the sets claim_1_sets built
    (value, CI, verdict of 1a and 1b), each with its groups' numbers as columns."""
    from memlib import claims, copy_depth as cd
    sets, refs = _toy_claim_one()
    monkeypatch.setattr(se, "claim_1_sets", lambda study, sub, m: (sets, refs))
    sub = dict(smoke["sensitivity_subset"], n_bootstrap=30)
    study = type("S", (), {"params": smoke, "images": lambda self, key: np.zeros(300)})()
    rows = {r["claim"]: r for r in se.claim_1_rows(study, sub, 200)}
    run = cd.run_claim_1(sets.zoo, sets.copy_sets, [], refs, excluded=sets.excluded, n_boot=30,
                         seed=smoke["seed"], level=smoke["ci_level"], n_layers=6)
    assert set(rows) == {claims.CLAIM_1A, claims.CLAIM_1B}
    for want in run.rows:
        _same_row(rows[want["claim"]], want)
    c = run.contrasts.set_index(["claim", "label"])
    for claim, groups in ((claims.CLAIM_1A, ["zoo"]), (claims.CLAIM_1B, ["gradient", "mixture"])):
        for g in groups:
            assert rows[claim][f"{g}_metric"] == c.loc[(claim, g), "value"]
            assert (rows[claim][f"{g}_ci_low"], rows[claim][f"{g}_ci_high"]) == (c.loc[(claim, g), "ci_low"],
                                                                               c.loc[(claim, g), "ci_high"])
    assert rows[claims.CLAIM_1A]["zoo_n_sets"] == rows[claims.CLAIM_1A]["n_sets"] == 4
    assert (rows[claims.CLAIM_1B]["gradient_n_sets"], rows[claims.CLAIM_1B]["mixture_n_sets"]) == (3, 1)
    assert "gradient_metric" not in rows[claims.CLAIM_1A] and "first m = 200" in rows[claims.CLAIM_1B]["note"]


def test_sensitivity_csv_keeps_claim_1s_groups(smoke, monkeypatch):
    """Through evaluate and the grid: the claim-1 rows carry their groups' columns (NaN on the
    other claims' rows), and no claims.csv text."""
    from memlib import claims
    sets, refs = _toy_claim_one()
    monkeypatch.setattr(se, "claim_1_sets", lambda study, sub, m: (sets, refs))
    steady = lambda claim: (lambda study, sub, m: [dict(claim=claim, value=0.5, ci_low=0.1, ci_high=0.9,
                                                        verdict="reproduced")])
    monkeypatch.setattr(se, "EVALUATORS", {"1": se.claim_1_rows, "2": steady("2-memorization-levels"),
                                           "3-4": steady("3-architecture-signature")})
    monkeypatch.setitem(se.CLAIMS_OF, "3-4", ["3-architecture-signature"])
    monkeypatch.setitem(smoke, "sensitivity_grid", {"n_cells": [3], "reference_n": [300, 600]})
    table = se.sensitivity_table(smoke, progress=False)
    one_b = table[table.claim == claims.CLAIM_1B]
    assert one_b[["gradient_metric", "gradient_ci_low", "mixture_metric", "mixture_ci_high"]].notna().all().all()
    assert table[table.claim == "2-memorization-levels"].gradient_metric.isna().all()
    assert not {"rule", "statement", "metric_text", "paper_value"} & set(table.columns)
    assert len(set(one_b.metric)) == 1 and not table.flips.any()   # at another T: the same rows


def test_claim1_evaluator_on_real_sets_equals_run_claim_1_on_its_sets(smoke, cache_dir):
    """Parity on a small real study (two quick architectures, one gradient model, exact and
    low-level copies): claim_1_rows equals ClaimOneSets.run (run_claim_1) on the sets that
    claim_1_sets builds in a second, fresh study; every set is cut to m rows."""
    from memlib import claims
    P = {**smoke, "zoo_families": ["kde", "gmm"], "zoo_seeds": [0], "zoo_n_samples": 120,
         "gradient_families": ["gmm"], "gradient_sizes": [64], "gradient_n_samples": 120,
         "mixture_kinds": {"exact": 0.0, "low-level": 0.3}, "own_reference_n": 300, "reference_draws": 2}
    sub = dict(P["sensitivity_subset"], n_bootstrap=10)
    with pytest.raises(ParameterError, match="positive"):
        se.claim_1_rows(se.setting_study(P, {}), sub, 0)
    with pytest.raises(ParameterError, match="mixture_rho"):
        se.claim_1_rows(se.setting_study(P, {}), {**sub, "mixture_rho": 0.0}, 60)
    rows = se.claim_1_rows(se.setting_study(P, {}), sub, 100)
    sets, refs = se.claim_1_sets(se.setting_study(P, {}), sub, 100)
    assert [s.name for s in sets.zoo] == ["kde-standard-s0", "gmm-standard-s0"]
    assert all(s.m == 100 for s in sets.zoo + sets.parts) and len(next(iter(refs.values()))) == 2
    assert [s.name for s in sets.parts if s.name.startswith("fresh+")] == ["fresh+exact@0.5", "fresh+low-level@0.5"]
    assert [r["claim"] for r in rows] == [claims.CLAIM_1A, claims.CLAIM_1B]
    run = sets.run(refs, n_boot=10, seed=P["seed"], level=P["ci_level"], n_layers=refs[sets.zoo[0].reference][0].n_layers,
                   decompose=False)
    for got, want in zip(rows, run.rows):
        _same_row(got, want)
