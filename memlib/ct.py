"""The data-copying score C_T of Meehan et al. (2020), per set and per encoder layer.

Sets and roles. T = training set (l points), P_n = held-out test set (n), Q_m = generated set
(m). Each set is an (N, D) feature array; per-layer inputs (``*_layers``) are a sequence of
(N, D) arrays, an (L, N, D) array, or any object with ``__len__`` and ``__getitem__(layer)``
returning an (N, D) array (e.g. :class:`memlib.features.LayerFeatures`). Layers are read one at
a time and all arithmetic is float32 (float16 input is cast per chunk of rows).

The statistic (DESIGN §5; same logic as ``casey-meehan/data-copying`` and dgm-eval):

1. PCA to ``pca_dim`` (64) dimensions fit on T (skipped when D ≤ pca_dim); project all sets.
   The PCA is exact (eigendecomposition of the float64 covariance, streamed over row chunks;
   the same solution as sklearn's ``covariance_eigh`` solver, signs fixed so that each
   component's largest-magnitude entry is positive) and has no randomness.
2. k-means with ``n_cells`` (3) cells, ``sklearn.cluster.KMeans(n_init=10,
   random_state=seed)`` in float64, fit on projected T; every set gets cells from ``predict``.
3. In each cell π, L(x) = Euclidean distance from x to the nearest point of T in π.
   U = ``scipy.stats.mannwhitneyu(L_Q, L_P).statistic``: the number of pairs (q, p) with
   L(q) > L(p), ties counted ½ (computed from ranks, not pairs). With n_π, m_π the cell's test
   and generated counts, Z_U = (U − (n_π m_π / 2 − 0.5)) / sqrt(n_π m_π (n_π + m_π + 1) / 12):
   the reference code's continuity term (−0.5, applied on both sides of the mean) and no tie
   correction, reproduced exactly.
4. Cells with Q_m(π) = m_π / m ≤ τ are dropped; τ is a fraction of the generated points,
   20/m by default (a cell needs more than 20 generated points).
5. C_T = Σ P_n(π) Z_U(π) / Σ P_n(π) over the kept cells, P_n(π) = n_π / n.

Sign: C_T ≪ 0 means the generated points sit closer to the training set than fresh data does
(data copying, memorization); C_T ≫ 0 means farther (under-fitting); under H0 each Z_U is about
N(0, 1). Exact copies give U = 0 in every cell, so C_T ≈ −sqrt(3 n_π m_π / (n_π + m_π + 1)),
e.g. ≈ −25.8 for n = 2000, m = 1000 split evenly over 3 cells.

Variants (names and role swaps as dgm-eval's ``compute_CTscore``, ``_mem`` and ``_mode``):

- ``"ct"``: Meehan's C_T(P_n, Q_m) against T, as above.
- ``"ct_modified"`` ("memorization only"): T and Q_m swap roles, i.e. C_T of the *training*
  points measured against the generated set: PCA and cells are fit on the generated set,
  L(x) is the distance to the nearest generated point, and τ = 20 / l. Strongly negative when
  training points have generated near-copies; insensitive to generated points that merely
  under-fit.
- ``"ct_test"`` ("mode collapse only"): the training set is not used; the test set is split
  in two halves, the first playing T and the second P_n. dgm-eval splits by row order
  (``np.array_split(test, 2)``); here the split is a seeded random permutation (first half
  ⌈n/2⌉ rows), so the result does not depend on how the test set happens to be ordered.

Differences from dgm-eval's code, all deliberate: seeded KMeans and exact (non-randomized)
PCA; exact float32 nearest neighbours (:mod:`memlib.knn`) instead of sklearn; a cell lacking
test or training points is an error only when it is kept (dgm-eval raises for any such cell,
even one that τ would drop, and counts cells as ``len(unique(test_cells))``); no kept cell at
all is an error (dgm-eval returns NaN).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.linalg
from scipy.stats import rankdata
from sklearn.cluster import KMeans
from tqdm.auto import tqdm

from .errors import InputError, ParameterError
from .knn import NNIndex

__all__ = ["VARIANTS", "ct_statistic", "ct_score", "ct_curve", "fit_reference", "Reference"]

VARIANTS = ("ct", "ct_modified", "ct_test")
CHUNK_ROWS = 8192            # rows cast to float32 at once when streaming a layer
BOOT_BLOCK = 1 << 22         # resampled indices held at once by the bootstrap
_THREADPOOLS = None          # threadpoolctl.ThreadpoolController, made on first use


# ----------------------------------------------------------------------------- the statistic

def ct_statistic(test: np.ndarray, test_cells: np.ndarray, gen: np.ndarray,
                 gen_cells: np.ndarray, train: np.ndarray, train_cells: np.ndarray,
                 tau: float | None = None) -> float:
    """C_T for given features and cell labels (steps 3-5 above; no PCA, no clustering).

    Args:
        test: (n, D) held-out features P_n.  test_cells: (n,) non-negative int cell labels.
        gen: (m, D) generated features Q_m.  gen_cells: (m,) cell labels.
        train: (l, D) training features T.   train_cells: (l,) cell labels.
        tau: keep cells whose share of generated points m_π/m is > tau; None means 20/m.

    Returns:
        C_T (dimensionless, a weighted mean of z-scores).
    """
    return _ct_statistic(test, test_cells, gen, gen_cells, train, train_cells, tau)


def _ct_statistic(test, test_cells, gen, gen_cells, train, train_cells, tau,
                  names=("test", "gen", "train"), where=""):
    """:func:`ct_statistic` with the user's set names for each role (for error messages)."""
    n_name, m_name, t_name = names
    p, q, t = (_full(x, nm, where) for x, nm in ((test, n_name), (gen, m_name),
                                                  (train, t_name)))
    for x, nm in ((q, m_name), (t, t_name)):
        if x.shape[1] != p.shape[1]:
            raise InputError(f"{nm}{where}: feature dimension {x.shape[1]} does not match "
                             f"{n_name}'s {p.shape[1]}")
    pc, qc, tc = (_labels(c, len(x), nm, where) for c, x, nm in
                  ((test_cells, p, n_name), (gen_cells, q, m_name), (train_cells, t, t_name)))
    k = 1 + max(int(c.max()) for c in (pc, qc, tc))
    n_test = np.bincount(pc, minlength=k)
    m_gen = np.bincount(qc, minlength=k)
    n_train = np.bincount(tc, minlength=k)
    tau = _tau(tau, len(q))
    keep = _kept(m_gen, len(q), tau)
    _check_cells(keep, n_test, n_train, m_gen, tau, names, where)
    u = np.zeros(k)
    for c in np.flatnonzero(keep):
        index = NNIndex(t[tc == c], name=t_name)
        lq = index.distances(q[qc == c]).astype(np.float64)
        lp = index.distances(p[pc == c]).astype(np.float64)
        ranks = rankdata(np.concatenate([lq, lp]))          # average ranks: ties count ½
        u[c] = ranks[:len(lq)].sum() - len(lq) * (len(lq) + 1) / 2.0
    return float(_combine(u, m_gen, n_test, len(q), tau))


