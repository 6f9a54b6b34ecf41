"""Can the zoo train bit-identically on both CPU kinds? ``python -m bench.zoo_isa``.

The zoo's neural models are trained in float32 on one thread, and the two CPU kinds round
differently because torch picks other vector kernels on each (ATen's AVX512 paths, oneDNN's JIT,
MKL's dispatch). This trains every neural architecture of the default profile for ``--steps``
steps on seed 0's window, once with the kernels the machine picks and once with every library
held to AVX2 (``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``, ``MKL_CBWR=AVX2,STRICT``,
``MKL_ENABLE_INSTRUCTIONS=AVX2``), each in a fresh process (the libraries read these variables
once, at load). Per architecture and setting it writes the time per step and a SHA-256 of the
trained weights to ``bench/<cpu>/zoo-isa.csv``.

Run it on both CPU kinds and compare the ``avx2`` hashes: equal hashes mean that pinning the
kernels makes the zoo bit-identical across the kinds, and the ``ms_per_step`` ratio is its cost.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT",
          "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
ARCHITECTURES = ("vae", "gan", "diffusion", "pixelcnn", "vae-mlp", "gan-shallow", "diffusion-narrow")


def train_and_hash(architectures: list[str], steps: int) -> list[dict]:
    """In this process: train each architecture for ``steps`` steps (seed 0, one thread); rows
    of architecture, ms_per_step, last_loss, weights_sha256, cpu_capability."""
    import time

    import numpy as np
    import torch

    from memlib.params import load_params
    from memlib.zoo.cache import load_spec_images, seed_train_spec, zoo_hparams
    from memlib.zoo.train import train_model

    params = load_params("default")
    images = load_spec_images(seed_train_spec(params, 0))
    rows = []
    for arch in architectures:
        hp = {**zoo_hparams(arch, "standard", params), "steps": steps}
        start = time.perf_counter()
        model = train_model(arch, images, seed=0, hparams=hp, progress=False, threads=1)
        seconds = time.perf_counter() - start
        digest = hashlib.sha256()
        for name, value in sorted(model.model.state().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        rows.append(dict(architecture=arch, ms_per_step=round(1000 * seconds / steps, 2),
                         last_loss=float(model.losses[-1]), weights_sha256=digest.hexdigest(),
                         cpu_capability=torch.backends.cpu.get_cpu_capability()))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.zoo_isa", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per model (default 150)")
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES),
                        help="comma-separated (default: every neural architecture)")
    parser.add_argument("--out", default=None, help="CSV path (default bench/<cpu>/zoo-isa.csv)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    archs = [a for a in args.architectures.split(",") if a]
    if args.child:   # one setting, in the environment the parent gave it
        print(json.dumps(train_and_hash(archs, args.steps)))
        return 0
    from bench.compute_floor import RESULT_DIRS, cpu_kind
    from memlib.machine import cpu_model

    rows = []
    for setting, extra in (("native", {}), ("avx2", PINNED)):
        env = {k: v for k, v in os.environ.items() if k not in PINNED} | extra
        print(f"{setting}: training {len(archs)} architectures for {args.steps} steps ...", flush=True)
        out = subprocess.run([sys.executable, "-m", "bench.zoo_isa", "--child", "--steps", str(args.steps),
                              "--architectures", ",".join(archs)], env=env, check=True,
                             capture_output=True, text=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        rows += [dict(cpu=cpu_model(), setting=setting, steps=args.steps, **r) for r in got]
        for r in got:
            print(f"  {r['architecture']:17s} {r['ms_per_step']:7.2f} ms/step  {r['weights_sha256'][:16]}")
    path = Path(args.out) if args.out else Path(__file__).parent / RESULT_DIRS[cpu_kind(cpu_model())] / "zoo-isa.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
