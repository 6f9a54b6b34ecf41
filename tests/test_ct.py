"""Tests of the C_T engine (memlib.ct) and exact nearest neighbours (memlib.knn).

Reference values come from an independent float64 implementation written here from the
definition (sklearn NearestNeighbors, pairwise U counts, scipy's mannwhitneyu), from the
closed-form exact-copy floor, and from Meehan et al.'s KDE sanity sweep on real images.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

from memlib import ct, knn
from memlib import fingerprint as fp
from memlib.ct import ct_curve, ct_score, ct_statistic, fit_reference
from memlib.errors import InputError, ParameterError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Single-threaded BLAS/OpenMP: these small problems run 10x slower with busy-waiting
    thread pools on a shared 2-core machine (the subprocess test keeps the defaults)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield


# ----------------------------------------------------------------------------- helpers

def reference_ct(test, test_cells, gen, gen_cells, train, train_cells, tau):
    """C_T straight from Meehan's definition, in float64, one cell at a time."""
    test, gen, train = (np.asarray(x, np.float64) for x in (test, gen, train))
    k = 1 + max(test_cells.max(), gen_cells.max(), train_cells.max())
    num = den = 0.0
    for c in range(k):
        p, q, t = test[test_cells == c], gen[gen_cells == c], train[train_cells == c]
        if len(q) / len(gen) <= tau:
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(t)
        lq = nn.kneighbors(q)[0][:, 0]
        lp = nn.kneighbors(p)[0][:, 0]
        u = (lq[:, None] > lp[None, :]).sum() + 0.5 * (lq[:, None] == lp[None, :]).sum()
        assert u == pytest.approx(mannwhitneyu(lq, lp).statistic)
        n, m = len(p), len(q)
        z = (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)
        num += len(p) / len(test) * z
        den += len(p) / len(test)
    return num / den


def copy_floor(test_cells, gen_cells, k):
    """C_T when every generated point is an exact training copy (U = 0 in every cell)."""
    n = np.bincount(test_cells, minlength=k).astype(float)
    m = np.bincount(gen_cells, minlength=k).astype(float)
    z = (0.5 - n * m / 2) / np.sqrt(n * m * (n + m + 1) / 12)
    keep = m / m.sum() > 20 / m.sum()
    return (n[keep] * z[keep]).sum() / n[keep].sum()


