"""Tweaking one value never touches the committed study (docs/tweaking.md)."""
import hashlib
import shutil
from pathlib import Path

import pytest

from memlib.params import away_from_committed_figures, load_params, notebook_params, off_profile_keys

REPO = Path(__file__).resolve().parent.parent


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_notebook_run_with_an_override_leaves_figures_untouched():
    """Notebook 00 of the default profile with one value changed (papermill -p n_cells 4),
    run from the checkout as the README shows: its figures go to out/default-n_cells-4/,
    and every file of the committed figures/ keeps its bytes."""
    import papermill
    out = REPO / "out" / "default-n_cells-4"
    shutil.rmtree(out, ignore_errors=True)
    before = _tree_digest(REPO / "figures")
    made_out = not (REPO / "out").exists()
    executed = out / "executed" / "00_ct_by_hand.ipynb"
    executed.parent.mkdir(parents=True)
    try:
        papermill.execute_notebook(str(REPO / "notebooks" / "00_ct_by_hand.ipynb"), str(executed),
                                   parameters={"profile": "default", "n_cells": 4},
                                   cwd=str(REPO), progress_bar=False, kernel_name="python3")
        assert _tree_digest(REPO / "figures") == before
        assert (out / "ct_by_hand_scores.csv").exists() and not (out / "claims.csv").exists()
    finally:                       # only what this test made: a user's own out/ folders stay
        shutil.rmtree(out, ignore_errors=True)
        if made_out:
            shutil.rmtree(REPO / "out", ignore_errors=True)


@pytest.mark.parametrize("overrides, folder", [
    ({"token": "mean"}, "out/default-token-mean"),
    ({"n_cells": 10, "pca_dim": 32}, "out/default-n_cells-10-pca_dim-32"),
    ({"torch_threads": 1, "zoo_workers": 1}, "figures"),          # numbers unchanged: on profile
    ({"token": "mean", "figures_dir": "mine"}, "mine"),           # your own folder is kept
    ({"token": "mean", "figures_dir": "figures"}, "out/default-token-mean"),   # never figures/
])
def test_off_profile_runs_get_their_own_folder(overrides, folder, capsys):
    params = notebook_params({"profile": "default", **overrides})
    assert params["figures_dir"] == folder
    said = capsys.readouterr().out
    assert ("off the default profile" in said) == folder.startswith("out/")


def test_a_partial_yaml_is_off_profile_and_long_names_are_cut(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("zoo_train: 'fashion-mnist:train[:20000]'\ntest: 'fashion-mnist:test[:3000]'\n"
                    "reference_train: 'fashion-mnist:train[50000:56000]'\n")
    params = away_from_committed_figures(load_params(path=path))
    assert off_profile_keys(params) == ["reference_train", "test", "zoo_train"]
    name = params["figures_dir"]
    assert name.startswith("out/default-reference_train-fashion-mnist_train_50000_56000_")
    assert len(name.split("/", 1)[1]) == len("default-") + 60
    again = away_from_committed_figures(load_params(path=path))["figures_dir"]
    assert again == name                                    # the same change, the same folder


def test_the_smoke_profile_and_other_profiles_stay_where_they_are():
    assert notebook_params({"profile": "smoke"})["figures_dir"] == load_params("smoke")["figures_dir"]
    assert off_profile_keys(load_params("default")) == []


@pytest.mark.parametrize("overrides, message", [
    ({"n_cells": 25}, r"n_cells = 25 cannot be fitted: a T of gradient_sizes = 16 point\(s\)"),
    ({"n_cells": 4, "control_n_train": 3}, r"control_n_train = 3"),
    ({"control_m": 20}, r"control_m = 20: a generated set of at most 20 points keeps no cell"),
])
def test_values_known_not_to_work_are_refused_before_any_cell(overrides, message):
    from memlib.errors import ParameterError
    with pytest.raises(ParameterError, match=message):
        notebook_params({"profile": "default", **overrides})


def test_run_notebooks_refuses_them_before_the_first_notebook(tmp_path, monkeypatch):
    """make figures NB=03 PARAMS=my.yaml with n_cells: 50 fails at once, writing nothing."""
    from memlib.errors import ParameterError
    from memlib.notebooks import run_notebooks
    import papermill
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    path = tmp_path / "my.yaml"
    path.write_text("n_cells: 50\n")
    with pytest.raises(ParameterError, match="n_cells = 50"):
        run_notebooks("default", ["03"], params_file=path)
    assert not (REPO / "out").exists() or not any((REPO / "out").glob("default-n_cells-50*"))


def test_every_profile_passes_its_own_check():
    from memlib.params import PROFILES, check_cells_fit
    for profile in PROFILES:
        check_cells_fit(load_params(profile))
