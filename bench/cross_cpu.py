"""The same study on both CPU kinds: ``python -m bench.cross_cpu record|compare``.

``bench/cross-cpu/<kind>/`` (kind ``amd-epyc`` or ``intel-xeon``) holds the latest cold
``make figures`` of that CPU kind: its ``claims.csv``, ``executed/timings.csv``,
``provenance.json``, ``zoo_cost.csv`` and ``fingerprint_intervals.csv`` as the run wrote them, the
whole-set curves of its fingerprint database (``fingerprint_db/curves.csv`` at the largest
query size, as ``whole_set_curves.csv``: enough to re-judge claims 3-4a under another interval
without the run's cache), its embedding ledger
(``<cache>/ledger/embed.jsonl`` as ``embed-ledger.jsonl``, with ``--ledger``), and ``run.json``
(commit, CPU, wall time and peak RSS of the whole command, set-up included, and the command).
``record`` copies them from a run's figures folder; ``bench.compute_floor`` reads them;
``compare`` writes ``bench/cross-cpu/comparison.md``: both timings, and claim by claim both
values, verdicts and CIs (:func:`bench.compare_figures.claims_agreement`).
``tests/test_cross_cpu.py`` reads the folder: runs of one commit on both kinds must agree in
every verdict, each value inside the other run's CI. Two commits count as one when nothing that
makes the figures differs between them (:func:`science_changes`: ``memlib/``, ``notebooks/``,
``params/``, the set-up and the Makefile), so a run of a later commit that changed only docs or
tests still pairs with the other kind's run.

Record a run (the figures folder of a clean clone after ``/usr/bin/time -v make figures``)::

    python -m bench.cross_cpu record /tmp/cold/figures --wall 3190 --rss-gb 3.6 \
        --ledger /tmp/cold/.cache/memlib/ledger/embed.jsonl
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from bench.compare_figures import claims_agreement as agreement
from bench.compute_floor import RESULT_DIRS, cpu_kind

HERE = Path(__file__).resolve().parent / "cross-cpu"
# the run's files and their names here: figures/claims.csv, figures/executed/timings.csv, figures/provenance.json
FILES = {"claims.csv": "claims.csv", "executed/timings.csv": "timings.csv", "provenance.json": "provenance.json"}
OPTIONAL_FILES = {"zoo_cost.csv": "zoo_cost.csv", "fingerprint_intervals.csv": "fingerprint_intervals.csv"}
DB_CURVES, WHOLE_SET_CURVES = "fingerprint_db/curves.csv", "whole_set_curves.csv"
KINDS = tuple(RESULT_DIRS.values())   # amd-epyc, intel-xeon
REPO = HERE.parent.parent
# what makes the figures: a change here between two commits makes their runs incomparable
SCIENCE_PATHS = ("memlib", "notebooks", "params", "scripts", "pyproject.toml", "environment.yml", "Makefile")


def science_changes(a: str, b: str, repo: Path = REPO) -> list[str] | None:
    """Files under :data:`SCIENCE_PATHS` that differ between commits ``a`` and ``b`` ([] when
    none, or a == b); None when git or either commit is not available (a clone without
    history). A notebook counts by its code cells only (``notebooks/*.ipynb``: what papermill
    runs; markdown never reaches a figure); the jupytext twins ``notebooks/*.py`` are not run."""
    if a == b:
        return []
    try:
        out = subprocess.run(["git", "-C", str(repo), "diff", "--name-only", a, b, "--", *SCIENCE_PATHS],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    changed = []
    for path in out.stdout.split():
        if path.startswith("notebooks/") and path.endswith(".py"):
            continue
        if path.startswith("notebooks/") and path.endswith(".ipynb") and \
                _code_cells(repo, a, path) == _code_cells(repo, b, path) is not None:
            continue
        changed.append(path)
    return changed


def _code_cells(repo: Path, commit: str, path: str) -> list[str] | None:
    """The source of every code cell of notebook ``path`` at ``commit`` (None where it is absent)."""
    shown = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                           timeout=60)
    if shown.returncode != 0:
        return None
    return ["".join(c["source"]) for c in json.loads(shown.stdout)["cells"] if c["cell_type"] == "code"]


def kind_of(cpu: str) -> str:
    """``intel-xeon`` or ``amd-epyc`` from a CPU model name (the bench folders' names)."""
    return RESULT_DIRS[cpu_kind(cpu)]


def record(figures: Path, *, wall_seconds: float, peak_rss_gb: float, command: str, out: Path = HERE,
           ledger: Path | None = None) -> Path:
    """Copy a cold run's :data:`FILES` (and :data:`OPTIONAL_FILES` it has) from ``figures``, and
    its embedding ``ledger`` if given, into ``out/<kind>/`` with ``run.json``."""
    prov = json.loads((figures / "provenance.json").read_text())
    cpu = str(prov["machine"]["cpu"])
    folder = out / kind_of(cpu)
    folder.mkdir(parents=True, exist_ok=True)
    for source, name in FILES.items():
        shutil.copyfile(figures / source, folder / name)
    for source, name in OPTIONAL_FILES.items():
        if (figures / source).exists():
            shutil.copyfile(figures / source, folder / name)
    if (figures / DB_CURVES).exists():
        curves = pd.read_csv(figures / DB_CURVES)
        curves[curves.n == curves.n.max()].to_csv(folder / WHOLE_SET_CURVES, index=False)
    if ledger is not None:
        shutil.copyfile(ledger, folder / "embed-ledger.jsonl")
    commit = prov["git"]["commit"]
    (folder / "run.json").write_text(json.dumps(dict(
        commit=commit, cpu=cpu, wall_seconds=round(float(wall_seconds), 1), peak_rss_gb=float(peak_rss_gb),
        command=command), indent=2) + "\n")
    return folder


def runs(root: Path = HERE) -> dict[str, dict]:
    """{kind: its run.json plus ``folder``, ``claims`` (DataFrame) and ``timings`` (DataFrame)}
    of every recorded kind."""
    out = {}
    for kind in KINDS:
        folder = root / kind
        if (folder / "run.json").exists():
            out[kind] = {**json.loads((folder / "run.json").read_text()), "folder": folder,
                         "claims": pd.read_csv(folder / "claims.csv"),
                         "timings": pd.read_csv(folder / "timings.csv")}
    return out


def rejudged(folder: Path, *, seed: int = 0, level: float = 0.95) -> pd.DataFrame | None:
    """Claims 4a and 4a-shape-only (and claim 3's accuracy interval) judged under today's rule
    (:func:`memlib.attribution_eval.run_bootstrap_accuracy`, the training-run interval) from a
    recorded run's ``whole_set_curves.csv``; None when the run kept none. Rows: claim, value,
    ci_low, ci_high, verdict (claim 3 reports its accuracy interval, verdict empty: its share is
    in claims.csv). The sets keep the run's order and labels (architecture keys from the model
    names), so the bootstrap repeats notebook 04's draw for draw;
    :meth:`memlib.fingerprint_db.Database.reference_curves` sorts them by model instead."""
    from memlib import attribution_eval as ae
    from memlib import claims as rules

    path = folder / WHOLE_SET_CURVES
    if not path.exists():
        return None
    c = pd.read_csv(path)
    models = list(dict.fromkeys(c.model))
    curves = np.stack([np.nan_to_num(c[c.model == m].sort_values("layer").ct.to_numpy(float), nan=0.0)
                       for m in models])
    arch = np.array([m.rsplit("-s", 1)[0] for m in models])
    seeds = np.array([int(m.rsplit("-s", 1)[1]) for m in models])
    chance = 1 / len(set(arch))
    rows = []
    # the distances of memlib.fingerprint_study.run_intervals (Euclidean curve, shape only)
    for claim, distance in (("4a-fingerprint-full", "euclidean"), (rules.CLAIM_4A_SHAPE, "znorm")):
        r = ae.run_bootstrap_accuracy(curves, arch, seeds, distance=distance, seed=seed, level=level)
        rows.append(dict(claim=claim, value=r.accuracy, ci_low=r.lo, ci_high=r.hi,
                         verdict=rules.full_set_verdict(r.lo, r.hi, chance)))
        if distance == "euclidean":
            rows.append(dict(claim="3 (accuracy CI only)", value=r.accuracy, ci_low=r.lo, ci_high=r.hi, verdict=""))
    return pd.DataFrame(rows)


def _agreement_lines(table: pd.DataFrame) -> list[str]:
    """The markdown table of :func:`bench.compare_figures.claims_agreement` rows (A, B, agree)."""
    lines = ["| claim | A | A's CI | verdict A | B | B's CI | verdict B | agree |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.claim} | {r.value_a:.3g} | [{r.ci_low_a:.3g}, {r.ci_high_a:.3g}] | {r.verdict_a or '-'} | "
                     f"{r.value_b:.3g} | [{r.ci_low_b:.3g}, {r.ci_high_b:.3g}] | {r.verdict_b or '-'} | {r.agree} |")
    return lines


def comparison_markdown(found: dict[str, dict]) -> str:
    """The text of ``comparison.md`` for the recorded runs."""
    lines = ["# The study on both CPU kinds", "",
             "Written by `python -m bench.cross_cpu compare` from the runs in this folder.", ""]
    lines += ["| kind | commit | CPU | wall (min) | peak RSS (GB) | per notebook (min) |", "|---|---|---|---|---|---|"]
    for kind, r in found.items():
        per = " / ".join(f"{row.notebook[:2]} {row.seconds / 60:.1f}" for row in r["timings"].itertuples())
        lines.append(f"| {kind} | `{str(r['commit'])[:7]}` | {r['cpu']} | {r['wall_seconds'] / 60:.1f} | "
                     f"{r['peak_rss_gb']} | {per} |")
    lines.append("")
    if len(found) < 2:
        missing = [k for k in KINDS if k not in found]
        lines.append(f"No run of {', '.join(missing)} yet: nothing to compare.")
        return "\n".join(lines) + "\n"
    a, b = (found[k] for k in KINDS)
    if a["commit"] != b["commit"]:
        changed = science_changes(str(a["commit"]), str(b["commit"]))
        what = ("nothing that makes the figures differs between them, so they pair" if changed == []
                else "git cannot tell what differs between them" if changed is None
                else f"{len(changed)} files that make the figures differ ({', '.join(changed[:5])}"
                     f"{', …' if len(changed) > 5 else ''}): compared below, but the test asks for runs of one science")
        lines.append(f"The runs are of different commits ({str(a['commit'])[:7]}, {str(b['commit'])[:7]}): {what}.")
        lines.append("")
    table = agreement(a["claims"], b["claims"])
    lines += [f"A = {KINDS[0]}, B = {KINDS[1]}.", ""] + _agreement_lines(table)
    apart = list(table.claim[~table.agree])
    lines += ["", f"{int(table.agree.sum())} of {len(table)} claims agree (same verdict, each value inside the "
              f"other run's CI)" + (f"; not: {', '.join(apart)}." if apart else ".")]
    again = {k: rejudged(r["folder"]) for k, r in found.items()}
    if all(t is not None for t in again.values()):
        lines += ["", "## Claims 3-4a under today's rule, from each run's whole-set curves", "",
                  "The training-run interval (`memlib.attribution_eval.run_bootstrap_accuracy`, seed 0, 95 %) "
                  "recomputed from `whole_set_curves.csv` of each run, whatever rule its claims.csv was written with.", ""]
        lines += _agreement_lines(agreement(*(again[k] for k in KINDS)))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cross_cpu", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="copy a cold run's claims, timings and provenance into bench/cross-cpu/<kind>/")
    rec.add_argument("figures", type=Path, help="the run's figures folder")
    rec.add_argument("--wall", type=float, required=True, help="wall seconds of the whole make figures, set-up included")
    rec.add_argument("--rss-gb", type=float, required=True, help="its peak RSS in GB (/usr/bin/time -v)")
    rec.add_argument("--command", default="git clone <repo> /tmp/cold && cd /tmp/cold && /usr/bin/time -v make figures")
    rec.add_argument("--ledger", type=Path, default=None,
                     help="the run's <cache>/ledger/embed.jsonl (exact image counts for bench.compute_floor)")
    sub.add_parser("compare", help="write bench/cross-cpu/comparison.md from the recorded runs (with claims 3-4a "
                                   "re-judged under today's rule where both kept whole-set curves)")
    args = parser.parse_args(argv)
    if args.action == "record":
        if not (args.figures / "claims.csv").exists():
            parser.error(f"{args.figures} has no claims.csv: not a figures folder of a finished run")
        print(f"recorded in {record(args.figures, wall_seconds=args.wall, peak_rss_gb=args.rss_gb, command=args.command, ledger=args.ledger)}")
        return 0
    text = comparison_markdown(runs())
    (HERE / "comparison.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