def blobs(rng, n, d, centers, scale=1.0):
    """Gaussian clusters around ``centers`` (k, d): (n, d) float32."""
    lab = rng.integers(0, len(centers), n)
    return (centers[lab] + scale * rng.normal(size=(n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def layered():
    """Three layers (dims 80, 32, 96: with and without PCA) of train/test/5 generated sets."""
    rng = np.random.default_rng(7)
    train, test, gens = [], [], [[] for _ in range(5)]
    for d in (80, 32, 96):
        centers = 4 * rng.normal(size=(4, d))
        tr = blobs(rng, 1200, d, centers)
        train.append(tr)
        test.append(blobs(rng, 600, d, centers))
        for s, sigma in enumerate((0.05, 1.0, 1.2, 2.0, None)):
            g = (blobs(rng, 300, d, centers) if sigma is None else
                 tr[rng.integers(0, len(tr), 300)] + sigma * rng.normal(size=(300, d)))
            gens[s].append(g.astype(np.float32))
    return train, test, gens


# ----------------------------------------------------------------------------- the statistic

@pytest.mark.parametrize("case", ["random", "ties_and_dropped_cell"])
def test_ct_statistic_matches_float64_definition(case):
    rng = np.random.default_rng(1)
    d, k = 6, 4
    train = rng.normal(size=(500, d))
    test = rng.normal(size=(300, d)) * 1.05
    gen = rng.normal(size=(200, d)) * 0.9
    cell = lambda x: (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)  # noqa: E731
    tc, pc, qc = cell(train), cell(test), cell(gen)
    tau = 20 / len(gen)
    if case == "ties_and_dropped_cell":
        gen[:60] = train[:60]                 # L = 0 for copies ...
        qc[:60] = tc[:60]
        test[:30] = train[100:130]            # ... tied with test copies
        pc[:30] = tc[100:130]
        qc[qc == 3] = 0                       # cell 3: no generated points
        qc[:20] = 3                           # ... then exactly 20: dropped by tau
        gen[:20] = train[tc == 3][:20]
    got = ct_statistic(test, pc, gen, qc, train, tc, tau)
    want = reference_ct(test, pc, gen, qc, train, tc, tau)
    assert got == pytest.approx(want, abs=1e-3)
    assert ct_statistic(test, pc, gen, qc, train, tc, None) == pytest.approx(got)


def test_exact_copies_hit_the_floor():
    """docs/design.md's example: m = 1000, n = 2000, k = 3 cells -> about -26."""
    rng = np.random.default_rng(2)
    centers = 5 * rng.normal(size=(3, 16))
    train = blobs(rng, 3000, 16, centers)
    test = blobs(rng, 2000, 16, centers)
    gen = train[rng.choice(3000, 1000, replace=False)]
    score = ct_score(train, test, gen, seed=0)
    balanced = -np.sqrt(3 * (2000 / 3) * (1000 / 3) / (2000 / 3 + 1000 / 3 + 1))
    assert balanced == pytest.approx(-25.8, abs=0.1)
    ref = fit_reference([train], [test])
    km = ref.layers[0].kmeans
    floor = copy_floor(km.predict(test), km.predict(gen), 3)
    assert score == pytest.approx(floor, abs=1e-9)
    assert score == pytest.approx(balanced, abs=1.5)


def test_reference_counts_ties_as_half():
    """Copies in both test and generated sets tie at L = 0; both engines count them ½."""
    rng = np.random.default_rng(9)
    centers = 5 * rng.normal(size=(3, 12))
    train = blobs(rng, 1500, 12, centers)
    test = np.concatenate([train[:300], blobs(rng, 300, 12, centers)])
    gen = np.concatenate([train[300:500], blobs(rng, 200, 12, centers)])
    got = fit_reference([train], [test]).curve([gen])[0]
    km = fit_reference([train], [test]).layers[0].kmeans
    want = reference_ct(test, km.predict(test), gen, km.predict(gen), train,
                        km.predict(train), 20 / len(gen))
    assert got == pytest.approx(want, abs=1e-3)
    assert got == pytest.approx(ct_score(train, test, gen), abs=1e-9)


def _fmnist_or_digits(name):
    if name == "digits":
        x = load_digits().data.astype(np.float32) / 16
        x = x[np.random.default_rng(0).permutation(len(x))]
        return x[:1000], x[1000:1400], x[1400:1797]
    try:
        from memlib.data import load_fashion_mnist
        x, _ = load_fashion_mnist("test")
    except Exception as exc:  # noqa: BLE001 - data not installed here
        pytest.skip(f"Fashion-MNIST unavailable: {exc}")
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    return x[:4000], x[4000:6000], x[6000:7000]


@pytest.mark.parametrize("data", ["digits", "fashion-mnist"])
def test_meehan_kde_sweep_on_real_images(data):
    """KDE = training image + Gaussian noise σ: copying at small σ, under-fitting at large σ."""
    train, test, held_out = _fmnist_or_digits(data)
    ref = fit_reference([train], [test])
    rng = np.random.default_rng(3)
    m = len(held_out)

    def kde(sigma):
        g = train[rng.integers(0, len(train), m)]
        return [g + sigma * rng.normal(size=g.shape).astype(np.float32)]

    sweep = [ref.curve(kde(s))[0] for s in (0.003, 0.1, 0.3, 1.0)]
    cells = lambda x: ref.layers[0].kmeans.predict(ref.layers[0].proj(x, "test"))  # noqa: E731
    floor = copy_floor(cells(test), cells(held_out), 3)
    assert sweep[0] < 0.9 * floor < -10           # near the exact-copy floor
    assert sweep[-1] > 10                         # far noisier than the data: under-fitting
    assert np.all(np.diff(sweep) > 0)
    assert abs(ref.curve([held_out])[0]) < 3      # fresh data: neither
    assert ref.curve([train[:m]])[0] == pytest.approx(floor, abs=0.5)


# ----------------------------------------------------------------------------- variants

def test_variants_follow_their_role_swaps():
    rng = np.random.default_rng(4)
    centers = 3 * rng.normal(size=(3, 70))
    train, test, gen = (blobs(rng, n, 70, centers) for n in (900, 700, 400))
    gen[:200] = train[:200]
    assert ct_score(train, test, gen, variant="ct_modified", seed=1) == pytest.approx(
        ct_score(gen, test, train, variant="ct", seed=1), abs=1e-12)
    a, b = ct._split_test(len(test), seed=1)
    assert len(a) == 350 and not set(a) & set(b)
    assert ct_score(train, test, gen, variant="ct_test", seed=1) == pytest.approx(
        ct_score(test[a], test[b], gen, seed=1), abs=1e-12)
    assert ct_score(train, test, gen, variant="ct_modified") < -3   # half the set is copies


# ----------------------------------------------------------------------------- reference engine

@pytest.mark.parametrize("variant", ct.VARIANTS)
def test_reference_curve_equals_ct_score_per_layer(layered, variant):
    train, test, gens = layered
    curve = ct_curve(train, test, gens[1], variant=variant, seed=3)
    assert curve.shape == (3,)
    for l in range(3):
        want = ct_score(train[l], test[l], gens[1][l], variant=variant, seed=3)
        assert curve[l] == pytest.approx(want, abs=1e-9)


def test_layer_inputs_can_be_stacked_arrays_or_objects(layered):
    train, test, gens = layered
    train, test, gen = ([x[1]] * 2 for x in (train, test, gens[0]))   # same dim: stackable

    class Lazy:                          # LayerFeatures-like, float16 on "disk"
        def __init__(self, layers):
            self.layers = [x.astype(np.float16) for x in layers]

        def __len__(self):
            return len(self.layers)

        def __getitem__(self, l):
            return self.layers[l]

    a = ct_curve(train, test, gen)
    b = ct_curve(np.stack(train), np.stack(test), np.stack(gen))
    c = ct_curve(Lazy(train), Lazy(test), Lazy(gen))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=0.2)   # float16 rounding moves a few ranks


def test_curves_batch_invariant_and_sorted_by_copying(layered):
    train, test, gens = layered
    ref = fit_reference(train, test, seed=0)
    batch = ref.curves(gens)
    assert batch.shape == (5, 3)
    for s, g in enumerate(gens):
        np.testing.assert_array_equal(batch[s], ref.curve(g))
    assert np.all(batch[0] < -10)                      # σ = 0.05: copies
    assert np.all(batch[1] < batch[2]) and np.all(batch[2] < batch[3])
    assert np.all(batch[3] > 10)                       # σ = 2: under-fitting
    assert np.all(np.abs(batch[4]) < 3)                # fresh samples
    dist, cells = ref.layer_distances(gens[4])
    assert dist.shape == cells.shape == (3, 300) and np.all(dist > 0)


def test_bootstrap_interval_contains_point_estimate(layered):
    train, test, gens = layered
    ref = fit_reference(train, test)
    est, lo, hi = ref.curve_bootstrap(gens[2], n_boot=300, seed=1)
    np.testing.assert_array_equal(est, ref.curve(gens[2]))
    assert np.all(lo < est) and np.all(est < hi)
    assert np.all(hi - lo < 6)
    again = ref.curve_bootstrap(gens[2], n_boot=300, seed=1)
    np.testing.assert_array_equal(np.stack(again), np.stack((est, lo, hi)))
    mod = fit_reference([train[1]], [test[1]], variant="ct_modified")
    est, lo, hi = mod.curve_bootstrap([gens[2][1]], n_boot=8, seed=0)
    assert lo[0] <= hi[0] and np.isfinite(est[0])


@pytest.mark.parametrize("variant", ["ct", "ct_test"])
def test_subset_curves_of_the_whole_set_equal_curve(layered, variant):
    train, test, gens = layered
    ref = fit_reference(train, test, variant=variant, seed=2)
    m = len(gens[1][0])
    want = ref.curve(gens[1])
    np.testing.assert_array_equal(ref.subset_curves(gens[1], [np.arange(m)])[0], want)
    dist = ref.layer_distances(gens[1])
    assert isinstance(dist, ct.LayerDistances) and dist.cells.shape == (3, m)
    twice = ref.subset_curves(dist, [np.arange(m), np.arange(m)[::-1]])
    np.testing.assert_array_equal(twice[0], want)
    np.testing.assert_allclose(twice[1], want, rtol=1e-12)   # order changes only the sum order


def _same_cells_statistic(ref, l, train, test, gen, tau=None, rows=None):
    """ct_statistic (ranks) of ``gen`` on the reference's own projection and cells of layer l.

    ``rows`` picks points of ``gen`` after projecting the whole set, as the engine's subsets
    do: a matrix product rounds a row differently with the shape of its batch (OpenBLAS picks
    kernels by shape; measured 2.3e-5 apart here), which would turn the exact copies' distance
    0 into ~1e-5 and change the ties."""
    lay = ref.layers[l]
    tz, pz, qz = (lay.proj(x, nm) for x, nm in ((train, "train"), (test, "test"), (gen, "gen")))
    if rows is not None:
        qz = qz[rows]
    km = lay.kmeans
    return ct_statistic(pz, km.predict(pz), qz, km.predict(qz), tz, km.predict(tz), tau)


def test_subset_curves_equal_ct_statistic_on_the_same_cells():
    """Subsets (with L = 0 ties between test and generated copies) against the rank-based
    reference statistic on the same cells, per layer, with tau = 20 / subset size."""
    rng = np.random.default_rng(12)
    train, test, gen = [], [], []
    for d in (10, 90):                                   # without and with PCA
        centers = 5 * rng.normal(size=(3, d))
        tr = blobs(rng, 1500, d, centers)
        train.append(tr)
        test.append(np.concatenate([tr[:60], blobs(rng, 540, d, centers)]))
        gen.append(np.concatenate([tr[100:250], blobs(rng, 250, d, centers)]))
    ref = fit_reference(train, test, pca_dim=64, seed=1)
    subsets = fp.subsample_indices(400, 150, 3, seed=4) + [np.arange(400)]
    got = ref.subset_curves(gen, subsets)
    assert got.shape == (4, 2) and np.isfinite(got).all()
    for s, idx in enumerate(subsets):
        for l in range(2):
            want = _same_cells_statistic(ref, l, train[l], test[l], gen[l], rows=idx)
            assert got[s, l] == pytest.approx(want, abs=1e-9)
    assert np.all(got < -2)                              # 150 of 400 points are copies
    assert np.all(got[-1] < got[:3].mean(axis=0))        # |C_T| grows with the set size


def test_bootstrap_replicates_are_subset_curves_of_the_same_draws(layered):
    """curve_bootstrap's percentiles are those of the subset curves of its draws (m points
    with replacement, rng(seed).integers); one replicate equals ct_statistic of its points."""
    train, test, gens = layered
    ref = fit_reference(train, test)
    m, n_boot = len(gens[2][0]), 200
    est, lo, hi = ref.curve_bootstrap(gens[2], n_boot=n_boot, seed=6)
    draws = np.random.default_rng(6).integers(0, m, size=(n_boot, m))
    reps = ref.subset_curves(gens[2], list(draws))
    np.testing.assert_array_equal(np.stack((lo, hi)),
                                  np.nanpercentile(reps, [2.5, 97.5], axis=0))
    for l in range(3):
        assert reps[0, l] == pytest.approx(
            _same_cells_statistic(ref, l, train[l], test[l], gens[2][l], rows=draws[0]), abs=1e-9)


def test_subset_curves_nan_rules():
    """No kept cell: NaN; a kept cell without test points: InputError; a dropped one: fine."""
    rng = np.random.default_rng(13)
    centers = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0]])
    lab = lambda n, cs: rng.choice(cs, n)                       # noqa: E731
    pts = lambda c: (centers[c] + rng.normal(size=(len(c), 2))).astype(np.float32)  # noqa: E731
    train = pts(np.repeat([0, 1, 2], 300))
    test = pts(lab(400, [0, 1]))                                # nothing near centre 2
    gen = pts(np.r_[np.zeros(100, int), np.ones(100, int), np.full(40, 2)])
    ref = fit_reference([train], [test], pca_dim=None)
    c2 = int(ref.layers[0].kmeans.predict(centers[2:])[0])
    with pytest.raises(InputError, match=rf"^test \(layer 0\): cell {c2} holds 40 generated"):
        ref.curve([gen])
    balanced = np.r_[0:10, 100:110, 200:210]                    # 10 per cell, tau = 20/30
    mostly_0 = np.r_[0:60, 200:205]                             # cell of centre 2 dropped
    out = ref.subset_curves([gen], [balanced, mostly_0])
    assert np.isnan(out[0, 0]) and np.isfinite(out[1, 0])
    assert out[1, 0] == pytest.approx(
        _same_cells_statistic(ref, 0, train, test, gen, rows=mostly_0), abs=1e-9)
    with pytest.raises(InputError, match=rf"^test \(layer 0\): cell {c2} .*gen subset 1"):
        ref.subset_curves([gen], [balanced, np.arange(200, 240)])
    two_cells = [np.r_[0:10, 100:110]]                           # 10 of 20 per cell
    assert np.isnan(ref.subset_curves([gen], two_cells)).all()   # tau = 20/20 drops both
    explicit = fit_reference([train], [test], pca_dim=None, tau=0.0)
    assert explicit.subset_curves([gen], two_cells)[0, 0] == pytest.approx(
        _same_cells_statistic(explicit, 0, train, test, gen, tau=0.0, rows=two_cells[0]), abs=1e-9)
    with pytest.raises(InputError, match=r"^gen subset 0: .*index array"):
        ref.subset_curves([gen], [np.array([0, 240])])
    with pytest.raises(ParameterError, match="subset_curves"):
        fit_reference([train], [test], variant="ct_modified").subset_curves([gen], [balanced])


