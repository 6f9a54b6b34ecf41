"""Benchmarks of the C_T engine (memlib.ct) against the dgm-eval algorithm.

(a) ``ct_fingerprint``: the fingerprint workload. 12 layers of D = 384 features, a reference of
    10,000 training and 5,000 test points, 16 generated sets of 500. The fast engine fits PCA,
    cells and test distances once per layer (:func:`memlib.ct.fit_reference`) and scores the 16
    sets with ``Reference.curves``. The anchor is dgm-eval's ``compute_CTscore`` algorithm
    (re-implemented below): per layer *and* per set, PCA-64 and KMeans(3, n_init=10) fit anew,
    sklearn ``NearestNeighbors`` per cell and ``scipy.stats.mannwhitneyu``. Both use the same
    seed, so they get the same cells; the largest |ΔC_T| is reported end to end and for the
    statistic alone on the anchor's own projection and cells.
(b) ``ct_scale``: a C_T curve over 24 layers of a 100,000-image training set with 1,024-d
    float16 features memory-mapped from disk (one ``.npy`` per layer, as the feature cache
    writes them), run in a subprocess so that its peak RSS (VmHWM, ``ru_maxrss`` off Linux)
    can be read; goal ≤ 4 GB. The reader is ``LayerFeatures`` over the per-layer files as
    ``memlib.features.load_features`` builds it (each layer read through a memory map opened
    for that access only; maps that stay open would keep every page ever read resident:
    7.6 GB here, measured).
    The synthetic files are written to a temporary folder under /tmp and removed afterwards.

Rows: dict(benchmark, metric, value, unit, anchor, ratio) with ratio = value / anchor (for
times: the fraction of the anchor's time; for goals: the fraction of the goal reached).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from memlib.ct import ct_statistic, fit_reference  # noqa: E402

SPEEDUP_GOAL = 20.0
THREADS = int(os.environ.get("MEMLIB_BENCH_THREADS", "1"))
RSS_GOAL_GB = 4.0


# ----------------------------------------------------------------------------- anchor

def anchor_ct(train, test, gen, seed=0, n_cells=3, pca_dim=64):
    """dgm-eval's C_T algorithm, everything refit per call; also returns its cells.

    Returns:
        (C_T, (train_z, test_z, gen_z), (train_cells, test_cells, gen_cells)).
    """
    train, test, gen = (np.asarray(x, np.float64) for x in (train, test, gen))  # as dgm-eval
    if train.shape[1] > pca_dim:
        pca = PCA(n_components=pca_dim, random_state=seed).fit(train)
        train, test, gen = pca.transform(train), pca.transform(test), pca.transform(gen)
    km = KMeans(n_clusters=n_cells, n_init=10, random_state=seed).fit(train)
    tc, pc, qc = km.predict(train), km.predict(test), km.predict(gen)
    n, m, tau = len(test), len(gen), 20 / len(gen)
    z, w = [], []
    for c in range(n_cells):
        m_c, n_c = int((qc == c).sum()), int((pc == c).sum())
        if m_c / m <= tau:
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(train[tc == c])
        lq = nn.kneighbors(gen[qc == c])[0][:, 0]
        lp = nn.kneighbors(test[pc == c])[0][:, 0]
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        z.append((u - (n_c * m_c / 2 - 0.5)) / np.sqrt(n_c * m_c * (n_c + m_c + 1) / 12))
        w.append(n_c / n)
    return float(np.dot(w, z) / np.sum(w)), (train, test, gen), (tc, pc, qc)


# ----------------------------------------------------------------------------- workloads

def _mixture(rng, n, d, centers, scale):
    lab = rng.integers(0, len(centers), n)
    return centers[lab] + scale * rng.normal(size=(n, d)).astype(np.float32)


def fingerprint_data(n_layers, n_train, n_test, n_sets, m, dim, seed=0):
    """Clustered Gaussian layers; generated set s = training points + noise σ_s.

    Each layer has 12 Gaussian clusters in 3 well-separated groups, so that k-means with 3
    cells finds the same partition whatever the float precision (on data without 3 clear
    groups, float32 and float64 k-means can settle in different, equally good partitions and
    C_T moves by ~1; that is a property of C_T with few cells, not of either engine).

    Returns:
        train, test: lists of (N, dim) float32 per layer; gens: n_sets lists of (m, dim).
    """
    rng = np.random.default_rng(seed)
    sigmas = np.geomspace(0.05, 2.0, n_sets).astype(np.float32)
    sources = [rng.integers(0, n_train, m) for _ in range(n_sets)]
    train, test, gens = [], [], [[] for _ in range(n_sets)]
    for _ in range(n_layers):
        groups = 8 * rng.normal(size=(3, 1, dim))          # 3 clear groups (the k-means cells)
        centers = (groups + 3 * rng.normal(size=(3, 4, dim))).reshape(12, dim).astype(np.float32)
        tr = _mixture(rng, n_train, dim, centers, 1.0)
        train.append(tr)
        test.append(_mixture(rng, n_test, dim, centers, 1.0))
        for s in range(n_sets):
            noise = rng.normal(size=(m, dim)).astype(np.float32)
            gens[s].append(tr[sources[s]] + sigmas[s] * noise)
    return train, test, gens


def bench_fingerprint(quick: bool) -> list[dict]:
    if quick:
        n_layers, n_train, n_test, n_sets, m, repeats = 3, 3000, 1500, 4, 500, 1
    else:
        n_layers, n_train, n_test, n_sets, m, repeats = 12, 10_000, 5_000, 16, 500, 3
    dim = 384
    train, test, gens = fingerprint_data(n_layers, n_train, n_test, n_sets, m, dim)
    size = f"{n_layers} layers, {n_train}/{n_test} ref, {n_sets}x{m} gen, D={dim}"

    # one untimed call of each engine first: imports, thread pools and first-touch page
    # faults are paid once per process, not per workload
    fit_reference(train[:1], test[:1], seed=0).curves([g[:1] for g in gens[:1]])
    anchor_ct(train[0], test[0], gens[0][0])

    fits, curve_times = [], []
    for _ in range(2 * repeats - 1):         # the fast engine is cheap: more repeats
        t0 = time.perf_counter()
        ref = fit_reference(train, test, seed=0)
        fits.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fast = ref.curves(gens)
        curve_times.append(time.perf_counter() - t0)
    totals = np.add(fits, curve_times)
    pick = int(np.argsort(totals)[len(totals) // 2])      # the median run, fit and curves
    t_fit, t_curves, t_fast = fits[pick], curve_times[pick], totals[pick]

    slow = np.empty_like(fast)
    engine_diff = 0.0
    same_cells = []
    anchor_runs = []
    for rep in range(repeats):
        t_anchor = 0.0
        for l in range(n_layers):
            for s in range(n_sets):
                t0 = time.perf_counter()
                slow[s, l], zs, cells = anchor_ct(train[l], test[l], gens[s][l])
                t_anchor += time.perf_counter() - t0
                if rep:
                    continue
                tz, pz, qz = zs
                tc, pc, qc = cells
                mine = ct_statistic(pz, pc, qz, qc, tz, tc, None)
                engine_diff = max(engine_diff, abs(mine - slow[s, l]))
                if s == 0:
                    ours = ref.layers[l].kmeans.predict(ref.layers[l].proj(test[l], "test"))
                    same_cells.append(_partition_agreement(ours, pc))
        anchor_runs.append(t_anchor)
    t_anchor = float(np.median(anchor_runs))
    speedup = t_anchor / t_fast
    per_pair_ms = 1000 * t_curves / (n_layers * n_sets)
    anchor_pair_ms = 1000 * t_anchor / (n_layers * n_sets)
    runs = (f"median of {len(totals)} runs of the fast engine {_seconds(totals)} and "
            f"{repeats} of the anchor {_seconds(anchor_runs)}, after one untimed warm-up call each")
    b = "ct_fingerprint"
    return [
        _row(b, f"fit_reference ({size})", t_fit, "s"),
        _row(b, f"curves for {n_sets} sets", t_curves, "s"),
        _row(b, "marginal cost per (layer, set), vs one dgm-eval call", per_pair_ms, "ms",
             anchor_pair_ms),
        _row(b, "total, fast engine vs dgm-eval algorithm", t_fast, "s", t_anchor, note=runs),
        _row(b, f"speed-up vs dgm-eval algorithm at {n_sets} sets", speedup, "x",
             SPEEDUP_GOAL, goal="" if quick else f"value >= {SPEEDUP_GOAL:g}"),
        _row(b, "speed-up per additional set (asymptote)", anchor_pair_ms / per_pair_ms, "x",
             SPEEDUP_GOAL),
        _row(b, "max |dC_T| statistic only, anchor's cells", engine_diff, "C_T", 1e-3),
        _row(b, "max |dC_T| end to end", float(np.abs(fast - slow).max()), "C_T", 1e-3),
        _row(b, "test points in the same cell as the anchor's", float(np.mean(same_cells)),
             "fraction", 1.0),
    ]


def _seconds(times):
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "] s"


def _partition_agreement(a, b):
    """Fraction of points whose cells agree, up to a relabelling of the cells."""
    k = int(max(a.max(), b.max())) + 1
    table = np.zeros((k, k), int)
    np.add.at(table, (a, b), 1)
    return float(max(table[np.arange(k), list(p)].sum()
                     for p in itertools.permutations(range(k)))) / len(a)


# ----------------------------------------------------------------------------- scale

def write_scale_data(root, n_layers, n_train, n_test, m, dim, seed=0, rows=20_000):
    """Synthetic float16 layers on disk: rank-128 clustered latents mapped per layer."""
    rng = np.random.default_rng(seed)
    centers = 2 * rng.normal(size=(20, 128)).astype(np.float32)
    latents = {"train": _mixture(rng, n_train, 128, centers, 1.0),
               "test": _mixture(rng, n_test, 128, centers, 1.0)}
    half = m // 2
    gen = _mixture(rng, m, 128, centers, 1.0)
    gen[:half] = latents["train"][:half] + 0.05 * rng.normal(size=(half, 128))
    latents["gen"] = gen
    for l in range(n_layers):
        w = (rng.normal(size=(128, dim)) / np.sqrt(128)).astype(np.float32)
        for name, z in latents.items():
            path = Path(root) / name / f"layer{l:02d}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            out = np.lib.format.open_memmap(path, "w+", np.float16, (len(z), dim))
            for s in range(0, len(z), rows):
                out[s:s + rows] = np.tanh(z[s:s + rows] @ w)
            out.flush()
            del out


def scale_child(root):
    """Run in a fresh process: fit + one curve; prints one JSON line with times and RSS.

    Peak RSS is the kernel's high-water mark of this process's own memory map (VmHWM): the
    ``ru_maxrss`` of a child started with fork/vfork + exec also carries the parent's peak.
    """
    def open_set(name):
        # what memlib.features.load_features builds (imports torch: counted in the baseline)
        from memlib.features import LayerFeatures, _MemmapLayers
        paths = sorted((Path(root) / name).glob("layer*.npy"))
        shape = np.load(paths[0], mmap_mode="r", allow_pickle=False).shape
        return LayerFeatures(_MemmapLayers(paths, shape), {})

    train, test, gen = (open_set(n) for n in ("train", "test", "gen"))
    base_gb = _peak_rss_gb()
    t0 = time.perf_counter()
    ref = fit_reference(train, test, seed=0)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = ref.curve(gen)
    t_curve = time.perf_counter() - t0
    rss_gb = _peak_rss_gb()
    print(json.dumps(dict(fit_s=t_fit, curve_s=t_curve, rss_gb=rss_gb, base_gb=base_gb,
                          curve=curve.tolist())))


def _peak_rss_gb():
    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: ru_maxrss (kB on Linux, bytes on macOS)
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = kb / 1024 if sys.platform == "darwin" else kb
    return kb * 1024 / 1e9


def bench_scale(quick: bool) -> list[dict]:
    if quick:
        n_layers, n_train, n_test, m, dim = 4, 20_000, 4_000, 2_000, 1024
    else:
        n_layers, n_train, n_test, m, dim = 24, 100_000, 10_000, 10_000, 1024
    root = Path(tempfile.mkdtemp(prefix="memlib-bench-ct-", dir="/tmp"))
    rows = []
    try:
        t0 = time.perf_counter()
        write_scale_data(root, n_layers, n_train, n_test, m, dim)
        t_write = time.perf_counter() - t0
        size = f"{n_train} train x {n_layers} layers x {dim}-d float16"
        disk_gb = sum(p.stat().st_size for p in root.rglob("*.npy")) / 1e9
        rows.append(_row("ct_scale", f"synthetic data written ({size}, {disk_gb:.1f} GB)",
                         t_write, "s"))
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(THREADS),
               "OPENBLAS_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
        code = f"from bench.bench_ct import scale_child; scale_child({str(root)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"scale child failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        rows += [
            _row("ct_scale", f"peak RSS, LayerFeatures memmaps ({size})", res["rss_gb"], "GB",
                 RSS_GOAL_GB, goal=f"value <= {RSS_GOAL_GB:g}"),
            _row("ct_scale", "RSS after imports, before C_T", res["base_gb"], "GB"),
            _row("ct_scale", "fit_reference per layer", res["fit_s"] / n_layers, "s"),
            _row("ct_scale", f"curve of {m} generated per layer", res["curve_s"] / n_layers, "s"),
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------- entry points

def _row(benchmark, metric, value, unit, anchor=None, note="", goal=""):
    ratio = None if anchor in (None, 0) else float(value) / float(anchor)
    return dict(benchmark=benchmark, metric=metric, value=float(value), unit=unit,
                anchor=None if anchor is None else float(anchor), ratio=ratio, note=note,
                goal=goal)


def run(quick: bool = False) -> list[dict]:
    """Both C_T benchmarks; ``quick`` shrinks them to about half a minute.

    BLAS and OpenMP run with ``MEMLIB_BENCH_THREADS`` threads (default 1) in both engines and
    in the scale subprocess: on a shared 2-core machine, busy-waiting thread pools made both
    engines 10-25x slower (measured), so multi-threaded timings would measure the neighbours.
    """
    from threadpoolctl import threadpool_limits

    load = os.getloadavg()[0]
    with threadpool_limits(limits=THREADS):
        rows = bench_fingerprint(quick) + bench_scale(quick)
    info = f"{THREADS} BLAS/OpenMP thread(s), {os.cpu_count()} CPUs, load avg {load:.1f}"
    return rows + [_row("ct_env", info, THREADS, "threads")]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(f"{row['benchmark']:15s} {row['metric']:70s} {row['value']:12.4g} {row['unit']:8s}"
              f" anchor={row['anchor']} ratio={row['ratio']}")
