"""``python -m bench.compute_floor``: the study's compute floor and how far the committed cold
runs are from it, on both CPU kinds (issue 32, item 3; docs/performance.md#the-compute-floor).

Work, counted from the profile and the code, never by hand:

* the ViT: FLOPs of one image per encoder and image size (:func:`bench.floor_flops.vit_flops`)
  × the images each notebook embeds — exact from a cold run's work ledger
  (``--ledger <cache>/ledger/embed.jsonl``, :mod:`memlib.ledger`) or, without one, the estimate of
  :mod:`bench.floor_images`;
* the zoo: per architecture, FLOPs of one training step at each model's recipe × its steps,
  over every model of :func:`memlib.zoo.zoo_models` and :func:`memlib.zoo.gradient_models`, plus
  drawing its samples (:mod:`bench.floor_flops`).

The floor of a part is its FLOPs over a 2-thread 2048² matmul rate of the CPU: the bf16 rate
for the ViT (``precision: auto`` computes it under bf16 autocast on both CPU kinds), the fp32
rate for the zoo (float32, one thread in each of two workers: together the 2-thread rate). The
rates of the CPU this runs on are measured now (best of ``--rounds`` rounds, each the best of
10 products, bf16 and fp32 interleaved); the other CPU kind's come from its committed bench
results (:data:`KNOWN_RATES`). Measured seconds: the cold run of each CPU kind recorded in
``bench/cross-cpu/<kind>/`` (:mod:`bench.cross_cpu`: ``run.json``'s wall time, ``timings.csv``
per notebook, ``zoo_cost.csv`` per zoo model, ``embed-ledger.jsonl`` per embedding); a kind
with no recorded run has no measured column. Output: ``bench/<cpu>/compute-floor.csv`` and a
printed summary.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from memlib import ledger, zoo
from memlib.data import spec_window

from . import floor_flops, floor_images

REPO = Path(__file__).resolve().parent.parent
KINDS = ("amd", "intel")
CPU_NAMES = {"amd": "AMD EPYC", "intel": "Intel Xeon", "amd_scaled": "AMD EPYC (bf16 scaled to a quiet machine)"}
RESULT_DIRS = {"amd": "amd-epyc", "intel": "intel-xeon"}
# Quiet-machine 2-thread 2048² matmul rates (GFLOP/s) from committed bench results; None: measure.
KNOWN_RATES = {
    "amd": {"fp32": (187.2, "bench/results.csv, 2026-12-03 (best of 10 after the in-process runs)"),
            "bf16": (None, "not measured before: measured by this bench")},
    "intel": {"fp32": (337.0, "bench/intel-xeon/results.csv, 2026-12-04"),
              "bf16": (2091.4, "bench/intel-xeon/results.csv, 2026-12-04 (AMX)")},
}
def cpu_kind(model: str) -> str:
    """``amd`` or ``intel`` from a CPU model name."""
    return "intel" if "intel" in model.lower() else "amd"


def measure_rates(rounds: int = 5, pause: float = 2.0) -> dict[str, Any]:
    """2-thread bf16 and fp32 2048² matmul rates (GFLOP/s) of this CPU: ``rounds`` interleaved
    rounds, each the best of 10 products (:func:`bench.bench_embed.matmul_gflops`), ``pause``
    seconds apart. Returns the best of each dtype and every round's values."""
    import torch

    from .bench_embed import matmul_gflops
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: dict[str, list[float]] = {"bf16": [], "fp32": []}
    try:
        for r in range(rounds):
            for name, dtype in (("bf16", "bfloat16"), ("fp32", "float32")):
                seen[name].append(round(matmul_gflops("cpu", repeats=10, dtype=dtype)[0], 1))
            if r + 1 < rounds:
                time.sleep(pause)
    finally:
        torch.set_num_threads(previous)
    return {"best": {k: max(v) for k, v in seen.items()}, "rounds": seen}


def _committed_measurement(kind: str) -> dict[str, Any] | None:
    """This bench's earlier measurement on a CPU kind (``bench/<cpu>/matmul-rates.json``)."""
    path = REPO / "bench" / RESULT_DIRS[kind] / "matmul-rates.json"
    return json.loads(path.read_text())["measured_here"] if path.exists() else None