def test_defaults_come_from_the_default_profile(layered):
    from memlib.params import load_params
    p = load_params("default")
    train, test, gens = layered
    ref = fit_reference(train, test)
    assert (ref.n_cells, ref.pca_dim) == (p["n_cells"], p["pca_dim"])
    assert ct_score(train[0], test[0], gens[1][0]) == ct_score(
        train[0], test[0], gens[1][0], n_cells=p["n_cells"], pca_dim=p["pca_dim"])
    assert fit_reference(train, test, n_cells=2, pca_dim=None).layers[0].proj.components is None


_DETERMINISM_SCRIPT = """
import json, numpy as np
from memlib.ct import fit_reference
rng = np.random.default_rng(11)
c = 3 * rng.normal(size=(5, 100))
mk = lambda n: (c[rng.integers(0, 5, n)] + rng.normal(size=(n, 100))).astype(np.float32)
train, test, gen = [mk(2000), mk(2000)], [mk(800), mk(800)], [mk(400), mk(400)]
gen[1][:100] = train[1][:100]
ref = fit_reference(train, test, seed=5)
print(json.dumps([float(v).hex() for v in ref.curve(gen)]))
"""


def test_deterministic_across_processes():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outs = [subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT], capture_output=True,
                           text=True, env=env, cwd=REPO, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1]
    assert len(json.loads(outs[0])) == 2