def _z_u(u, n, m):
    """Meehan's z-score of a Mann-Whitney U (continuity −0.5, no tie correction)."""
    n = np.asarray(n, np.float64)
    m = np.asarray(m, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (u - (n * m / 2.0 - 0.5)) / np.sqrt(n * m * (n + m + 1.0) / 12.0)


def _kept(m_gen, m, tau):
    """Cells whose generated share m_π/m is above tau (the same float comparison as Meehan)."""
    return np.asarray(m_gen) / m > tau


def _combine(u, m_gen, n_test, m, tau):
    """C_T from per-cell U (..., k) and generated counts (..., k); test counts (k,).

    Rows with no kept cell, or a kept cell without test points, give NaN (callers that need
    an error call :func:`_check_cells` first).
    """
    keep = _kept(m_gen, m, tau) & (n_test > 0)
    bad = (_kept(m_gen, m, tau) & (n_test == 0)).any(axis=-1) | ~keep.any(axis=-1)
    z = np.where(keep, _z_u(u, n_test, m_gen), 0.0)
    w = np.where(keep, n_test / n_test.sum(), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ct = (w * z).sum(axis=-1) / w.sum(axis=-1)
    return np.where(bad, np.nan, ct)


def _check_cells(keep, n_test, n_train, m_gen, tau, names, where):
    n_name, m_name, t_name = names
    if not keep.any():
        raise InputError(f"{m_name}{where}: no cell holds more than tau = {tau:.4g} of the "
                         f"{int(m_gen.sum())} generated points (needs > 20 points in a cell "
                         f"by default); use a larger set or fewer cells")
    for c in np.flatnonzero(keep):
        if n_test[c] == 0:
            raise InputError(f"{n_name}{where}: cell {c} holds {m_gen[c]} generated points "
                             f"but no test points; use fewer cells (n_cells) or more test data")
        if n_train[c] == 0:
            raise InputError(f"{t_name}{where}: cell {c} holds {m_gen[c]} generated points "
                             f"but no training points; use fewer cells (n_cells)")


def _tau(tau, m):
    if tau is None:
        return 20.0 / m
    tau = float(tau)
    if not 0.0 <= tau < 1.0:
        raise ParameterError(f"tau is a fraction of the generated points in [0, 1), got {tau}")
    return tau


# ----------------------------------------------------------------------------- single layer

def ct_score(train: np.ndarray, test: np.ndarray, gen: np.ndarray, *, variant: str = "ct",
             n_cells: int = 3, pca_dim: int | None = 64, tau: float | None = None,
             seed: int = 0) -> float:
    """C_T of one generated set on one feature space (module docstring, steps 1-5).

    Args:
        train: (l, D) training features; test: (n, D) held-out features; gen: (m, D)
            generated features. Any float dtype (float16 is cast to float32).
        variant: ``"ct"``, ``"ct_modified"`` or ``"ct_test"`` (module docstring).
        n_cells: k-means cells. pca_dim: PCA dimension (None: no PCA).
        tau: cell threshold as a fraction of the points in the generated role; None = 20/m.
        seed: KMeans ``random_state`` (and the ``ct_test`` split).

    Returns:
        C_T (float). Fits PCA and cells anew; for many sets or layers use :func:`fit_reference`.
    """
    _check_params(variant, n_cells, pca_dim)
    roles = _roles(variant, train, test, gen, n_cells, seed, "")
    return _ct_generic(*roles, n_cells=n_cells, pca_dim=pca_dim, tau=tau, seed=seed, where="")


def _roles(variant, train, test, gen, n_cells, seed, where):
    """(T, P, Q, names) for a variant; names are the user's set names in role order P, Q, T."""
    test = _layer_array(test, "test", where, n_cells if variant != "ct_test" else 2 * n_cells)
    gen = _layer_array(gen, "gen", where, 1 if variant != "ct_modified" else n_cells)
    if variant == "ct_test":
        t_half, p_half = _split_test(len(test), seed)
        return test[t_half], test[p_half], gen, ("test", "gen", "test")
    train = _layer_array(train, "train", where, n_cells if variant == "ct" else 1)
    if variant == "ct_modified":
        return gen, test, train, ("test", "train", "gen")
    return train, test, gen, ("test", "gen", "train")


def _split_test(n, seed):
    """Seeded halves of range(n): (first ⌈n/2⌉ of a permutation, the rest), each sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    h = (n + 1) // 2
    return np.sort(perm[:h]), np.sort(perm[h:])


def _ct_generic(t, p, q, names, *, n_cells, pca_dim, tau, seed, where):
    """Fit projection and cells on role T, then the statistic (arrays may be memmaps)."""
    n_name, m_name, t_name = names
    for x, nm in ((p, n_name), (q, m_name)):
        if x.shape[1] != t.shape[1]:
            raise InputError(f"{nm}{where}: feature dimension {x.shape[1]} does not match "
                             f"{t_name}'s {t.shape[1]}")
    proj = _Projection.fit(t, pca_dim, t_name, where)
    tz, pz, qz = proj(t, t_name, where), proj(p, n_name, where), proj(q, m_name, where)
    km = _fit_cells(tz, n_cells, seed)
    return _ct_statistic(pz, km.predict(pz), qz, km.predict(qz), tz, km.predict(tz), tau,
                         names=names, where=where)


@dataclass
class _Projection:
    """x ↦ (x − mean) @ components, or the identity (float32 copy) when ``components`` is None."""

    dim_in: int
    mean: np.ndarray | None = None        # (D,) float32
    components: np.ndarray | None = None  # (D, pca_dim) float32

    @classmethod
    def fit(cls, x, pca_dim, name, where):
        """Exact PCA of the rows of x (N, D), streamed in float32 chunks, float64 moments."""
        n, d = x.shape
        if pca_dim is None or d <= pca_dim:
            return cls(d)
        if n < 2:
            raise InputError(f"{name}{where}: {n} point, need at least 2 to fit the PCA")
        shift = None
        s = np.zeros(d)
        cov = np.zeros((d, d))
        for start, chunk in _chunks(x, name, where, check=False):
            if shift is None:   # centre on the first chunk's mean: little cancellation
                shift = chunk.mean(axis=0, dtype=np.float64).astype(np.float32)
            c = chunk - shift
            col = c.sum(axis=0, dtype=np.float64)
            if not np.isfinite(col).all():      # a NaN or inf anywhere makes its column's sum so
                _check_finite(chunk, start, name, where)
            s += col
            cov += c.T @ c
        mu = s / n
        cov = (cov - n * np.outer(mu, mu)) / (n - 1)
        # LAPACK's divide-and-conquer driver: the fastest of numpy's and scipy's here, also
        # faster than asking for the top pca_dim pairs only (measured at D = 384)
        _, vecs = scipy.linalg.eigh(cov, driver="evd")
        comps = vecs[:, ::-1][:, :pca_dim]
        signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(comps.shape[1])])
        comps = comps * np.where(signs == 0, 1.0, signs)
        return cls(d, (shift + mu).astype(np.float32), np.ascontiguousarray(comps, np.float32))

    @property
    def dim_out(self) -> int:
        return self.dim_in if self.components is None else self.components.shape[1]

    def __call__(self, x, name, where):
        """(N, D) → (N, dim_out) float32, reading x in chunks."""
        if x.shape[1] != self.dim_in:
            raise InputError(f"{name}{where}: feature dimension {x.shape[1]} does not match the "
                             f"reference's {self.dim_in}")
        out = np.empty((x.shape[0], self.dim_out), np.float32)
        for start, chunk in _chunks(x, name, where, check=self.components is None):
            if self.components is not None:
                # a NaN or inf input entry reaches its output row through the product, so
                # checking the (N, pca_dim) output replaces a pass over the (N, D) input
                np.matmul(chunk - self.mean, self.components, out=out[start:start + len(chunk)])
                if not np.isfinite(out[start:start + len(chunk)]).all():
                    _check_finite(chunk, start, name, where)
            else:
                out[start:start + len(chunk)] = chunk
        return out


class _Cells(KMeans):
    """sklearn's KMeans, fit and queried in float64 whatever the input's dtype.

    float64 is what dgm-eval feeds it (its PCA returns float64), and it is also the faster
    path: on float32 input sklearn's k-means++ upcasts every distance block to float64 one at a
    time (≈ 15 % slower at 10,000 × 64, measured). ``predict`` returns int64 labels.
    """

    def fit(self, X, y=None, sample_weight=None):
        with _one_openmp_thread():
            return super().fit(np.asarray(X, np.float64), y, sample_weight)

    def predict(self, X):
        with _one_openmp_thread():
            return super().predict(np.asarray(X, np.float64)).astype(np.int64)


def _one_openmp_thread():
    """sklearn's k-means runs OpenMP loops over blocks of 256 points; on our 2-core machine
    KMeans(3, n_init=10) on 64-d points ran 4.7× slower with 2 threads than with 1 at 10,000
    points and 15 % slower at 100,000 (quiet machine), and k = 3 never needs more."""
    global _THREADPOOLS
    if _THREADPOOLS is None:    # scanning the loaded libraries costs ~1 ms: do it once
        from threadpoolctl import ThreadpoolController
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="openmp")


def _fit_cells(z, n_cells, seed):
    return _Cells(n_clusters=n_cells, n_init=10, random_state=seed).fit(z)


# ----------------------------------------------------------------------------- per layer

@dataclass
class _LayerRef:
    """What one layer of a reference keeps: projection, cells, train per cell, test stats."""

    proj: _Projection
    kmeans: _Cells
    index: list            # per cell: NNIndex over the cell's T points, or None if empty
    test_sorted: list      # per cell: sorted L(p) of the cell's P points (float64)
    n_test: np.ndarray     # (k,) test points per cell


@dataclass
class Reference:
    """Per-layer PCA, cells, training points per cell and test distances, fit once.

    Build with :func:`fit_reference`; then :meth:`curve`, :meth:`curves` and
    :meth:`curve_bootstrap` score any number of generated sets, each costing one projection,
    one ``predict`` and one exact 1-NN search of the generated points per layer.

    Memory: per layer the projected training set (l × pca_dim float32, e.g. 25.6 MB for
    l = 100k) plus the sorted test distances.

    For ``variant="ct_modified"`` the generated set plays T, so nothing can be fit before it
    is known: the reference only keeps the layer sources and every call refits PCA and cells
    per layer and set (as :func:`ct_score`); the bootstrap refits per replicate and is slow.
    """

    variant: str
    n_cells: int
    pca_dim: int | None
    tau: float | None
    seed: int
    n_layers: int
    layers: list = field(default_factory=list)            # _LayerRef per layer (ct, ct_test)
    sources: tuple = ()                                   # (train, test) for ct_modified

    def curve(self, gen_layers: Any) -> np.ndarray:
        """(L,) C_T per layer for one generated set (``gen_layers``: L layers of (m, D))."""
        return self.curves([gen_layers])[0]

    def curves(self, gen_sets: Sequence[Any], *, progress: bool = False) -> np.ndarray:
        """(S, L) C_T for S generated sets; each row equals :meth:`curve` of that set alone."""
        names = [f"gen[{s}]" if len(gen_sets) > 1 else "gen" for s in range(len(gen_sets))]
        gens = [_as_layers(g, nm) for g, nm in zip(gen_sets, names)]
        for g, nm in zip(gens, names):
            self._check_layer_count(g, nm)
        out = np.empty((len(gens), self.n_layers))
        for l in tqdm(range(self.n_layers), desc="C_T layers", disable=not progress):
            if self.variant == "ct_modified":
                train, test = self.sources[0][l], self.sources[1][l]   # read once per layer
                for s, (g, nm) in enumerate(zip(gens, names)):
                    out[s, l] = self._modified(train, test, g[l], l, nm)
                continue
            # all sets of this layer in one search per cell: one large GEMM, not S small ones
            per_set = self._gen_layers([g[l] for g in gens], l, names)
            for s, ((cells, contrib), nm) in enumerate(zip(per_set, names)):
                out[s, l] = self._ct_from(cells, contrib, l, nm)
        return out

    def layer_distances(self, gen_layers: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-layer L(q) and cells of one generated set (``ct``/``ct_test`` only).

        Returns:
            distances (L, m) float32 (feature units, after PCA) and cells (L, m) int64.
        """
        if self.variant == "ct_modified":
            raise ParameterError("layer_distances is defined for variants 'ct' and 'ct_test'")
        g = _as_layers(gen_layers, "gen")
        self._check_layer_count(g, "gen")
        dist, cells = [], []
        for l in range(self.n_layers):
            d, c = self._gen_search(g[l], l)
            dist.append(d)
            cells.append(c)
        return np.stack(dist), np.stack(cells)

    def curve_bootstrap(self, gen_layers: Any, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """C_T curve with percentile confidence intervals from resampling the generated set.

        Each replicate draws m generated points with replacement (the same draw for every
        layer). For ``ct``/``ct_test`` a point's L(q) and its U contribution do not depend on
        the rest of the set, so they are computed once and replicates only re-add them.
        Replicates in which a kept cell lacks test points are NaN and ignored.

        Returns:
            ct (L,) the point estimate, lo (L,) and hi (L,) the (1±level)/2 percentiles.
        """
        g = _as_layers(gen_layers, "gen")
        self._check_layer_count(g, "gen")
        m = _layer_array(g[0], "gen", " (layer 0)", 1).shape[0]
        rng = np.random.default_rng(seed)
        if self.variant == "ct_modified":
            ct, boot = self._bootstrap_modified(g, m, n_boot, rng)
        else:
            per_layer = [self._gen_layer(g[l], l) for l in range(self.n_layers)]
            for l, (cells, _) in enumerate(per_layer):
                if len(cells) != m:
                    raise InputError(f"gen (layer {l}): {len(cells)} points but layer 0 has "
                                     f"{m}; every layer must hold the same images")
            ct = np.array([self._ct_from(c, w, l) for l, (c, w) in enumerate(per_layer)])
            boot = np.empty((n_boot, self.n_layers))
            block = max(1, BOOT_BLOCK // m)
            for b0 in range(0, n_boot, block):
                idx = rng.integers(0, m, size=(min(block, n_boot - b0), m))
                for l, (cells, contrib) in enumerate(per_layer):
                    boot[b0:b0 + len(idx), l] = self._boot_layer(cells, contrib, idx, l)
        alpha = (1.0 - level) / 2.0
        lo, hi = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
        return ct, lo, hi

    # -- internals

    def _check_layer_count(self, g, name):
        if len(g) != self.n_layers:
            raise InputError(f"{name}: {len(g)} layers, the reference has {self.n_layers}")

    def _gen_search(self, gen, l, name="gen"):
        """Distances L(q) (m,) float32 and cells (m,) int64 of one generated set on layer l."""
        return self._gen_search_many([gen], l, [name])[0]

    def _gen_search_many(self, gens, l, names):
        """:meth:`_gen_search` of several sets, searched together (one query block per cell)."""
        ref, where = self.layers[l], f" (layer {l})"
        zs = [ref.proj(_layer_array(g, nm, where, 1), nm, where) for g, nm in zip(gens, names)]
        z = np.concatenate(zs)
        cells = ref.kmeans.predict(z)
        dist = np.full(len(z), np.nan, np.float32)
        for c in np.unique(cells):
            if ref.index[c] is not None:
                dist[cells == c] = ref.index[c].distances(z[cells == c])
        bounds = np.cumsum([0] + [len(x) for x in zs])
        return [(dist[a:b], cells[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def _gen_layer(self, gen, l, name="gen"):
        """Cells (m,) and U contributions (m,): #{p in cell: L(p) < L(q)} + ½ #{L(p) = L(q)}."""
        return self._gen_layers([gen], l, [name])[0]

    def _gen_layers(self, gens, l, names):
        """:meth:`_gen_layer` of several sets of layer l: a list of (cells, contributions)."""
        out = []
        for dist, cells in self._gen_search_many(gens, l, names):
            contrib = np.full(len(dist), np.nan)
            for c in np.unique(cells):
                lp = self.layers[l].test_sorted[c]
                if lp is not None:
                    lq = dist[cells == c].astype(np.float64)
                    contrib[cells == c] = 0.5 * (np.searchsorted(lp, lq, "left")
                                                 + np.searchsorted(lp, lq, "right"))
            out.append((cells, contrib))
        return out

    def _ct_from(self, cells, contrib, l, name="gen"):
        ref = self.layers[l]
        k = self.n_cells
        m_gen = np.bincount(cells, minlength=k)
        tau = _tau(self.tau, len(cells))
        n_train = np.array([0 if ix is None else len(ix) for ix in ref.index])
        names = ("test", name, "test" if self.variant == "ct_test" else "train")
        _check_cells(_kept(m_gen, len(cells), tau), ref.n_test, n_train, m_gen, tau, names,
                     f" (layer {l})")
        u = np.bincount(cells, weights=np.nan_to_num(contrib), minlength=k)
        return float(_combine(u, m_gen, ref.n_test, len(cells), tau))

    def _boot_layer(self, cells, contrib, idx, l):
        """C_T of each replicate (rows of idx, (B, m)) from per-point cells/contributions."""
        k, (b, m) = self.n_cells, idx.shape
        key = (np.arange(b)[:, None] * k + cells[idx]).ravel()
        m_gen = np.bincount(key, minlength=b * k).reshape(b, k)
        u = np.bincount(key, weights=np.nan_to_num(contrib)[idx].ravel(),
                        minlength=b * k).reshape(b, k)
        n_train = np.array([0 if ix is None else len(ix) for ix in self.layers[l].index])
        ct = _combine(u, m_gen, self.layers[l].n_test, m, _tau(self.tau, m))
        no_train = (_kept(m_gen, m, _tau(self.tau, m)) & (n_train == 0)).any(axis=1)
        return np.where(no_train, np.nan, ct)

    def _modified(self, train, test, gen, l, name="gen", rows=None):
        """ct_modified of one layer: gen (rows ``rows`` of it, if given) plays T."""
        where = f" (layer {l})"
        t, p, q, names = _roles("ct_modified", train, test, gen, self.n_cells, self.seed, where)
        names = (names[0], names[1], name)
        if rows is not None:
            t = np.asarray(t)[rows]
        return _ct_generic(t, p, q, names, n_cells=self.n_cells, pca_dim=self.pca_dim,
                           tau=self.tau, seed=self.seed, where=where)

    def _bootstrap_modified(self, g, m, n_boot, rng):
        """(ct (L,), replicates (n_boot, L)), refitting PCA and cells for every replicate."""
        idx = rng.integers(0, m, size=(n_boot, m))
        ct = np.empty(self.n_layers)
        boot = np.empty((n_boot, self.n_layers))
        for l in range(self.n_layers):
            train, test = self.sources[0][l], self.sources[1][l]
            gen = _layer_array(g[l], "gen", f" (layer {l})", 1)
            if len(gen) != m:
                raise InputError(f"gen (layer {l}): {len(gen)} points but layer 0 has {m}; "
                                 f"every layer must hold the same images")
            ct[l] = self._modified(train, test, gen, l)
            for b in range(n_boot):
                try:
                    boot[b, l] = self._modified(train, test, gen, l, rows=idx[b])
                except InputError:      # e.g. a resample leaves a cell without points
                    boot[b, l] = np.nan
        return ct, boot


def fit_reference(train_layers: Any, test_layers: Any, *, variant: str = "ct",
                  n_cells: int = 3, pca_dim: int | None = 64, tau: float | None = None,
                  seed: int = 0, progress: bool = False) -> Reference:
    """Fit per-layer PCA and cells on the training layers and the test distances, once.

    Args:
        train_layers: L layers of (l, D_layer) training features (ignored by ``ct_test``;
            may be None there).
        test_layers: L layers of (n, D_layer) held-out features.
        variant, n_cells, pca_dim, tau, seed: as :func:`ct_score`.
        progress: show a progress bar over layers.

    Returns:
        A :class:`Reference`; ``ref.curve(gen_layers)`` equals :func:`ct_score` per layer.
    """
    _check_params(variant, n_cells, pca_dim)
    test = _as_layers(test_layers, "test")
    train = _as_layers(train_layers, "train") if variant != "ct_test" else None
    if train is not None and len(train) != len(test):
        raise InputError(f"test: {len(test)} layers but train has {len(train)}")
    ref = Reference(variant, n_cells, pca_dim, tau, seed, len(test))
    if variant == "ct_modified":
        ref.sources = (train, test)
        return ref
    for l in tqdm(range(len(test)), desc="C_T reference", disable=not progress):
        where = f" (layer {l})"
        if variant == "ct_test":
            both = _layer_array(test[l], "test", where, 2 * n_cells)
            t_half, p_half = _split_test(len(both), seed)
            t, p, names = both[t_half], both[p_half], ("test", "gen", "test")
        else:
            t = _layer_array(train[l], "train", where, n_cells)
            p = _layer_array(test[l], "test", where, n_cells)
            names = ("test", "gen", "train")
            if p.shape[1] != t.shape[1]:
                raise InputError(f"test{where}: feature dimension {p.shape[1]} does not match "
                                 f"train's {t.shape[1]}")
        ref.layers.append(_fit_layer(t, p, n_cells, pca_dim, seed, names, where))
    return ref


def _fit_layer(t, p, n_cells, pca_dim, seed, names, where):
    n_name, _, t_name = names
    proj = _Projection.fit(t, pca_dim, t_name, where)
    tz = proj(t, t_name, where)
    km = _fit_cells(tz, n_cells, seed)
    tc = km.predict(tz)
    pz = proj(p, n_name, where)
    pc = km.predict(pz)
    index, test_sorted = [], []
    for c in range(n_cells):
        ix = NNIndex(tz[tc == c], name=t_name) if (tc == c).any() else None
        index.append(ix)
        if ix is None or not (pc == c).any():
            test_sorted.append(None)
        else:
            test_sorted.append(np.sort(ix.distances(pz[pc == c]).astype(np.float64)))
    return _LayerRef(proj, km, index, test_sorted, np.bincount(pc, minlength=n_cells))


def ct_curve(train_layers: Any, test_layers: Any, gen_layers: Any, **kwargs) -> np.ndarray:
    """(L,) C_T per layer: ``fit_reference(train_layers, test_layers, **kwargs).curve(gen)``."""
    return fit_reference(train_layers, test_layers, **kwargs).curve(gen_layers)


# ----------------------------------------------------------------------------- input checks

def _check_params(variant, n_cells, pca_dim):
    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise ParameterError(f"n_cells must be a positive integer, got {n_cells!r}")
    if pca_dim is not None and (not isinstance(pca_dim, (int, np.integer)) or pca_dim < 1):
        raise ParameterError(f"pca_dim must be a positive integer or None, got {pca_dim!r}")


def _as_layers(x, name):
    """Per-layer features: an (L, N, D) array, a sequence, or a LayerFeatures-like object."""
    if x is None:
        raise InputError(f"{name}: no features given")
    if isinstance(x, np.ndarray):
        if x.ndim != 3:
            raise InputError(f"{name}: per-layer features must be (L, N, D), got shape "
                             f"{x.shape}; wrap a single layer as [features]")
        return x
    if not (hasattr(x, "__len__") and hasattr(x, "__getitem__")):
        raise InputError(f"{name}: expected per-layer features (a sequence of (N, D) arrays, "
                         f"an (L, N, D) array or LayerFeatures), got {type(x).__name__}")
    if len(x) == 0:
        raise InputError(f"{name}: no layers")
    return x


def _layer_array(x, name, where, min_rows):
    """An (N, D) numeric array-like (kept lazy, e.g. a memmap) with at least min_rows rows."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        x = np.asarray(x)
    if len(x.shape) != 2:
        raise InputError(f"{name}{where}: expected (N, D) features, got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{name}{where}: expected real numeric features, got dtype {x.dtype}")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise InputError(f"{name}{where}: {x.shape[0]} points of dimension {x.shape[1]}; "
                         f"need at least {max(min_rows, 1)} points")
    return x


def _chunks(x, name, where, check=True):
    """(first row, float32 row chunk) pairs of x (N, D); with ``check``, each chunk is checked
    for NaN/inf (callers that check a reduction of the chunk instead pass ``check=False``)."""
    for s in range(0, x.shape[0], CHUNK_ROWS):
        chunk = np.asarray(x[s:s + CHUNK_ROWS], dtype=np.float32)
        if check:
            _check_finite(chunk, s, name, where)
        yield s, chunk


def _check_finite(chunk, start, name, where):
    bad = ~np.isfinite(chunk)
    if bad.any():
        row = start + int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(f"{name}{where}: features contain NaN or inf (row {row}); "
                         f"fix or drop those images")


def _full(x, name, where):
    x = _layer_array(x, name, where, 1)
    return np.concatenate([chunk for _, chunk in _chunks(x, name, where)])


def _labels(c, n, name, where):
    c = np.asarray(c)
    if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
        raise InputError(f"{name}{where}: cell labels must be {n} integers (one per point), "
                         f"got {c.dtype} array of shape {c.shape}")
    if n and c.min() < 0:
        raise InputError(f"{name}{where}: cell labels must be non-negative")
    return c.astype(np.int64)
