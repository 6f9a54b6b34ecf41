"""Execute the numbered notebooks with papermill, in order, for one profile."""
from __future__ import annotations

import csv
import datetime
import os
import platform
import time
from pathlib import Path

from .errors import InputError
from .params import load_params

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The numbered notebooks ``notebooks/NN_*.ipynb`` in order (optionally filtered by prefix)."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in names)]
        if not paths:
            raise InputError(f"no notebook matches {names}; have: "
                             f"{', '.join(p.stem for p in sorted(NOTEBOOK_DIR.glob('*.ipynb')))}")
    return paths


def run_notebooks(profile: str = "default", names: list[str] | None = None,
                  kernel: str | None = None,
                  params_file: str | os.PathLike | None = None) -> list[dict]:
    """Run notebooks with ``-p profile <profile>``; executed copies go to ``<figures_dir>/executed``.

    ``params_file``: your own YAML (keys of ``params/default.yaml``) used instead of the
    profile, passed to every notebook as ``-p params_file <path>``; its ``figures_dir`` decides
    where the outputs go.

    A run of every notebook rebuilds ``<figures_dir>/claims.csv`` from scratch (it deletes the
    file first, so no row of an earlier run survives); a run of some notebooks merges their
    rows into it, keeping the other notebooks' rows.

    Returns one row per notebook (name, profile, seconds, finished, cpu); each notebook's row in
    ``<figures_dir>/executed/timings.csv`` is replaced as soon as it finishes, with the UTC time
    it finished and the CPU it ran on, so a timing read later names the machine that made it.
    """
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager

    params = load_params(profile, path=params_file)
    parameters = {"profile": profile}
    if params_file is not None:
        parameters["params_file"] = str(Path(params_file).resolve())
        profile = Path(params_file).name
    out_dir = REPO / params["figures_dir"] / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    if kernel is None:
        kernel = "memlib" if "memlib" in KernelSpecManager().find_kernel_specs() else "python3"
    paths = notebook_paths(names)
    if paths == notebook_paths():
        from .claims import CLAIMS_TABLE
        (REPO / params["figures_dir"] / CLAIMS_TABLE).unlink(missing_ok=True)
    rows, cpu = [], cpu_model()
    for path in paths:
        start = time.perf_counter()
        print(f"[memlib] {path.name} (profile {profile}) …", flush=True)
        papermill.execute_notebook(str(path), str(out_dir / path.name),
                                   parameters=parameters, kernel_name=kernel,
                                   cwd=str(REPO), progress_bar=True)
        seconds = time.perf_counter() - start
        finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        rows.append({"notebook": path.stem, "profile": profile, "seconds": round(seconds, 1),
                     "finished": finished, "cpu": cpu})
        print(f"[memlib] {path.name} done in {seconds / 60:.1f} min", flush=True)
        _record_timing(out_dir / "timings.csv", rows[-1])
    return rows


TIMING_COLUMNS = ["notebook", "profile", "seconds", "finished", "cpu"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows, e.g. ``x86_64``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _record_timing(path: Path, row: dict) -> None:
    """Replace this notebook's row in ``timings.csv`` (other notebooks' rows are kept; rows
    written before ``finished``/``cpu`` were recorded keep those fields empty)."""
    from .store import atomic_path

    old = []
    if path.exists():
        with open(path, newline="") as f:
            old = [r for r in csv.DictReader(f) if r["notebook"] != row["notebook"]]
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, TIMING_COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(old + [row], key=lambda r: r["notebook"]))
