"""``python -m bench [--quick]`` (``make bench``): speed and memory benchmarks of issue 6.

Runs ``bench.bench_embed`` (embedding pass, end-to-end timings), ``bench.bench_ct`` (C_T
engine) and ``bench.bench_rehearsal`` (the paper-scale rehearsal, issue 34) and writes ``bench/results.csv`` (one row per figure, with the machine and package
versions on every row) and ``bench/results.md`` (a table with each figure, its anchor measured
in the same run, the ratio, the goal and pass/fail). ``--quick`` is a fast smoke check of the
benchmark itself (small inputs, one repeat): its numbers are not the ones to quote.

Each benchmark module exposes ``run(quick: bool) -> list[dict]`` with rows
``dict(benchmark, metric, value, unit, anchor, ratio)`` and optionally ``goal`` (text such as
``"ratio <= 1.15"``, ``"ratio >= 20"`` or ``"value <= 4096"``) and ``note``.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import math
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_embed", "bench_ct", "bench_rehearsal")
COLUMNS = ["benchmark", "metric", "value", "unit", "anchor", "ratio", "goal", "status", "note"]
MACHINE_COLUMNS = ["mode", "date", "cpu", "cores", "threads", "device", "python", "torch", "timm",
                   "faiss", "numpy", "sklearn", "host_os", "loadavg",
                   "loadavg_end"]
GOALS = """\
Goals (issue 6):
1. `python -m memlib embed`, 1,024 images, ViT-S/14 at 112 px, 12 blocks: ≤ 1.15× a bare timm
   script, whole process against whole process; achieved GFLOP/s ≥ 70% of a matmul in the
   same run.
2. C_T engine, 12 layers, 10,000 train / 5,000 test (D=384), 16 sets of 500: ≥ 20× faster
   than the dgm-eval algorithm (implemented in bench/ as the anchor).
3. Scale: 100,000 train × 24 layers × 1,024-d: peak RSS ≤ 4 GB; seconds per layer reported.
4. `make figures` (default profile) ≤ 45 min and `make smoke` ≤ 5 min on 2 cores.
5. GPU: the same table when CUDA is present (never required in CI).
6. Paper scale (issue 34): 41 sets × 50,000 images × 24 layers × 1,024-d through the projected
   store: peak RSS ≤ 8 GB, disk ≤ 10 GB, scoring time linear in the number of sets
   (bench/rehearsal.py, docs/scale.md)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small inputs, one repeat: checks the benchmark runs (~1 min)")
    parser.add_argument("--only", choices=BENCHMARKS, action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder for results.csv and results.md (default: bench/)")
    args = parser.parse_args(argv)
    command = "python -m bench" + (" --quick" if args.quick else "") + "".join(
        f" --only {name}" for name in args.only or [])

    started = time.perf_counter()
    machine = machine_info(args.quick)    # before the runs: date and load average at the start
    rows, failed = [], []
    for name in args.only or BENCHMARKS:
        print(f"[bench] {name} ({'quick' if args.quick else 'full'}) …", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError as exc:
            print(f"[bench] {name} skipped: {exc}", flush=True)
            rows.append(dict(benchmark=name.removeprefix("bench_"), metric="(not run)",
                             note=f"skipped: cannot import bench.{name} ({exc})"))
            continue
        try:
            new = list(module.run(quick=args.quick))
        except Exception as exc:  # keep the other benchmarks' results; exit non-zero at the end
            traceback.print_exc()
            failed.append(name)
            rows.append(dict(benchmark=name.removeprefix("bench_"), metric="(failed)",
                             status="FAIL", note=f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        for r in new:
            print("   ", _one_line(r), flush=True)
        rows.extend(new)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)

    for r in rows:
        if "status" not in r or not r["status"]:
            r["status"] = check_goal(r)
    machine["loadavg_end"] = _loadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "results.csv", rows, machine)
    write_md(args.out / "results.md", rows, machine, command, args.quick,
             time.perf_counter() - started)
    print(f"[bench] wrote {args.out / 'results.csv'} and {args.out / 'results.md'}")
    return 1 if failed else 0


def check_goal(r: dict) -> str:
    """``PASS``/``FAIL`` against a goal like ``ratio <= 1.15``; ``n/a`` without data; ``""``."""
    goal = (r.get("goal") or "").strip()
    if not goal:
        return ""
    m = re.fullmatch(r"(ratio|value)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)", goal)
    if m is None:
        return "?"
    x = r.get(m[1])
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x, bound = float(x), float(m[3])
    ok = {"<=": x <= bound, ">=": x >= bound, "<": x < bound, ">": x > bound}[m[2]]
    return "PASS" if ok else "FAIL"


def machine_info(quick: bool) -> dict:
    """CPU model, cores, threads, device and the versions that matter, for every row."""
    from memlib.machine import cpu_model

    info = dict(mode="quick" if quick else "full",
                date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                cpu=cpu_model(), cores=os.cpu_count(), python=platform.python_version(),
                host_os=platform.platform(terse=True),
                loadavg=_loadavg())
    try:
        import torch
        info["threads"] = torch.get_num_threads()
        info["torch"] = torch.__version__
        info["device"] = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    except ImportError:
        pass
    for module, key in (("timm", "timm"), ("faiss", "faiss"), ("numpy", "numpy"),
                        ("sklearn", "sklearn")):
        try:
            info[key] = importlib.import_module(module).__version__
        except Exception:  # missing or broken: record as absent
            info[key] = ""
    return info


def _loadavg() -> str:
    """1/5/15-minute load averages: other jobs on the machine make every timing slower."""
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return ""


def write_csv(path: Path, rows: list[dict], machine: dict) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS + MACHINE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**{c: _csv(r.get(c)) for c in COLUMNS}, **machine})
    os.replace(tmp, path)