# ----------------------------------------------------------------------------- bad inputs

def test_bad_inputs_raise_input_error_naming_the_set(layered):
    train, test, gens = layered
    tr, te, g = train[1], test[1], gens[0][1]
    bad = g.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match=r"^gen.*NaN"):
        ct_score(tr, te, bad)
    with pytest.raises(InputError, match=r"^gen \(layer 1\).*NaN"):
        ct_curve(train, test, [gens[0][0], bad, gens[0][2]])
    inf = tr.copy()
    inf[0, 0] = np.inf
    with pytest.raises(InputError, match=r"^train.*NaN or inf"):
        ct_score(inf, te, g, variant="ct_modified")      # train plays Q: still named train
    with pytest.raises(InputError, match=r"^test.*dimension"):
        ct_score(tr, te[:, :10], g)
    with pytest.raises(InputError, match=r"^gen.*dimension"):
        fit_reference(train, test).curve([gens[0][0], g[:, :5], gens[0][2]])
    with pytest.raises(InputError, match=r"^train.*2 points"):
        ct_score(tr[:2], te, g)
    with pytest.raises(InputError, match=r"^gen.*more than tau"):
        ct_score(tr, te, g[:20])
    with pytest.raises(InputError, match=r"^gen: 2 layers"):
        fit_reference(train, test).curve(gens[0][:2])
    with pytest.raises(InputError, match=r"^test.*\(L, N, D\)"):
        ct_curve(train, te, gens[0])
    with pytest.raises(InputError, match=r"^train \(layer 2\): features contain NaN"):
        fit_reference([train[0], train[1], np.where(train[2] > 3, np.nan, train[2])], test)
    with pytest.raises(InputError, match=r"^gen \(layer 2\): 10 points but layer 0 has 300"):
        fit_reference(train, test).curve_bootstrap([gens[0][0], gens[0][1], gens[0][2][:10]])
    with pytest.raises(InputError, match=r"^train \(layer 0\).*NaN or inf"):
        ct_curve([inf], [te], [g], variant="ct_modified")  # ct_modified: T is refit per call
    with pytest.raises(ParameterError):
        ct_score(tr, te, g, variant="ct_mem")
    with pytest.raises(ParameterError):
        ct_score(tr, te, g, tau=1.5)


