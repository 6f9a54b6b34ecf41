"""Paper-scale rehearsal rows for ``make bench`` (issue 34; the points: :mod:`bench.rehearsal`).

``run(quick)`` (called by ``python -m bench``) measures the two 3-point series (number of sets
2/4/8 at 5,000 images; set size 2,500/5,000/10,000 at 4 sets; T 10,000 and P 5,000 as in
params/full.yaml; 24 layers × 1,024-d; projected store float16), each point in its own process,
fits time, peak RSS and disk as ``a + b × images`` and extrapolates to the paper's 41 × 50,000.
A measured full-size point (``python -m bench.rehearsal point --sets 41 --n 50000 --json
bench/rehearsal-full.json``, ~45 min on one shared core) is reported beside the extrapolation
when its JSON exists, and so are larger points saved as ``bench/rehearsal-41x<N>.json``.

``python -m bench.bench_rehearsal --scaling bench/rehearsal-scaling.json`` turns already
measured points into rows and writes them into ``bench/results.md`` (its own section, replaced
on re-runs) and ``bench/results.csv`` (rows of benchmark ``rehearsal`` replaced), without
re-running the other benchmarks.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FULL = (41, 50_000)
GB = 1e9
SECTION = "## Paper-scale rehearsal (issue 34)"


def run(quick: bool = False) -> list[dict]:
    from . import rehearsal
    args = argparse.Namespace(root=HERE.parent / ".cache" / "rehearsal", ref_n=10_000,
                              test_n=5_000, layers=24, dim=1024, pca_dim=64, dtype="float16",
                              batch_size=256, threads=1)
    if quick:
        args.ref_n, args.test_n = 1_000, 500
    points = [rehearsal.run_in_subprocess(s, n, args) for s, n in rehearsal.scaling_points(quick)]
    out = HERE / ("rehearsal-scaling-quick.json" if quick else "rehearsal-scaling.json")
    out.write_text(json.dumps({"points": points}, indent=2) + "\n")
    full = HERE / "rehearsal-full.json"
    extra = [json.loads(f.read_text()) for f in sorted(HERE.glob("rehearsal-41x*.json"))]
    return rows(points, json.loads(full.read_text()) if full.exists() and not quick else None,
                [] if quick else extra)


def _fit(x, y):
    """Least-squares a + b x."""
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b)


def rows(points: list[dict], full: dict | None = None, extra: list[dict] = ()) -> list[dict]:
    """Benchmark rows of the measured points (the series, then ``extra`` larger ones), the
    fitted growth and the 41 × 50,000 estimate (and the measured full point if given)."""
    out = []
    for p in [*points, *extra]:
        label = f"{p['sets']} sets x {p['n']:,} (T {p['ref_n']:,}, P {p['test_n']:,})"
        out += [dict(benchmark="rehearsal", metric=f"{label}: write (store) wall", value=p["write_s"], unit="s"),
                dict(benchmark="rehearsal", metric=f"{label}: score (C_T ref + curves + attribution) wall",
                     value=p["score_s"], unit="s"),
                dict(benchmark="rehearsal", metric=f"{label}: peak RSS", value=p["peak_rss_bytes"] / 1e6,
                     unit="MB", goal="value <= 8000"),
                dict(benchmark="rehearsal", metric=f"{label}: disk", value=p["disk_bytes"] / 1e6, unit="MB")]
    ns = [p["n"] for p in points]
    n_series = max(set(ns), key=ns.count)          # the set size of the series in sets
    by_sets = sorted((p for p in points if p["n"] == n_series), key=lambda p: p["sets"])
    if len(by_sets) >= 3:
        a, b = _fit([p["sets"] for p in by_sets], [p["curves_s"] for p in by_sets])
        pred = [a + b * p["sets"] for p in by_sets]
        worst = max(abs(p["curves_s"] - q) / p["curves_s"] for p, q in zip(by_sets, pred))
        out.append(dict(benchmark="rehearsal", metric=f"curves time vs number of sets "
                        f"({', '.join(str(p['sets']) for p in by_sets)}): largest deviation from a line",
                        value=worst, unit="fraction", goal="value <= 0.2",
                        note=f"curves_s = {a:.2f} + {b:.2f} x sets at {by_sets[0]['n']:,} images a set"))
    measured = [*points, *extra]           # every measured point enters the extrapolation
    images = [p["sets"] * p["n"] for p in measured]
    total = [p["sets"] * p["n"] + p["ref_n"] + p["test_n"] for p in measured]
    est = {}
    for key, xs, target in (("write_s", total, FULL[0] * FULL[1] + points[0]["ref_n"] + points[0]["test_n"]),
                            ("score_s", images, FULL[0] * FULL[1]),
                            ("disk_bytes", total, FULL[0] * FULL[1] + points[0]["ref_n"] + points[0]["test_n"])):
        a, b = _fit(xs, [p[key] for p in measured])
        est[key] = a + b * target
    # Peak RSS is not linear in the images: the write phase holds one chunk (at most 8,192
    # images × layers × dim float16) whatever the set size; what grows is the curves step, which
    # holds one layer of every set's projections (float32) with their distances and cells.
    top = max(measured, key=lambda p: p["peak_rss_bytes"])
    est["peak_rss_bytes"] = top["peak_rss_bytes"] + 3 * 4 * top["pca_dim"] * (
        FULL[0] * FULL[1] - top["sets"] * top["n"])
    note = ("EXTRAPOLATED (a + b x images, least squares over every point above), not measured"
            if full is None else "extrapolated; the measured full-size point is the next rows")
    out += [dict(benchmark="rehearsal", metric="41 x 50,000 estimate: write wall", value=est["write_s"], unit="s", note=note),
            dict(benchmark="rehearsal", metric="41 x 50,000 estimate: score wall", value=est["score_s"], unit="s"),
            dict(benchmark="rehearsal", metric="41 x 50,000 estimate: disk", value=est["disk_bytes"] / GB,
                 unit="GB", goal="value <= 10"),
            dict(benchmark="rehearsal", metric="41 x 50,000 estimate: peak RSS", value=est["peak_rss_bytes"] / GB,
                 unit="GB", goal="value <= 8",
                 note="the largest measured peak plus 3 float32 values x pca_dim per extra image "
                      "(one layer of every set's projections, distances and cells in the curves step)")]
    if full is not None:
        label = f"MEASURED {full['sets']} sets x {full['n']:,}"
        out += [dict(benchmark="rehearsal", metric=f"{label}: write wall", value=full["write_s"], unit="s",
                     note=f"bench/rehearsal-full.json (load average at its end {full.get('loadavg')})"),
                dict(benchmark="rehearsal", metric=f"{label}: score wall", value=full["score_s"], unit="s"),
                dict(benchmark="rehearsal", metric=f"{label}: peak RSS", value=full["peak_rss_bytes"] / GB,
                     unit="GB", goal="value <= 8"),
                dict(benchmark="rehearsal", metric=f"{label}: disk", value=full["disk_bytes"] / GB,
                     unit="GB", goal="value <= 10")]
    return out


def merge(rows_: list[dict], out: Path = HERE) -> None:
    """Write ``rows_`` into results.md (own section, replaced) and results.csv (rows of
    benchmark ``rehearsal`` replaced), leaving the other benchmarks' rows as they are."""
    import csv

    from .__main__ import COLUMNS, MACHINE_COLUMNS, check_goal, machine_info, result_rows
    for r in rows_:
        r.setdefault("status", check_goal(r))
    machine = machine_info(False)
    md = out / "results.md"
    text = md.read_text() if md.exists() else "# memlib benchmarks\n"
    text = re.split(rf"\n{re.escape(SECTION)}\n", text)[0].rstrip("\n") + "\n"
    lines = ["", SECTION, "",
             f"Reproduce: `python -m bench` (all) or `python -m bench.rehearsal scaling` then "
             f"`python -m bench.bench_rehearsal --scaling bench/rehearsal-scaling.json`. "
             f"Rows written {machine['date']} from points measured on {machine['cpu']} "
             f"({machine['cores']} cores shared with other jobs; each point's load average at its "
             f"end is in bench/rehearsal-*.json and docs/scale.md); one BLAS thread per point. "
             f"docs/scale.md reads these numbers.", "",
             "| benchmark | metric | value | unit | goal | result |", "|---|---|---:|---|---|---|"]
    table, notes = result_rows(rows_, with_anchor=False, mark="[R{}]")
    lines += table + [""] + [f"R{i}. {n}" for i, n in enumerate(notes, 1)] + [""]
    md.write_text(text + "\n".join(lines))
    csv_path = out / "results.csv"
    old = []
    if csv_path.exists():
        with open(csv_path, newline="") as f:
            old = [r for r in csv.DictReader(f) if r.get("benchmark") != "rehearsal"]
    keep_machine = {k: (old[0].get(k) if old else machine.get(k)) for k in MACHINE_COLUMNS}
    tmp = csv_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS + MACHINE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in old:
            writer.writerow({**keep_machine, **r})
        for r in rows_:
            writer.writerow({**{c: "" if r.get(c) is None else r.get(c) for c in COLUMNS}, **machine})
    tmp.replace(csv_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_rehearsal")
    parser.add_argument("--scaling", type=Path, default=HERE / "rehearsal-scaling.json")
    parser.add_argument("--full", type=Path, default=HERE / "rehearsal-full.json")
    args = parser.parse_args(argv)
    points = json.loads(args.scaling.read_text())["points"]
    full = json.loads(args.full.read_text()) if args.full.exists() else None
    extra = [json.loads(f.read_text()) for f in sorted(HERE.glob("rehearsal-41x*.json"))]
    new = rows(points, full, extra)
    merge(new)
    for r in new:
        print(r["metric"], f"{r['value']:.4g}", r.get("unit", ""), r.get("status", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