def _csv(x):
    return "" if x is None else x


def write_md(path: Path, rows: list[dict], machine: dict, command: str, quick: bool,
             seconds: float) -> None:
    lines = ["# memlib benchmarks", ""]
    if quick:
        lines += ["> **Quick mode** (small inputs, one repeat): a check that the benchmark runs, "
                  "not figures to quote. Run `make bench` for the real ones.", ""]
    lines += [f"Reproduce: `{command}` from the repository root "
              f"(`make bench` runs `python -m bench`; add `--quick` for a ~1 min check). "
              f"Ran {machine['date']} in {seconds / 60:.1f} min; also in `results.csv`.", "",
              "| machine | |", "|---|---|"]
    lines += [f"| {k} | {machine.get(k, '')} |" for k in MACHINE_COLUMNS if k not in ("mode",)]
    lines += ["", "| benchmark | metric | value | unit | anchor | ratio | goal | result |",
              "|---|---|---:|---|---:|---:|---|---|"]
    table, notes = result_rows(rows, with_anchor=True)
    lines += table
    if notes:
        lines += ["", "Notes:", ""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    verdicts = [r.get("status") for r in rows]
    lines += ["", f"Goals met: {verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL, "
              f"{verdicts.count('n/a')} without data.", "", GOALS, ""]
    path.write_text("\n".join(lines))


def result_rows(rows: list[dict], *, with_anchor: bool, mark: str = "[{}]") -> tuple[list[str], list[str]]:
    """Markdown table lines of result ``rows`` (benchmark, metric with its note's mark, value,
    unit, [anchor, ratio,] goal, result) and the notes the marks number (``mark`` formats the
    note's 1-based number). Shared by results.md's main table and its rehearsal section."""
    lines, notes = [], []
    for r in rows:
        tag = ""
        if r.get("note"):
            notes.append(r["note"])
            tag = " " + mark.format(len(notes))
        goal = (r.get("goal") or "").replace("<=", "≤").replace(">=", "≥")
        anchor = f"{_num(r.get('anchor'))} | {_num(r.get('ratio'))} | " if with_anchor else ""
        lines.append(f"| {_cell(r.get('benchmark'))} | {_cell(r.get('metric'))}{tag} | "
                     f"{_num(r.get('value'))} | {_cell(r.get('unit'))} | {anchor}"
                     f"{_cell(goal)} | {r.get('status') or ''} |")
    return lines, notes


def _cell(x) -> str:
    return "" if x is None else str(x).replace("|", "\\|").replace("<", "&lt;")


def _num(x) -> str:
    if x is None or x == "":
        return ""
    x = float(x)
    if math.isnan(x):
        return "nan"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def _one_line(r: dict) -> str:
    text = f"{r.get('metric')}: {_num(r.get('value'))} {r.get('unit') or ''}"
    if r.get("anchor") is not None:
        text += f" (anchor {_num(r.get('anchor'))}, ratio {_num(r.get('ratio'))})"
    if r.get("goal"):
        text += f" goal {r['goal']}"
    return text


if __name__ == "__main__":
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    raise SystemExit(main())