def test_kept_cell_without_test_or_train_points_is_an_error():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 4))
    cells = np.repeat([0, 1], 200)
    with pytest.raises(InputError, match=r"^test: cell 1"):
        ct_statistic(x[:100], np.zeros(100, int), x[100:200], cells[::4], x[200:], cells[::2],
                     None)
    with pytest.raises(InputError, match=r"^train: cell 1"):
        ct_statistic(x[:100], cells[::4], x[100:200], cells[::4], x[200:], np.zeros(200, int),
                     None)
    with pytest.raises(InputError, match=r"^gen.*12 integers"):
        ct_statistic(x[:100], cells[::4], x[100:112], cells[:10], x[200:], cells[::2], None)
    # a cell that tau drops may lack test points
    q_cells = np.r_[np.zeros(90, int), np.ones(10, int)]
    assert np.isfinite(ct_statistic(x[:100], np.zeros(100, int), x[100:200], q_cells,
                                    x[200:], cells[::2], None))


# ----------------------------------------------------------------------------- nearest neighbours

def test_nn_distances_match_float64_brute_force(monkeypatch):
    rng = np.random.default_rng(6)
    base = (50 + rng.normal(size=(3000, 40))).astype(np.float32)   # offset: tests centring
    queries = (50 + rng.normal(size=(700, 40))).astype(np.float32)
    queries[:50] = base[100:150]
    monkeypatch.setattr(knn, "QUERY_BATCH", 256)                   # several query batches
    got = knn.nn_distances(queries, base)
    d2 = ((queries.astype(np.float64)[:, None] - base.astype(np.float64)[None]) ** 2).sum(-1)
    want = np.sqrt(d2.min(1))
    assert got.dtype == np.float32 and got.shape == (700,)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.all(got[:50] == 0)
    np.testing.assert_allclose(knn.nn_distances(queries.astype(np.float16), base),
                               knn.nn_distances(queries.astype(np.float16).astype(np.float32),
                                                base))


