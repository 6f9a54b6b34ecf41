"""Re-runs give byte-identical CSVs: notebook 01 on the smoke profile, recomputed from scratch
in a fresh cache, must reproduce the smoke run's CSVs exactly."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_rerun_from_empty_cache_gives_identical_csvs(tmp_path):
    # the smoke run (tests/test_notebooks.py, or make smoke) wrote smoke-out/figures with the project cache;
    # here everything — encoder conversion, features, references — is recomputed in an empty cache.
    reference = REPO / "smoke-out" / "figures" / "ct_sanity_kde.csv"
    if not reference.exists():
        subprocess.run([sys.executable, "-m", "memlib", "--profile", "smoke", "run-notebooks", "01"],
                       cwd=REPO, check=True, capture_output=True)
    out = tmp_path / "figures"
    env = {**os.environ, "MEMLIB_CACHE": str(tmp_path / "cache")}
    code = ("import papermill; papermill.execute_notebook('notebooks/01_ct_sanity.ipynb', "
            f"'{tmp_path}/01.ipynb', parameters={{'profile': 'smoke', 'figures_dir': '{out}'}}, "
            "progress_bar=False, kernel_name='python3')")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)
    assert (out / "ct_sanity_kde.csv").read_bytes() == reference.read_bytes()
