"""Profiles: one source of defaults; unknown or mistyped keys are rejected by name."""
import pytest

from memlib.errors import ParameterError
from memlib.params import PROFILES, load_params, notebook_params, schema, write_params


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_loads_with_every_key(profile):
    p = load_params(profile)
    assert set(p) == set(schema())
    assert p["profile"] == profile


def test_unknown_key_names_the_key_and_suggests():
    with pytest.raises(ParameterError, match=r"'encodr'.*did you mean 'encoder'"):
        load_params(overrides={"encodr": "x"})


def test_wrong_type():
    with pytest.raises(ParameterError, match="image_size"):
        load_params(overrides={"image_size": "big"})
    assert load_params(overrides={"image_size": 56.0})["image_size"] == 56


def test_params_file_with_unknown_key(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 3\nimage_sise: 56\n")
    with pytest.raises(ParameterError, match="image_sise"):
        load_params(path=f)


def test_unknown_profile():
    with pytest.raises(ParameterError, match="unknown profile"):
        load_params("huge")


def test_notebook_params_takes_injected_values_and_rejects_unknown():
    import numpy
    ns = {"profile": "smoke", "np": numpy, "seed": 7, "In": [], "_": None}
    p = notebook_params(ns)
    assert p["seed"] == 7 and p["encoder"] == load_params("smoke")["encoder"]
    with pytest.raises(ParameterError, match="tokn"):
        notebook_params({**ns, "tokn": "mean"})


def test_write_params_round_trips_with_overrides(tmp_path):
    path = write_params(tmp_path / "p.yaml", "smoke", figures_dir="elsewhere", seed=5)
    again = load_params(path=path)
    assert again == {**load_params("smoke"), "figures_dir": "elsewhere", "seed": 5}
    with pytest.raises(ParameterError, match="sede"):
        write_params(tmp_path / "q.yaml", "smoke", sede=5)
    assert not (tmp_path / "q.yaml").exists()


def test_notebook_params_again_after_the_notebook_ran():
    """Re-running a notebook's setup cell by hand (issue 35): the namespace then holds P, a
    Study, arrays, DataFrames and the notebook's own scalars; none of them is a parameter,
    while a typo'd plain value that papermill could have injected still fails."""
    import numpy
    import pandas
    from memlib.study import Study
    ns = {"profile": "smoke", "np": numpy, "seed": 7, "In": [], "_": None}
    first = notebook_params(ns)
    assert first["seed"] == 7
    # what the rest of notebook 00 leaves behind
    ns.update(P=first, study=Study(first), test=numpy.zeros((4, 2)), train=numpy.ones((5, 2)),
              scores=pandas.DataFrame({"ct": [1.0]}), FLAG=-2.0, m=500, GENERATORS=["fresh", "copier"],
              gens={"fresh": numpy.zeros(3)})
    again = notebook_params(ns)
    assert again == first      # `test` (an array) did not override the `test` spec, P is skipped
    ns["tokn"] = "mean"                      # a name the notebook itself defined after the first call
    assert notebook_params(ns) == first
    with pytest.raises(ParameterError, match="tokn"):   # in a fresh namespace (as papermill injects it)
        notebook_params({**{k: ns[k] for k in ("profile", "np", "seed", "P", "study", "test")}, "tokn": "mean"})


def test_notebook_params_skips_values_papermill_cannot_inject_but_not_plain_typos():
    import numpy
    import pandas
    from memlib.study import Study
    base = {"profile": "smoke", "np": numpy}
    P = notebook_params(dict(base))
    fresh = {**base, "P": P, "study": Study(P), "features": numpy.zeros((3, 2)),
             "table": pandas.DataFrame({"a": [1]}), "rng": numpy.random.default_rng(0)}
    assert notebook_params(fresh) == P                     # no record of an earlier call needed
    for typo in ({"tokn": "mean"}, {"n_cels": 5}, {"query_size": [10, 20]}, {"encoder_": None}):
        with pytest.raises(ParameterError, match=list(typo)[0]):
            notebook_params({**fresh, **typo})
    with pytest.raises(ParameterError, match="'image_size' should be int"):
        notebook_params({**fresh, "image_size": "big"})    # a known key keeps its type check
