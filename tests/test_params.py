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