def merge_sessions(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Several :func:`measure_rates` sessions of one CPU as one: the best of each dtype over all
    of them and every round (the rounds keep their bf16/fp32 pairing)."""
    rounds = {d: [v for s in sessions for v in s["rounds"][d]] for d in ("bf16", "fp32")}
    return {"best": {d: max(v) for d, v in rounds.items()}, "rounds": rounds, "sessions": len(sessions)}


def rates_table(measured: dict[str, Any], here: str) -> dict[str, dict[str, float]]:
    """GFLOP/s per CPU kind and dtype: the committed quiet-machine value where there is one,
    else this run's best on this CPU (for another CPU: its committed ``matmul-rates.json``).

    Where a kind's bf16 rate is only known from a shared machine (the AMD EPYC's), a second
    kind ``<kind>_scaled`` gives the bf16 rate a quiet machine would reach if sharing slowed
    bf16 and fp32 alike: the median over rounds of bf16/fp32 (same round) × the quiet fp32 rate.
    The measured best is a lower bound of the rate (an upper bound of the floor), the scaled
    value an estimate from above."""
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        source = measured if kind == here else _committed_measurement(kind)
        out[kind] = {}
        for dtype in ("bf16", "fp32"):
            known = KNOWN_RATES[kind][dtype][0]
            if known is None and source is None:
                raise RuntimeError(f"no {dtype} rate for {CPU_NAMES[kind]}: run this bench on that CPU")
            out[kind][dtype] = known if known is not None else source["best"][dtype]
        if KNOWN_RATES[kind]["bf16"][0] is None and KNOWN_RATES[kind]["fp32"][0] is not None:
            ratios = sorted(b / f for b, f in zip(source["rounds"]["bf16"], source["rounds"]["fp32"]))
            median = (ratios[(len(ratios) - 1) // 2] + ratios[len(ratios) // 2]) / 2
            out[f"{kind}_scaled"] = {"bf16": median * out[kind]["fp32"], "fp32": out[kind]["fp32"]}
    return out


def vit_work(params: dict[str, Any], ledger_file: Path | None,
             timings: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (notebook, encoder, image size): images and ViT FLOPs (matmul; element ops
    apart). From the ledger when given (exact; its lines are split into notebooks by the run's
    ``timings``, default the ``figures_dir``'s ``executed/timings.csv``), else
    :func:`bench.floor_images.estimate`."""
    if ledger_file is not None:
        if timings is None:
            timings = pd.read_csv(REPO / params["figures_dir"] / "executed" / "timings.csv")
        start = (pd.Timestamp(timings.finished.iloc[0]) - pd.Timedelta(seconds=float(timings.seconds.iloc[0]))).isoformat()
        split = ledger.by_window(ledger.read(ledger_file), list(zip(timings.notebook, timings.finished)), start)
        split = {nb: lines for nb, lines in split.items() if nb not in ("earlier", "later")}   # other runs
        rows = [dict(notebook=nb, encoder=enc, image_size=size, n_images=int(t["n_images"]),
                     seconds=float(t["seconds"]), how=f"ledger: {t['entries']} entries", source="ledger")
                for nb, lines in split.items() for (enc, size, _), t in ledger.totals(lines).items()]
    else:
        rows = floor_images.estimate(params)
    table = pd.DataFrame(rows)
    per = {(e, int(s)): floor_flops.encoder_flops(e, int(s), params)
           for e, s in sorted(set(zip(table.encoder, table.image_size)))}
    table["flops_per_image"] = [per[(e, int(s))]["matmul"] for e, s in zip(table.encoder, table.image_size)]
    table["elementwise_per_image"] = [per[(e, int(s))]["elementwise"] for e, s in zip(table.encoder, table.image_size)]
    table["flops"] = table.flops_per_image * table.n_images
    return table


