"""The notebooks: thin, parameterised, in sync with their jupytext twins, and they run (smoke)."""
from pathlib import Path

import nbformat
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

REQUIRED_COLUMNS = {
    "layer_trends.csv": ["encoder", "architecture", "seed", "variant", "token", "layer", "ct", "ct_lo", "ct_hi"],
    "fingerprint_accuracy.csv": ["method", "query_size", "accuracy", "acc_lo", "acc_hi", "n_queries"],
    "claims.csv": ["claim", "statement", "metric", "value", "paper_value", "verdict"],
    "zoo_quality.csv": ["architecture", "seed", "variant", "fd", "n_samples", "copy_rate"],
    "zoo_cost.csv": ["architecture", "seed", "variant", "train_seconds", "sample_seconds"],
}


def test_there_are_four_numbered_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_parameters_cell_and_matches_twin(path):
    import jupytext
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    twin = jupytext.read(path.with_suffix(".py"))
    assert [c.source for c in twin.cells] == [c.source for c in nb.cells], \
        f"{path.name} differs from {path.with_suffix('.py').name}: run `make notebooks`"


def test_smoke_notebooks_write_tables_with_required_columns(smoke_run):
    for name, columns in REQUIRED_COLUMNS.items():
        table = pd.read_csv(smoke_run / name)
        missing = set(columns) - set(table.columns)
        assert not missing, f"{name} lacks {missing}"
        assert len(table) > 0


def test_smoke_claims_cover_every_paper_claim(smoke_run):
    claims = pd.read_csv(smoke_run / "claims.csv")
    assert {"1-depth-trend", "2-memorization-levels", "3-architecture-signature", "4a-fingerprint-full",
            "4b-fingerprint-vs-baselines"} <= set(claims.claim)
    assert set(claims.verdict) <= {"reproduced", "partly", "not reproduced"}


def test_smoke_every_png_has_its_csv(smoke_run):
    pngs = sorted(smoke_run.glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:
        assert png.with_suffix(".csv").exists(), f"{png.name} has no CSV of its numbers"


def test_smoke_executed_notebooks_saved(smoke_run):
    executed = sorted((smoke_run / "executed").glob("*.ipynb"))
    assert [p.stem[:2] for p in executed] == ["01", "02", "03", "04"]


def test_smoke_timings_name_the_machine_and_when(smoke_run):
    """timings.csv (read by `make bench`) says how long each notebook took, on which CPU, when."""
    import datetime
    from memlib.notebooks import cpu_model
    timings = pd.read_csv(smoke_run / "executed" / "timings.csv")
    assert list(timings.notebook.str[:2]) == ["01", "02", "03", "04"]
    assert (timings.seconds > 0).all() and set(timings.profile) == {"smoke"}
    assert set(timings.cpu) == {cpu_model()}
    now = datetime.datetime.now(datetime.timezone.utc)
    for finished in timings.finished:
        age = now - datetime.datetime.fromisoformat(finished)
        assert datetime.timedelta(0) <= age < datetime.timedelta(hours=2), finished


def test_record_timing_replaces_one_row_and_keeps_older_ones(tmp_path):
    from memlib.notebooks import _record_timing
    path = tmp_path / "timings.csv"
    path.write_text("notebook,profile,seconds\n01_a,default,10.0\n02_b,default,20.0\n")  # old format
    _record_timing(path, {"notebook": "02_b", "profile": "default", "seconds": 5.5,
                          "finished": "2026-12-04T03:00:00+00:00", "cpu": "Some CPU"})
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns) == ["notebook", "profile", "seconds", "finished", "cpu"]
    assert table.to_dict("records") == [
        {"notebook": "01_a", "profile": "default", "seconds": 10.0, "finished": "", "cpu": ""},
        {"notebook": "02_b", "profile": "default", "seconds": 5.5,
         "finished": "2026-12-04T03:00:00+00:00", "cpu": "Some CPU"}]


def test_unknown_notebook_parameter_is_rejected(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError
    with pytest.raises(PapermillExecutionError, match="encodr"):
        papermill.execute_notebook(str(NOTEBOOKS[0]), str(tmp_path / "out.ipynb"),
                                   parameters={"profile": "smoke", "encodr": "x"}, cwd=str(REPO),
                                   progress_bar=False, kernel_name="python3")
