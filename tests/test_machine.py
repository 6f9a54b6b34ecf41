"""`auto` resource settings (memlib.machine) and the provenance record (memlib.provenance)."""
import json

import pytest

from memlib import machine, provenance
from memlib.errors import ParameterError
from memlib.params import load_params


@pytest.mark.parametrize("value, auto, expected", [("auto", 8, 8), ("auto", 0, 1), (3, 8, 3), (1, 16, 1)])
def test_resolve_count(value, auto, expected):
    assert machine.resolve_count(value, "k", auto) == expected


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "many", None])
def test_resolve_count_rejects_what_is_not_auto_or_positive(bad):
    with pytest.raises(ParameterError, match="'k' must be 'auto' or a positive integer"):
        machine.resolve_count(bad, "k", 4)


def test_auto_workers_follow_the_cores_and_never_exceed_the_models(monkeypatch):
    monkeypatch.setattr(machine, "available_cores", lambda: 16)
    assert machine.zoo_workers({"zoo_workers": "auto"}, n_models=30) == 16
    assert machine.zoo_workers({"zoo_workers": "auto"}, n_models=5) == 5
    assert machine.zoo_workers({"zoo_workers": 3}, n_models=1) == 3        # explicit wins
    assert machine.torch_threads({"torch_threads": "auto"}) == 16
    assert machine.torch_threads({"torch_threads": 2}) == 2


def test_params_accept_auto_or_a_count_and_nothing_else():
    assert load_params("default")["zoo_workers"] == "auto"
    assert load_params("default", overrides={"zoo_workers": 4, "torch_threads": 1})["torch_threads"] == 1
    for bad in (0, "four", 2.5, False):
        with pytest.raises(ParameterError, match="'auto' or a positive integer"):
            load_params("default", overrides={"zoo_workers": bad})


def test_apply_torch_threads_sets_torch():
    import torch
    before = torch.get_num_threads()
    try:
        assert machine.apply_torch_threads({"torch_threads": 1}) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_provenance_record_names_the_run(tmp_path):
    from memlib.notebooks import REPO
    params = load_params("smoke")
    rows = [{"notebook": "00_a", "seconds": 1.25, "finished": "t0", "cpu": "x"},
            {"notebook": "01_b", "seconds": 2.0, "finished": "t1", "cpu": "x"}]
    record = provenance.collect(params, "smoke", rows, REPO, complete=False)
    path = provenance.write(tmp_path / "provenance.json", record)
    back = provenance.read(path)
    assert back == json.loads(json.dumps(record))
    assert back["total_seconds"] == 3.2 and [n["notebook"] for n in back["notebooks"]] == ["00_a", "01_b"]
    assert back["profile"] == {"name": "smoke", "sha256": provenance.params_sha256(params)}
    assert back["compute"]["precision"] in ("float32", "bfloat16-autocast")
    assert back["machine"]["cpu"] == machine.cpu_model()
    assert set(back["machine"]["cpu_flags"]) <= set(provenance.FLAGS_THAT_MATTER)
    assert back["versions"]["torch"] and back["versions"]["numpy"]
    assert len(back["git"]["commit"] or "") in (0, 40)


def test_params_hash_changes_with_any_value_and_not_with_order():
    a = {"x": 1, "y": [1, 2]}
    assert provenance.params_sha256(a) == provenance.params_sha256({"y": [1, 2], "x": 1})
    assert provenance.params_sha256(a) != provenance.params_sha256({"x": 1, "y": [2, 1]})


def test_git_state_ignores_the_figures_the_run_rewrites(tmp_path):
    import subprocess
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    run("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.csv").write_text("x\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "figures" / "a.csv").unlink()            # a cold run deletes the committed figures
    assert provenance.git_state(tmp_path, outputs="figures")["dirty"] is False
    assert provenance.git_state(tmp_path)["dirty"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path, outputs="figures")["dirty"] is True
    assert len(provenance.git_state(tmp_path)["commit"]) == 40


@pytest.mark.parametrize("env, computed", [("0", "float32"), ("1", "bfloat16-autocast")])
def test_precision_line_names_the_cpu_and_what_auto_computes(env, computed, monkeypatch):
    from memlib.machine import cpu_model, precision_line
    monkeypatch.setenv("MEMLIB_NATIVE_BF16", env)
    line = precision_line()
    assert line.startswith(f"CPU: {cpu_model()} (")
    assert line.endswith(f"precision auto -> {computed} (MEMLIB_NATIVE_BF16={env})")
