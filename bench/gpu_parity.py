"""faiss-gpu 1-NN parity against the CPU index (issue 34; run by bench/gpu_check.sh).

``python -m bench.gpu_parity [--out FILE]``: exact 1-NN of C_T-sized searches (64-d, the
per-cell sizes of the full profile and of the paper-scale run) with every backend of
:mod:`memlib.knn` that this machine has, against faiss's CPU ``IndexFlatL2``. Reports, per
size and backend: the share of queries with the CPU index's neighbour, the largest relative
distance difference, and seconds. Parity: every distance within 1e-5 relative (design.md §5);
a different index is allowed only at a near-tie (same distance within 1e-5). Exit status 1 when
parity fails, so the shell script can record it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    import faiss

    from memlib.knn import NNIndex, available_backends

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_parity")
    parser.add_argument("--out", help="JSON results file")
    parser.add_argument("--quick", action="store_true", help="one small size (a check of the script)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    sizes = ([(2_000, 500, 64)] if args.quick else
             [(3_334, 1_700, 64), (16_667, 16_667, 64), (50_000, 50_000, 64)])
    rows, ok = [], True
    for n_base, n_query, d in sizes:
        base = rng.standard_normal((n_base, d)).astype(np.float32)
        queries = rng.standard_normal((n_query, d)).astype(np.float32)
        queries[::10] = base[rng.integers(0, n_base, len(queries[::10]))]   # exact copies too
        index = faiss.IndexFlatL2(d)
        index.add(base)
        t0 = time.perf_counter()
        d2, ref_idx = index.search(queries, 1)
        cpu_s = time.perf_counter() - t0
        ref = np.sqrt(np.maximum(d2[:, 0].astype(np.float64), 0))
        for backend in available_backends():
            t0 = time.perf_counter()
            dist, idx = NNIndex(base, backend=backend).search(queries)
            secs = time.perf_counter() - t0
            rel = np.abs(dist - ref) / np.maximum(ref, 1e-6)
            same = idx == ref_idx[:, 0]
            tie = np.abs(np.linalg.norm(queries - base[idx], axis=1) - ref) <= 1e-5 * np.maximum(ref, 1)
            passed = bool((rel <= 1e-5).all() and (same | tie).all())
            ok &= passed
            rows.append(dict(n_base=n_base, n_query=n_query, dim=d, backend=backend,
                             same_index=float(same.mean()), max_rel_diff=float(rel.max()),
                             seconds=secs, cpu_index_seconds=cpu_s, parity=passed))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "parity": ok}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