@pytest.mark.parametrize("offset", [0.0, 30.0])
def test_every_backend_returns_the_same_neighbours(monkeypatch, offset):
    rng = np.random.default_rng(8)
    base = (offset + rng.normal(size=(2500, 24))).astype(np.float32)
    queries = (offset + rng.normal(size=(900, 24))).astype(np.float32)
    queries[:20] = base[500:520]                                   # exact copies: distance 0
    want = NearestNeighbors(n_neighbors=1).fit(base.astype(np.float64)).kneighbors(
        queries.astype(np.float64))[1][:, 0]
    d_f, i_f = knn.NNIndex(base, backend="faiss-cpu").search(queries)
    d_b, i_b = knn.NNIndex(base, backend="blas").search(queries)
    monkeypatch.setattr(knn, "TORCH_BLOCK", 1 << 16)               # several base chunks
    monkeypatch.setattr(knn, "BLAS_BLOCK", 1 << 16)                # (64 queries × 1024 base)
    d_t, i_t = knn.NNIndex(base, backend="torch").search(queries)
    d_bc, i_bc = knn.NNIndex(base, backend="blas").search(queries)
    for i, d in ((i_f, d_f), (i_b, d_b), (i_t, d_t), (i_bc, d_bc)):
        np.testing.assert_array_equal(i, want)
        np.testing.assert_array_equal(d, d_f)
    assert np.all(d_b[:20] == 0)


