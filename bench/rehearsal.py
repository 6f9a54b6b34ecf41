"""Paper-scale rehearsal on the CPU (issue 34): full-size synthetic features through the real
stores, then the real C_T engine, curves and attribution.

One *point* (``python -m bench.rehearsal point --sets S --n N ...``, run in its own process so
that its peak RSS is its own):

1. the reference T (``ref_n`` images, 24 layers × 1,024-d, both tokens, float16) is written
   through the real chunked full feature store (:class:`memlib.features.EmbedJob` with
   :class:`memlib.features.FullSink`), exactly as an embedding would be;
2. its PCA basis is fit from the memory-mapped entry (:func:`memlib.projected.fit_basis`) and T
   is projected (:func:`memlib.projected.project`);
3. the test set P (``test_n``) and S generated sets of N images each are written straight into
   the projected store (:func:`memlib.projected.embed_projected`: batches of full-size features,
   a chunk of 8,192 images buffered, projected, written; full features never reach the disk);
4. the real engine: :func:`memlib.ct.fit_reference` on the memory-mapped projected T and P,
   :meth:`memlib.ct.Reference.curves` for all S sets, and leave-one-out attribution of every
   set's curve (:func:`memlib.fingerprint.attribute`).

The "encoder" is :class:`SyntheticEncoder`: an :class:`memlib.encoders.Encoder` whose forward
pass is replaced by a cheap deterministic generator of full-size features (a 16-d latent per
image mapped into each layer plus per-layer noise; some sets copy T's latents, so their C_T is
strongly negative). Everything after the forward pass is the production code.

Reported per point: wall seconds per phase, peak RSS (``ru_maxrss``), bytes on disk (allocated
blocks). ``python -m bench.rehearsal scaling`` runs the 3-point series in the number of sets and
in the set size and writes ``bench/rehearsal.json``; :mod:`bench.bench_rehearsal` turns it into
rows of ``bench/results.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from memlib.encoders import Encoder
from memlib.store import hash_params

HERE = Path(__file__).resolve().parent
LATENT = 16
POOL = 65536
NOISE_POOL = 4096
COPY_EVERY = 4          # every 4th generated set copies T (noisy copies of its latents)


class SyntheticImages:
    """Stands in for an image set of ``n`` images: ``read`` gives (B, 2) int64 rows of
    (set id, image index), which :class:`SyntheticEncoder` turns into features."""

    def __init__(self, name: str, set_id: int, n: int):
        self.name, self.set_id, self._n = name, int(set_id), int(n)

    def __len__(self) -> int:
        return self._n

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, 2)

    @property
    def content_hash(self) -> str:
        return hash_params({"synthetic-set": self.set_id, "n": self._n, "version": 1})

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = np.arange(start, min(stop, self._n), dtype=np.int64)
        return np.stack([np.full_like(rows, self.set_id), rows], axis=1)


class SyntheticEncoder(Encoder):
    """Full-size features (``n_layers`` × ``dim``) without a network: latent z (16-d) per image,
    x_l = z W_l + σ_l ε (ε from a fixed noise table). Set 0 is T; a set s with s % 4 == 3
    copies T: z = z_T(i mod ref_n) + 0.05 noise; the others are fresh draws with a set-specific
    shift of the latent (their "family")."""

    def __init__(self, n_layers: int = 24, dim: int = 1024, ref_n: int = 10_000, seed: int = 0):
        super().__init__(name=f"synthetic-{n_layers}x{dim}", model=torch.nn.Identity(),
                         image_size=224, weights_id=f"synthetic-{seed}",
                         device=torch.device("cpu"), precision="float32")
        rng = np.random.default_rng(seed)
        self._layers, self._dim, self.ref_n = int(n_layers), int(dim), int(ref_n)
        self.pool_a = rng.standard_normal((POOL, LATENT)).astype(np.float32)
        self.pool_b = rng.standard_normal((POOL, LATENT)).astype(np.float32)
        self.mix = rng.standard_normal((n_layers, LATENT, dim)).astype(np.float32) / 4
        # noise grows with depth: three tables (shallow, middle, deep thirds of the layers)
        self.noise = [s * rng.standard_normal((NOISE_POOL, dim)).astype(np.float32)
                      for s in (0.3, 0.7, 1.2)]
        self.seconds = 0.0          # time spent generating (stands for the forward pass)

    @property
    def n_layers(self) -> int:
        return self._layers

    @property
    def dim(self) -> int:
        return self._dim

    def _latent(self, set_id: np.ndarray, rows: np.ndarray) -> np.ndarray:
        h1 = (rows * 7919 + set_id * 104729) % POOL
        h2 = (rows * 15485863 + set_id * 32452843 + 12345) % POOL
        return (self.pool_a[h1] + self.pool_b[h2]) * np.float32(0.7071)

    def layer_tokens(self, batch: np.ndarray, *, final_norm: bool = False):
        t0 = time.perf_counter()
        set_id, rows = batch[:, 0], batch[:, 1]
        s = int(set_id[0])
        if s >= 2 and s % COPY_EVERY == 3:
            z = self._latent(np.zeros_like(rows), rows % self.ref_n)
            z += np.float32(0.05) * self._latent(set_id, rows)
        else:
            z = self._latent(set_id, rows)
            if s >= 2:                       # a family: a shift of the latent
                z[:, s % LATENT] += np.float32(0.5 + 0.1 * (s % 5))
        out = []
        b = len(rows)
        for l in range(self._layers):
            # a contiguous window of the noise table, placed by the batch's first image and layer
            start = int((rows[0] * 2654435761 + s * 97 + l * 131) % (NOISE_POOL - b + 1))
            x = z @ self.mix[l]
            x += self.noise[3 * l // self._layers][start:start + b]
            out.append(x)
        self.seconds += time.perf_counter() - t0
        return {"cls": out, "mean": out}


def disk_bytes(root: Path) -> int:
    """Allocated bytes of every file under ``root`` (sparse parts not counted)."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


