"""bench.compare_figures: which tables of two runs differ, by how much, and whether verdicts moved."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.compare_figures import compare_claims, compare_tables

REPO = Path(__file__).resolve().parent.parent


def _run(folder: Path, ct_shift: float = 0.0, verdict: str = "partly") -> Path:
    folder.mkdir(parents=True)
    pd.DataFrame({"layer": [1, 2, 3], "ct": [-2.0, 0.5 + ct_shift, 4.0],
                  "space": ["L1", "L2", "L3"]}).to_csv(folder / "curves.csv", index=False)
    pd.DataFrame({"claim": ["1-depth", "2-levels"], "value": [0.25, 1.0],
                  "verdict": ["not reproduced", verdict]}).to_csv(folder / "claims.csv", index=False)
    pd.DataFrame({"train_seconds": [1.0 + ct_shift]}).to_csv(folder / "zoo_cost.csv", index=False)
    return folder


def test_identical_runs(tmp_path):
    a = _run(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    table = compare_tables(a, b)
    assert set(table.table) == {"curves.csv", "claims.csv"}      # wall-clock table skipped
    assert (table.status == "identical").all()
    assert compare_claims(a, b).same_verdict.all()


def test_differences_are_measured_per_column(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", ct_shift=0.3, verdict="reproduced")
    (b / "extra.csv").write_text("x\n1\n")
    table = compare_tables(a, b).set_index(["table", "column"], drop=False)
    row = table.loc[("curves.csv", "ct")]
    assert row.status == "differs" and abs(row.max_abs_diff - 0.3) < 1e-12
    assert abs(row.median_abs_diff - 0.0) < 1e-12 and row.median_abs == 2.0
    assert ("curves.csv", "layer") not in table.index and ("curves.csv", "space") not in table.index
    assert table.loc[("claims.csv", "verdict")].text_cells_differ == 1
    assert f"only in {b}" in set(table.status)
    claims = compare_claims(a, b).set_index("claim")
    assert claims.same_verdict.to_dict() == {"1-depth": True, "2-levels": False}


def test_command_line(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", ct_shift=0.3)
    proc = subprocess.run([sys.executable, "-m", "bench.compare_figures", str(a), str(b)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "curves.csv" in proc.stdout and "0.3" in proc.stdout and "same_verdict" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "bench.compare_figures", str(tmp_path / "no"), str(b)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "is not a folder" in bad.stderr


def test_claim_values_are_checked_against_the_reference_runs_ci(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pd.DataFrame({"claim": ["c1", "c2", "c3"], "value": [0.07, -0.16, 0.83], "ci_low": [0.06, -0.19, None],
                  "ci_high": [0.08, -0.11, None], "verdict": ["reproduced", "partly", "partly"]}
                 ).to_csv(a / "claims.csv", index=False)
    pd.DataFrame({"claim": ["c1", "c2", "c3"], "value": [0.075, -0.25, 0.67],
                  "verdict": ["reproduced", "partly", "not reproduced"]}).to_csv(b / "claims.csv", index=False)
    c = compare_claims(a, b).set_index("claim")
    assert c.loc["c1", "b_in_a_ci"] is True and c.loc["c2", "b_in_a_ci"] is False
    assert pd.isna(c.loc["c3", "b_in_a_ci"])                       # no CI: not judged
    assert c.same_verdict.to_dict() == {"c1": True, "c2": True, "c3": False}
