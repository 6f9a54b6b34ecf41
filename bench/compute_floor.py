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
results (:data:`KNOWN_RATES`). Measured seconds: the committed run's ``figures/executed/timings.csv``
and ``figures/zoo_cost.csv`` (AMD EPYC) and the Intel Xeon cold run of issue 32
(:data:`INTEL_RUN`). Output: ``bench/<cpu>/compute-floor.csv`` and a printed summary.
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
# Cold make figures of the same commit on the Intel Xeon (issue 32, 2026-12-07): wall seconds.
INTEL_RUN = {"00_ct_by_hand": 12.0, "01_ct_sanity": 66.0, "02_memorization_levels": 162.0,
             "03_layer_trends": 1380.0, "04_fingerprinting": 120.0, "05_sensitivity": 444.0,
             "whole run": 38 * 60 + 12.0}
AMD_WHOLE_RUN = 60 * 60 + 52.0   # cold make figures, setup included (figures/provenance.json's run)


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


def vit_work(params: dict[str, Any], ledger_file: Path | None) -> pd.DataFrame:
    """One row per (notebook, encoder, image size): images and ViT FLOPs (matmul; element ops
    apart). From the ledger when given (exact), else :func:`bench.floor_images.estimate`."""
    if ledger_file is not None:
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
    per_size = {s: floor_flops.vit_flops(params["encoder"], int(s)) for s in sorted(set(table.image_size))}
    table["flops_per_image"] = [per_size[s]["matmul"] for s in table.image_size]
    table["elementwise_per_image"] = [per_size[s]["elementwise"] for s in table.image_size]
    table["flops"] = table.flops_per_image * table.n_images
    return table


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
                timings: pd.DataFrame, zoo_cost: pd.DataFrame, here: str = "amd") -> pd.DataFrame:
    """The table of docs/performance.md#the-compute-floor: per part FLOPs, floor seconds at
    both dtypes' rates of both CPU kinds, the applicable floor (bf16 for the ViT, fp32 for the
    zoo), the measured seconds and their ratio (AMD: the committed run; Intel: :data:`INTEL_RUN`;
    a ViT row: the ledger's seconds, on the CPU ``here`` that ran it)."""
    rows = []

    def floors(flops: float) -> dict[str, float]:
        return {f"{k}_floor_{d}_s": flops / (rates[k][d] * 1e9) for k in rates for d in ("bf16", "fp32")}

    for r in vit.itertuples():
        rows.append(dict(part=f"vit {r.encoder} {r.image_size}px", notebook=r.notebook, n=r.n_images,
                         flops=r.flops, applies="bf16", source=r.source, how=r.how, **floors(r.flops),
                         **({f"{here}_measured_s": r.seconds, "measured_what": "ledger seconds"}
                            if "seconds" in vit.columns else {})))
    cost = zoo_cost.assign(cpu=zoo_cost.train_cpu_seconds).groupby("architecture")
    for r in zoo_t.itertuples():
        measured = (cost.cpu.sum() if r.stage == "train" else cost.sample_seconds.sum()).get(r.architecture)
        rows.append(dict(part=f"zoo {r.architecture} {r.stage}", notebook="03_layer_trends", n=r.models,
                         flops=r.flops, applies="fp32", source="code", how=r.how, **floors(r.flops),
                         amd_measured_s=None if measured is None else measured / 2,
                         measured_what="AMD: CPU-s of figures/zoo_cost.csv / 2 workers"))
    table = pd.DataFrame(rows)
    for k in rates:
        table[f"{k}_floor_s"] = [r[f"{k}_floor_{r.applies}_s"] for _, r in table.iterrows()]
    notebooks = []
    amd = dict(zip(timings.notebook, timings.seconds))
    for nb in sorted(set(timings.notebook)):
        part = table[table.notebook == nb]
        row = dict(part=f"notebook {nb}", notebook=nb, flops=part.flops.sum(), source="sum",
                   how="ViT at bf16 + zoo at fp32", amd_measured_s=amd.get(nb),
                   intel_measured_s=INTEL_RUN.get(nb), measured_what="wall s of the notebook")
        for k in rates:
            row[f"{k}_floor_s"] = part[f"{k}_floor_s"].sum()
        notebooks.append(row)
    whole = dict(part="whole run", notebook="all", flops=table.flops.sum(), source="sum",
                 how="ViT at bf16 + zoo at fp32; measured: cold make figures, setup included",
                 amd_measured_s=AMD_WHOLE_RUN, intel_measured_s=INTEL_RUN["whole run"],
                 measured_what="wall s, setup included",
                 **{f"{k}_floor_s": table[f"{k}_floor_s"].sum() for k in rates})
    out = pd.concat([table, pd.DataFrame(notebooks + [whole])], ignore_index=True)
    out = out.reindex(columns=list(dict.fromkeys([*out.columns, "amd_measured_s", "intel_measured_s"])))
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
    ap.add_argument("--ledger", type=Path, default=None,
                    help="a cold run's <cache>/ledger/embed.jsonl: exact image counts instead of the estimate")
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
    figures = REPO / params["figures_dir"]
    vit = vit_work(params, args.ledger)
    table = floor_table(vit, zoo_work(params), rates, pd.read_csv(figures / "executed" / "timings.csv"),
                        pd.read_csv(figures / "zoo_cost.csv"), here)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.reindex(columns=COLUMNS).to_csv(out, index=False, float_format="%.4g")
    rates_out.write_text(json.dumps({"cpu": model, "measured_here": measured, "used": rates,
                                     "known": {k: {d: list(v) for d, v in r.items()} for k, r in KNOWN_RATES.items()},
                                     "date": stamp, "sessions": sessions}) + "\n")
    print(summary(table, rates, measured, model, vit))
    print(f"\nwrote {out} and {rates_out}")
    return table


def summary(table: pd.DataFrame, rates: dict, measured: dict, model: str, vit: pd.DataFrame) -> str:
    """The printed summary: rates, per-notebook and whole-run floors and ratios."""
    lines = [f"CPU here: {model}; matmul 2048², 2 threads, this run (best of rounds): "
             f"bf16 {measured['best']['bf16']:.0f}, fp32 {measured['best']['fp32']:.0f} GFLOP/s "
             f"(rounds bf16 {measured['rounds']['bf16']}, fp32 {measured['rounds']['fp32']})",
             "rates used (GFLOP/s): " + "; ".join(f"{CPU_NAMES[k]} bf16 {rates[k]['bf16']:.0f}, fp32 {rates[k]['fp32']:.0f}"
                                                   for k in rates),
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