def run_point(sets: int, n: int, *, ref_n: int, test_n: int, n_layers: int, dim: int,
              pca_dim: int, dtype: str, batch_size: int, root: Path, keep: bool = False) -> dict:
    """One rehearsal point in this process; returns its measurements."""
    from memlib import fingerprint
    from memlib.ct import fit_reference
    from memlib.features import entry_job, load_features
    from memlib.projected import embed_projected, fit_basis, project

    root = Path(root)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    enc = SyntheticEncoder(n_layers, dim, ref_n)
    kw = dict(image_size=224, final_norm=False, batch_size=batch_size, device="cpu",
              precision="float32", cache_dir=root)
    times = {}
    t0 = time.perf_counter()
    folder, job = entry_job(SyntheticImages("T", 0, ref_n), enc, **kw)
    job.run(None, None, True)
    t_full = load_features(folder, "cls")
    times["write_reference_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    basis = fit_basis(t_full, pca_dim=pca_dim, cache_dir=root)
    t_proj = project(t_full, basis, dtype=dtype, cache_dir=root)
    times["basis_and_project_reference_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_proj = embed_projected(SyntheticImages("P", 1, test_n), enc, basis, dtype=dtype, **kw)
    gens = [embed_projected(SyntheticImages(f"Q{s}", s + 2, n), enc, basis, dtype=dtype, **kw)
            for s in range(sets)]
    times["write_sets_s"] = time.perf_counter() - t0
    times["synthetic_generator_s"] = enc.seconds
    rss_write = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    ref = fit_reference(t_proj, p_proj, pca_dim=pca_dim, seed=0, progress=True)
    times["fit_reference_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    curves = ref.curves(gens, progress=True)
    times["curves_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    families = np.array(["copy" if (s + 2) % COPY_EVERY == 3 else f"f{(s + 2) % 5}"
                         for s in range(sets)])
    correct = []
    for s in range(sets):
        others = np.delete(np.arange(sets), s)
        if (families[others] == families[s]).any():
            got = fingerprint.attribute(curves[s:s + 1], curves[others], families[others])
            correct.append(bool(got.labels[0] == families[s]))
    times["attribution_s"] = time.perf_counter() - t0
    result = dict(sets=sets, n=n, ref_n=ref_n, test_n=test_n, n_layers=n_layers, dim=dim,
                  pca_dim=pca_dim, dtype=dtype, batch_size=batch_size, **times,
                  write_s=times["write_reference_s"] + times["basis_and_project_reference_s"]
                  + times["write_sets_s"],
                  score_s=times["fit_reference_s"] + times["curves_s"] + times["attribution_s"],
                  peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  peak_rss_write_bytes=rss_write,
                  disk_bytes=disk_bytes(root),
                  disk_full_reference_bytes=disk_bytes(folder),
                  disk_projected_bytes=disk_bytes(root / "projected"),
                  ct_copy_sets=float(np.nanmean(curves[families == "copy"])) if (families == "copy").any() else None,
                  ct_other_sets=float(np.nanmean(curves[families != "copy"])),
                  attribution_accuracy=float(np.mean(correct)) if correct else None,
                  loadavg=" ".join(f"{x:.1f}" for x in os.getloadavg()))
    result["wall_s"] = result["write_s"] + result["score_s"]
    result["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0")) or None
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SCALING_SETS = (2, 4, 8)          # at the middle set size
SCALING_N = (2_500, 5_000, 10_000)  # at the middle number of sets


def scaling_points(quick: bool) -> list[tuple[int, int]]:
    """(sets, n) of the two 3-point series (sharing their middle point)."""
    if quick:
        return [(2, 500), (4, 500), (4, 1_000)]
    mid_s, mid_n = SCALING_SETS[1], SCALING_N[1]
    pts = [(s, mid_n) for s in SCALING_SETS] + [(mid_s, n) for n in SCALING_N]
    return list(dict.fromkeys(pts))


def run_in_subprocess(sets: int, n: int, args) -> dict:
    """One point in a fresh interpreter (its own peak RSS, ``args.threads`` BLAS/OpenMP/torch
    threads); its JSON result."""
    out = Path(args.root) / f"point-{sets}x{n}.json"
    cmd = [sys.executable, "-m", "bench.rehearsal", "point", "--sets", str(sets), "--n", str(n),
           "--ref-n", str(args.ref_n), "--test-n", str(args.test_n), "--layers", str(args.layers),
           "--dim", str(args.dim), "--pca-dim", str(args.pca_dim), "--dtype", args.dtype,
           "--batch-size", str(args.batch_size), "--root", str(Path(args.root) / f"p{sets}x{n}"),
           "--json", str(out)]
    env = {**os.environ, **{v: str(args.threads) for v in THREAD_VARS}}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=HERE.parent, env=env)
    result = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["point", "scaling"])
    parser.add_argument("--sets", type=int, default=41)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--ref-n", type=int, default=10_000, help="T (params/full.yaml: 10,000)")
    parser.add_argument("--test-n", type=int, default=5_000, help="P (params/full.yaml: 5,000)")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--pca-dim", type=int, default=64)
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--root", type=Path, default=HERE.parent / ".cache" / "rehearsal")
    parser.add_argument("--json", type=Path, help="write the result(s) here")
    parser.add_argument("--threads", type=int, default=1,
                        help="scaling: BLAS/OpenMP threads per point (1: on shared cores, two "
                        "threads spin-wait on each other; docs/scale.md)")
    parser.add_argument("--quick", action="store_true", help="scaling: tiny points")
    parser.add_argument("--extra", action="append", default=[], metavar="SETSxN",
                        help="scaling: also run this point (e.g. 41x50000)")
    args = parser.parse_args(argv)
    if args.mode == "point":
        result = run_point(args.sets, args.n, ref_n=args.ref_n, test_n=args.test_n,
                           n_layers=args.layers, dim=args.dim, pca_dim=args.pca_dim,
                           dtype=args.dtype, batch_size=args.batch_size, root=args.root)
        text = json.dumps(result, indent=2)
        print(text)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(text + "\n")
        return 0
    if args.quick:
        args.ref_n, args.test_n = 1_000, 500
    points = scaling_points(args.quick) + [tuple(int(v) for v in e.split("x")) for e in args.extra]
    results = [run_in_subprocess(s, n, args) for s, n in points]
    out = args.json or (HERE / "rehearsal.json")
    out.write_text(json.dumps({"points": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