def recorded_runs(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """{kind (``amd``/``intel``): ``wall_seconds``, ``commit``, ``timings`` (DataFrame),
    ``zoo_cost`` (DataFrame or None), ``ledger`` (Path or None)} of every CPU kind with a cold
    run recorded in ``bench/cross-cpu/`` (:func:`bench.cross_cpu.runs`)."""
    from . import cross_cpu

    root = root or cross_cpu.HERE
    out = {}
    for folder_name, run in cross_cpu.runs(root).items():
        folder = root / folder_name
        kind = cpu_kind(run["cpu"])
        out[kind] = dict(wall_seconds=float(run["wall_seconds"]), commit=str(run["commit"]),
                         timings=run["timings"],
                         zoo_cost=pd.read_csv(folder / "zoo_cost.csv") if (folder / "zoo_cost.csv").exists() else None,
                         ledger=folder / "embed-ledger.jsonl" if (folder / "embed-ledger.jsonl").exists() else None)
    return out


def vit_work_of_runs(params: dict[str, Any], runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """:func:`vit_work` from the recorded runs' ledgers: the image counts of the first kind with
    a ledger (both kinds run the same work) and each kind's ledger seconds as
    ``<kind>_measured_s``; the estimate where no run has a ledger."""
    with_ledger = [k for k in KINDS if k in runs and runs[k]["ledger"] is not None]
    if not with_ledger:
        return vit_work(params, None)
    keys = ["notebook", "encoder", "image_size"]
    tables = {k: vit_work(params, runs[k]["ledger"], runs[k]["timings"]) for k in with_ledger}
    table = tables[with_ledger[0]]
    for k, t in tables.items():
        table = table.merge(t[keys + ["seconds"]].rename(columns={"seconds": f"{k}_measured_s"}),
                            on=keys, how="left")
    return table.drop(columns="seconds")


def _n(spec: str) -> int:
    _, _, start, stop = spec_window(spec)
    return stop - start


def zoo_work(params: dict[str, Any]) -> pd.DataFrame:
    """One row per (architecture, stage ``train``/``sample``): models, FLOPs, how counted."""
    P, step_cache, rows = params, {}, []
    models = [(m, int(P["zoo_n_samples"])) for m in zoo.zoo_models(P)]
    models += [(m, int(P["gradient_n_samples"])) for m in zoo.gradient_models(P)]
    by_arch: dict[str, dict[str, Any]] = {}
    for (arch, variant, seed), n_samples in models:
        hp = zoo.zoo_hparams(arch, variant, P)
        n_train = _n(zoo.train_spec(variant, P, seed))
        acc = by_arch.setdefault(arch, {"models": 0, "train": 0.0, "sample": 0.0, "steps": set(),
                                        "el_train": 0.0, "el_sample": 0.0})
        acc["models"] += 1
        if arch == "kde":
            acc["train"] += floor_flops.kde_fit_flops(n_train) if hp["sigma"] == "ml" else 0.0
            continue
        if arch == "gmm":
            acc["train"] += floor_flops.gmm_fit_flops(n_train, hp)
            acc["sample"] += 2.0 * n_samples * int(hp["pca_dim"]) * 784   # inverse PCA
            continue
        key = (arch, json.dumps(hp, sort_keys=True), min(int(hp["batch"]), n_train))
        if key not in step_cache:
            step_cache[key] = floor_flops.zoo_train_step_flops(arch, hp, n_train)
        skey = (arch, json.dumps(hp, sort_keys=True), "sample")
        if skey not in step_cache:
            step_cache[skey] = floor_flops.zoo_sample_flops(arch, hp, 1000)
        step, per_k = step_cache[key], step_cache[skey]
        acc["train"] += step["matmul"] * int(hp["steps"])
        acc["el_train"] += step["elementwise"] * int(hp["steps"])
        acc["sample"] += per_k["matmul"] * n_samples / 1000
        acc["el_sample"] += per_k["elementwise"] * n_samples / 1000
        acc["steps"].add(int(hp["steps"]))
    for arch, acc in by_arch.items():
        how = ("formula (numpy/sklearn, float64)" if arch in ("kde", "gmm")
               else f"FlopCounterMode on one fit step × steps {sorted(acc['steps'])}")
        rows.append(dict(architecture=arch, stage="train", models=acc["models"], flops=acc["train"],
                         elementwise=acc["el_train"], how=how))
        rows.append(dict(architecture=arch, stage="sample", models=acc["models"], flops=acc["sample"],
                         elementwise=acc["el_sample"],
                         how="formula" if arch in ("kde", "gmm") else "FlopCounterMode on 8 samples, scaled"))
    return pd.DataFrame(rows)


def floor_table(vit: pd.DataFrame, zoo_t: pd.DataFrame, rates: dict[str, dict[str, float]],
                runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The table of docs/performance.md#the-compute-floor: per part FLOPs, floor seconds at
    both dtypes' rates of both CPU kinds, the applicable floor (bf16 for the ViT, fp32 for the
    zoo), and for each kind with a recorded run (:func:`recorded_runs`) the measured seconds and
    their ratio: a ViT row the ledger's seconds (``vit``'s ``<kind>_measured_s``), a zoo row
    the CPU-seconds of the run's ``zoo_cost.csv`` over its 2 workers, a notebook its wall
    seconds, the whole run the cold ``make figures``, set-up included."""
    rows = []

    def floors(flops: float) -> dict[str, float]:
        return {f"{k}_floor_{d}_s": flops / (rates[k][d] * 1e9) for k in rates for d in ("bf16", "fp32")}

    for r in vit.to_dict("records"):
        rows.append(dict(part=f"vit {r['encoder']} {r['image_size']}px", notebook=r["notebook"], n=r["n_images"],
                         flops=r["flops"], applies="bf16", source=r["source"], how=r["how"], **floors(r["flops"]),
                         measured_what="ledger seconds",
                         **{f"{k}_measured_s": r.get(f"{k}_measured_s") for k in KINDS}))
    costs = {k: run["zoo_cost"].assign(cpu=run["zoo_cost"].train_cpu_seconds).groupby("architecture")
             for k, run in runs.items() if run["zoo_cost"] is not None}
    for r in zoo_t.itertuples():
        measured = {}
        for k, cost in costs.items():
            value = (cost.cpu.sum() if r.stage == "train" else cost.sample_seconds.sum()).get(r.architecture)
            measured[f"{k}_measured_s"] = None if value is None else value / 2
        rows.append(dict(part=f"zoo {r.architecture} {r.stage}", notebook="03_layer_trends", n=r.models,
                         flops=r.flops, applies="fp32", source="code", how=r.how, **floors(r.flops),
                         measured_what="CPU-s of the run's zoo_cost.csv / 2 workers", **measured))
    table = pd.DataFrame(rows)
    for k in rates:
        table[f"{k}_floor_s"] = [r[f"{k}_floor_{r.applies}_s"] for _, r in table.iterrows()]
    seconds = {k: dict(zip(run["timings"].notebook, run["timings"].seconds)) for k, run in runs.items()}
    notebooks = []
    for nb in sorted({nb for per in seconds.values() for nb in per}):
        part = table[table.notebook == nb]
        row = dict(part=f"notebook {nb}", notebook=nb, flops=part.flops.sum(), source="sum",
                   how="ViT at bf16 + zoo at fp32", measured_what="wall s of the notebook",
                   **{f"{k}_measured_s": per.get(nb) for k, per in seconds.items()})
        for k in rates:
            row[f"{k}_floor_s"] = part[f"{k}_floor_s"].sum()
        notebooks.append(row)
    whole = dict(part="whole run", notebook="all", flops=table.flops.sum(), source="sum",
                 how="ViT at bf16 + zoo at fp32; measured: cold make figures, setup included",
                 measured_what="wall s, setup included",
                 **{f"{k}_measured_s": run["wall_seconds"] for k, run in runs.items()},
                 **{f"{k}_floor_s": table[f"{k}_floor_s"].sum() for k in rates})
    out = pd.concat([table, pd.DataFrame(notebooks + [whole])], ignore_index=True)
    out = out.reindex(columns=list(dict.fromkeys([*out.columns, *(f"{k}_measured_s" for k in KINDS)])))
    for k in KINDS:
        out[f"{k}_measured_s"] = out[f"{k}_measured_s"].astype(float)
    for k in rates:   # amd_scaled: the AMD EPYC's measured seconds against the other AMD floor
        out[f"{k}_ratio"] = out[f"{k.split('_')[0]}_measured_s"] / out[f"{k}_floor_s"]
    return out


COLUMNS = ["part", "notebook", "n", "flops", "applies", "amd_floor_bf16_s", "amd_floor_fp32_s",
           "amd_scaled_floor_bf16_s", "intel_floor_bf16_s", "intel_floor_fp32_s", "amd_floor_s",
           "amd_scaled_floor_s", "intel_floor_s", "amd_measured_s", "intel_measured_s", "amd_ratio",
           "amd_scaled_ratio", "intel_ratio", "measured_what", "source", "how"]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(prog="python -m bench.compute_floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--runs", type=Path, default=None,
                    help="the recorded cold runs (default bench/cross-cpu/: run.json, timings.csv, "
                         "zoo_cost.csv, embed-ledger.jsonl per CPU kind; without a ledger the image "
                         "counts are estimated)")
    ap.add_argument("--rounds", type=int, default=5, help="matmul rate rounds (best is kept)")
    ap.add_argument("--out", type=Path, default=None, help="CSV (default bench/<cpu>/compute-floor.csv)")
    ap.add_argument("--new-sessions", action="store_true",
                    help="forget the rate sessions in <out dir>/matmul-rates.json (default: add this one to them)")
    args = ap.parse_args(argv)

    from memlib.machine import cpu_model
    from memlib.params import load_params
    params = load_params(args.profile)
    model = cpu_model()
    here = cpu_kind(model)
    out = args.out or REPO / "bench" / RESULT_DIRS[here] / "compute-floor.csv"
    rates_out = out.with_name("matmul-rates.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sessions = [] if args.new_sessions or not rates_out.exists() else json.loads(rates_out.read_text()).get("sessions", [])
    sessions.append({"date": stamp, **measure_rates(args.rounds)})
    measured = merge_sessions(sessions)
    rates = rates_table(measured, here)
    runs = recorded_runs(args.runs)
    vit = vit_work_of_runs(params, runs)
    table = floor_table(vit, zoo_work(params), rates, runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.reindex(columns=COLUMNS).to_csv(out, index=False, float_format="%.4g")
    rates_out.write_text(json.dumps({"cpu": model, "measured_here": measured, "used": rates,
                                     "known": {k: {d: list(v) for d, v in r.items()} for k, r in KNOWN_RATES.items()},
                                     "date": stamp, "sessions": sessions}) + "\n")
    print(summary(table, rates, measured, model, vit, runs))
    print(f"\nwrote {out} and {rates_out}")
    return table


def summary(table: pd.DataFrame, rates: dict, measured: dict, model: str, vit: pd.DataFrame,
            runs: dict[str, dict[str, Any]]) -> str:
    """The printed summary: rates, the runs measured, per-notebook and whole-run floors and ratios."""
    lines = [f"CPU here: {model}; matmul 2048², 2 threads, this run (best of rounds): "
             f"bf16 {measured['best']['bf16']:.0f}, fp32 {measured['best']['fp32']:.0f} GFLOP/s "
             f"(rounds bf16 {measured['rounds']['bf16']}, fp32 {measured['rounds']['fp32']})",
             "rates used (GFLOP/s): " + "; ".join(f"{CPU_NAMES[k]} bf16 {rates[k]['bf16']:.0f}, fp32 {rates[k]['fp32']:.0f}"
                                                   for k in rates),
             "runs measured: " + ("; ".join(f"{CPU_NAMES[k]} {r['commit'][:7]} ({r['wall_seconds'] / 60:.1f} min)"
                                            for k, r in runs.items()) or "none recorded in bench/cross-cpu/"),
             f"ViT images: {int(vit.n_images.sum()):,} ({vit.source.iloc[0]}); ViT FLOPs {vit.flops.sum() / 1e12:.1f} T; "
             f"zoo FLOPs {table[table.part.str.startswith('zoo')].flops.sum() / 1e12:.1f} T", ""]
    show = table[table.part.str.startswith(("notebook", "whole"))]
    lines.append(f"{'part':<34}{'TFLOP':>7}" + "".join(f"{k + ' floor s':>20}{'ratio':>7}" for k in rates)
                 + f"{'AMD meas s':>12}{'Intel meas s':>14}")
    for r in show.itertuples():
        lines.append(f"{r.part:<34}{r.flops / 1e12:>7.1f}"
                     + "".join(f"{getattr(r, k + '_floor_s'):>20.0f}{getattr(r, k + '_ratio'):>7.2f}" for k in rates)
                     + f"{r.amd_measured_s:>12.0f}{r.intel_measured_s:>14.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