def test_backend_choice_and_missing_faiss(monkeypatch):
    rng = np.random.default_rng(9)
    base, queries = rng.normal(size=(300, 8)), rng.normal(size=(50, 8))
    assert knn.NNIndex(base).backend == knn.available_backends()[0]
    if not knn._torch_has_cuda():
        assert knn.available_backends()[0] == "blas"
    want = knn.nn_distances(queries, base, backend="blas")
    monkeypatch.setattr(knn, "faiss", None)                        # faiss not installed
    assert "faiss-cpu" not in knn.available_backends()
    np.testing.assert_array_equal(knn.nn_distances(queries, base), want)
    with pytest.raises(ParameterError):
        knn.nn_distances(queries, base, backend="faiss-cpu")
    with pytest.raises(ParameterError, match="must be one of"):
        knn.nn_distances(queries, base, backend="annoy")


# ----------------------------------------------------------------------------- effect size

def reference_effect(ref, l, train, test, gen):
    """The effect size from its definition on the reference's own projection and cells:
    per kept cell 2U/(n m) − 1 with U from scipy's mannwhitneyu, weighted by n_π / n."""
    lay = ref.layers[l]
    tz, pz, qz = (lay.proj(x, nm) for x, nm in ((train, "train"), (test, "test"), (gen, "gen")))
    tc, pc, qc = (lay.kmeans.predict(z) for z in (tz, pz, qz))
    num = den = 0.0
    for c in range(ref.n_cells):
        if (qc == c).sum() / len(qz) <= 20 / len(qz):
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(tz[tc == c])
        lq, lp = (nn.kneighbors(z[zc == c])[0][:, 0] for z, zc in ((qz, qc), (pz, pc)))
        u = mannwhitneyu(lq, lp).statistic
        num += (pc == c).sum() * (2 * u / (len(lq) * len(lp)) - 1)
        den += (pc == c).sum()
    return num / den


def test_effect_size_matches_its_definition_floor_and_null(layered):
    train, test, gens = layered
    ref = fit_reference(train, test, seed=3)
    for g in gens:
        m = len(g[0])
        got = ref.subset_curves(g, [np.arange(m)], statistic="effect")[0]
        for l in range(3):
            assert got[l] == pytest.approx(reference_effect(ref, l, train[l], test[l], g[l]),
                                           abs=1e-6)
    # exact copies of T: every L(q) = 0 < every L(p), so U = 0 in every cell and the effect is -1
    copies = [t[:300] for t in train]
    np.testing.assert_array_equal(ref.subset_curves(copies, [np.arange(300)], statistic="effect"),
                                  -1.0)
    # fresh points from the test distribution (gens[4]): the null, effect near 0
    assert np.all(np.abs(ref.subset_curves(gens[4], [np.arange(300)], statistic="effect")) < 0.15)
    # the effect is each cell's Z_U divided by its floor, up to the continuity term: same sign
    ct_ = ref.curve(gens[0])
    eff = ref.subset_curves(gens[0], [np.arange(300)], statistic="effect")[0]
    assert np.all(np.sign(ct_) == np.sign(eff))
    with pytest.raises(ParameterError, match="statistic"):
        ref.subset_curves(gens[0], [np.arange(300)], statistic="z")
