"""Measure copy rates of the zoo's own families on small training sets (issue 17, Study v2 gradient).

Usage (from the repository root, run under nice):
    nice -n 19 .venv/bin/python bench/memorization_gradient/measure.py CONFIGS.json
    nice -n 19 .venv/bin/python bench/memorization_gradient/measure.py '[{"family": "diffusion", "n": 16, ...}]'

A config: {"family", "n" (train size, fashion-mnist:train[:n]), "steps" (final step count, neural
families), "checkpoints" (step counts < steps to evaluate on the way; default none),
"hparams" (overrides of params/default.yaml zoo_hparams), "seed" (default 0),
"stop_copy" (stop training after a checkpoint whose copy rate >= this; default none),
"stop_after" (only at checkpoints of at least this many steps; default 0)}.

Checkpoints: the family's training loop (``run_steps`` in its module) is wrapped so that after
step k the current model is sampled and scored, inside memlib's ``seeded`` context (which forks
torch's RNG, so training continues on exactly the same random stream). Diffusion, GAN and VAE use a
constant learning rate after a warm-up of min(100, steps // 10) steps, so the model after k steps of
a K-step run equals a k-step run whenever both warm-ups are 100 steps (k, K >= 1000); diffusion
samples with its EMA weights, as after fit. PixelCNN anneals its lr (cosine), so give it no
checkpoints. train_cpu_seconds excludes the CPU time spent sampling at earlier checkpoints.

One row per evaluated (run, step count) is appended to results.csv; the loss curve of each run
is saved as losses/<run_id>.npy.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

torch.set_num_threads(1)

from memlib.data import load_images  # noqa: E402
from memlib.metrics import copy_metrics  # noqa: E402
from memlib.zoo import FAMILIES, check_hparams, derive_seed, loss_summary  # noqa: E402
from memlib.zoo.families import base as fam_base  # noqa: E402
from memlib.zoo.families.base import as_images, pick_device, seeded, threads  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = Path(os.environ.get("MEMGRAD_RESULTS", HERE / "results.csv"))
LOSSES = RESULTS.parent / "losses"
REPO = HERE.parent.parent
N_SAMPLES = 500
QUANTILE = 0.01
COLUMNS = ["time_utc", "run_id", "family", "n_train", "steps", "final_steps", "hparams_changed", "seed",
           "train_cpu_seconds", "train_wall_seconds", "sample_cpu_seconds", "sample_wall_seconds",
           "copy_rate", "exact_copy_rate", "nn_ratio", "copy_threshold", "nn_median", "nn_median_test",
           "final_loss", "loss_first100", "loss_trend", "loss_curve", "stopped_early", "load_avg_1m"]


class StopTraining(Exception):
    pass


def default_hparams() -> dict:
    return yaml.safe_load((REPO / "params/default.yaml").read_text())["zoo_hparams"]


def append_row(row: dict) -> None:
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()
    print(json.dumps({k: row[k] for k in ("family", "n_train", "steps", "hparams_changed", "copy_rate",
                                          "nn_ratio", "train_cpu_seconds", "final_loss", "loss_trend")}),
          flush=True)


def loss_fields(losses: list[float]) -> dict:
    arr = np.asarray(losses, np.float64)
    if len(arr) < 20:
        return {"final_loss": float(arr[-1]) if len(arr) else "", "loss_first100": "", "loss_trend": "",
                "loss_curve": json.dumps(loss_summary(losses).get("curve", []))}
    w = max(1, min(200, len(arr) // 10))
    last, prev = arr[-w:].mean(), arr[-2 * w:-w].mean()
    return {"final_loss": round(float(last), 6), "loss_first100": round(float(arr[:100].mean()), 6),
            # relative change of the mean loss over the last window vs the window before (< 0: still falling)
            "loss_trend": round(float((last - prev) / abs(prev)), 5),
            "loss_curve": json.dumps(loss_summary(losses, points=10)["curve"])}


def sample_model(family: str, model, seed: int) -> np.ndarray:
    """Sample as TrainedModel.sample does; restores the training state of the torch modules."""
    swap = family == "diffusion" and hasattr(model, "ema") and model.net is not model.ema
    if swap:
        net = model.net
        model.net = model.ema
    with threads(1), seeded(derive_seed(seed, 1)):
        images, _ = model.sample(N_SAMPLES)
    if swap:
        model.net = net
        model.net.train()
    if family == "gan":
        model.G.train()
    if family == "vae":
        model.net.train()
    return images


def run(cfg: dict, test: np.ndarray) -> None:
    family, n, seed = cfg["family"], int(cfg["n"]), int(cfg.get("seed", 0))
    over = dict(cfg.get("hparams", {}))
    hp = default_hparams()[family]
    if "steps" in hp:
        over["steps"] = int(cfg["steps"])
    hp.update(over)
    hp = check_hparams(family, hp)
    changed = {k: v for k, v in over.items() if k != "steps"}
    train = as_images(load_images(f"fashion-mnist:train[:{n}]").images)
    checkpoints = sorted(int(c) for c in cfg.get("checkpoints", []))
    stop_copy, stop_after = cfg.get("stop_copy"), int(cfg.get("stop_after", 0))
    run_id = f"{family}_n{n}_s{hp.get('steps', 0)}_" + "_".join(f"{k}{v}" for k, v in changed.items()) \
        + f"_seed{seed}_{datetime.now(timezone.utc):%H%M%S}"
    model = FAMILIES[family](hp, pick_device("cpu"))
    module = sys.modules[type(model).__module__]
    acc = {"sample_cpu": 0.0, "sample_wall": 0.0}
    losses: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()

    def evaluate(k: int, final: bool, stopped: bool = False) -> float:
        ws, cs = time.perf_counter(), time.process_time()
        samples = sample_model(family, model, seed)
        s_cpu, s_wall = time.process_time() - cs, time.perf_counter() - ws
        m = copy_metrics(samples, train, test, quantile=QUANTILE)
        e_cpu, e_wall = time.process_time() - cs, time.perf_counter() - ws
        row = {"time_utc": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S}", "run_id": run_id,
               "family": family, "n_train": n, "steps": k, "final_steps": hp.get("steps", ""),
               "hparams_changed": json.dumps(changed, sort_keys=True), "seed": seed,
               "train_cpu_seconds": round(cs - c0 - acc["sample_cpu"], 1),
               "train_wall_seconds": round(ws - t0 - acc["sample_wall"], 1),
               "sample_cpu_seconds": round(s_cpu, 1), "sample_wall_seconds": round(s_wall, 1),
               "copy_rate": m["copy_rate"], "exact_copy_rate": m["exact_copy_rate"],
               "nn_ratio": round(m["nn_ratio"], 4), "copy_threshold": round(m["copy_threshold"], 4),
               "nn_median": round(m["nn_median"], 4), "nn_median_test": round(m["nn_median_test"], 4),
               "stopped_early": stopped, "load_avg_1m": os.getloadavg()[0]}
        row.update(loss_fields(losses[:k]) if losses else {"final_loss": "", "loss_first100": "",
                                                          "loss_trend": "", "loss_curve": "[]"})
        append_row(row)
        acc["sample_cpu"] += e_cpu
        acc["sample_wall"] += e_wall
        return m["copy_rate"]

    original = getattr(module, "run_steps", None)

    def run_steps_with_checkpoints(step, n_steps, desc, progress):
        for i in range(n_steps):
            losses.append(float(step(i)))
            if (i + 1) in checkpoints and (i + 1) < n_steps:
                rate = evaluate(i + 1, final=False)
                if stop_copy is not None and rate >= stop_copy and i + 1 >= stop_after:
                    raise StopTraining
        return list(losses)

    stopped = False
    if original is not None:
        module.run_steps = run_steps_with_checkpoints
    try:
        with threads(1), seeded(derive_seed(seed, 0)):
            out = model.fit(train, False)
        if original is None:
            losses.extend(out)
    except StopTraining:
        stopped = True
    finally:
        if original is not None:
            module.run_steps = original
    LOSSES.mkdir(exist_ok=True)
    np.save(LOSSES / f"{run_id}.npy", np.asarray(losses, np.float32))
    if not stopped:
        evaluate(hp.get("steps", 0) if "steps" in hp else 0, final=True)


def main(argv: list[str]) -> None:
    text = argv[1]
    configs = json.loads(Path(text).read_text() if Path(text).exists() else text)
    test = load_images("fashion-mnist:test[:2000]").images
    for cfg in configs:
        print("config", json.dumps(cfg), flush=True)
        run(cfg, test)


if __name__ == "__main__":
    assert fam_base.run_steps is not None
    main(sys.argv)
