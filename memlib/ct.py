"""The data-copying score C_T of Meehan et al. (2020), per set and per encoder layer.

Sets and roles. T = training set (l points), P_n = held-out test set (n), Q_m = generated set
(m). Each set is an (N, D) feature array; per-layer inputs (``*_layers``) are a sequence of
(N, D) arrays, an (L, N, D) array, or any object with ``__len__`` and ``__getitem__(layer)``
returning an (N, D) array (e.g. :class:`memlib.features.LayerFeatures`). Layers are read one at
a time and all arithmetic is float32 (float16 input is cast per chunk of rows).

The statistic (``docs/design.md``, section "The C_T score"; same logic as
``casey-meehan/data-copying`` and dgm-eval):

1. PCA to ``pca_dim`` dimensions fit on T (skipped when D ≤ pca_dim); project all sets.
   A T of l ≤ pca_dim points: see :data:`SMALL_T_RULES` (``docs/design.md``, "Small T").
   The PCA is exact (eigendecomposition of the float64 covariance, streamed over row chunks;
   the same solution as sklearn's ``covariance_eigh`` solver, signs fixed so that each
   component's largest-magnitude entry is positive) and has no randomness.
2. k-means with ``n_cells`` cells, ``sklearn.cluster.KMeans(n_init=10,
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

The effect size (``statistic="effect"`` of :meth:`Reference.subset_curves`; bootstrap draws
of it: :mod:`memlib.bootstrap`): the same cells, weights and τ, but per kept cell the
rank-biserial effect E(π) = 2 U(π) / (n_π m_π) − 1 instead of Z_U. It lies in [−1, 1] whatever
the sizes: −1 when every generated point is nearer to T than every test point of its cell (the
floor of exact copies), 0 in expectation under H0, +1 at the opposite extreme. Z_U divided by
its floor is (U − n_π m_π/2 + 0.5) / (n_π m_π/2 − 0.5) ≈ E(π), so E is C_T put on a scale that
is the same for every layer, set size and cell split (``docs/design.md``).

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

Defaults. ``n_cells=3``, ``pca_dim=64`` and ``seed=0`` are plain arguments
(:data:`memlib.ct_inputs.DEFAULT_N_CELLS` …), equal to ``params/default.yaml``'s values (a test
keeps them so), so ``ct_score(train, test, gen)`` is the default profile's C_T; no kernel reads
a profile. Pass a profile's values explicitly to use another one.

Layout. This module holds the public functions and the :class:`Reference` engine, whose full
curves, bootstrap replicates and subset curves all go through one combine path
(:func:`_ct_of_draws`: per-point cells and U contributions → per-cell counts and U sums →
Z_U → weights → C_T). :func:`ct_statistic` is the plain reference implementation (ranks
per cell) that the tests compare the engine against. PCA and k-means live in
:mod:`memlib.ct_space`, input checks in :mod:`memlib.ct_inputs`.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np
from scipy.stats import rankdata
from tqdm.auto import tqdm

from .ct_inputs import (DEFAULT_N_CELLS, DEFAULT_PCA_DIM, DEFAULT_SEED, VARIANTS, as_layers, cell_labels, check_params,
                        check_same_images, full_array, in_layer, index_array, layer_array,
                        same_dim)
from .ct_space import Projection, fit_cells, fit_layer, project_t
from .errors import InputError, ParameterError
from .knn import NNIndex

__all__ = ["VARIANTS", "DEFAULT_N_CELLS", "DEFAULT_PCA_DIM", "DEFAULT_SEED", "ct_statistic", "ct_score", "ct_curve", "fit_reference",
           "Reference", "LayerDistances"]

STATISTICS = ("ct", "effect")  # what a cell contributes: Z_U, or the effect 2U/(n_π m_π) − 1
BOOT_BLOCK = 1 << 22         # resampled indices held at once by the bootstrap

# Meehan et al.'s default cell threshold tau = MIN_CELL_POINTS / m: a cell is kept only with more
# than this many generated points, so a set of <= MIN_CELL_POINTS points has no C_T at all.
MIN_CELL_POINTS = 20

# The small-T rule (docs/design.md, "Small T"): T with l <= pca_dim points spans at most l - 1
# directions, so a PCA to pca_dim would add pca_dim - l + 1 arbitrary directions of T's null
# space. "cap": the PCA keeps min(pca_dim, l - 1) components (every direction T varies in; the
# fitted dimension is recorded, Reference.pca_fitted). "v2": the PCA to pca_dim regardless, as
# the Study v2 figures were made; kept as the default only until the next cold run of the
# figures passes "cap" (issue 30).
SMALL_T_RULES = ("v2", "cap")


# ----------------------------------------------------------------------------- public API

def ct_statistic(test: np.ndarray, test_cells: np.ndarray, gen: np.ndarray,
                 gen_cells: np.ndarray, train: np.ndarray, train_cells: np.ndarray,
                 tau: float | None = None) -> float:
    """C_T for given features and cell labels (steps 3-5 above; no PCA, no clustering).

    The plain reference implementation: U per cell from average ranks of the pooled
    distances (``scipy.stats.rankdata``).

    Args:
        test: (n, D) held-out features P_n.  test_cells: (n,) non-negative int cell labels.
        gen: (m, D) generated features Q_m.  gen_cells: (m,) cell labels.
        train: (l, D) training features T.   train_cells: (l,) cell labels.
        tau: keep cells whose share of generated points m_π/m is > tau; None means 20/m.

    Returns:
        C_T (dimensionless, a weighted mean of z-scores).
    """
    return _ct_statistic(test, test_cells, gen, gen_cells, train, train_cells, tau)


def ct_score(train: np.ndarray, test: np.ndarray, gen: np.ndarray, *, variant: str = "ct",
             n_cells: int = DEFAULT_N_CELLS, pca_dim: int | None = DEFAULT_PCA_DIM,
             tau: float | None = None, seed: int = DEFAULT_SEED) -> float:
    """C_T of one generated set on one feature space (module docstring, steps 1-5).

    Args:
        train: (l, D) training features; test: (n, D) held-out features; gen: (m, D)
            generated features. Any float dtype (float16 is cast to float32).
        variant: ``"ct"``, ``"ct_modified"`` or ``"ct_test"`` (module docstring).
        n_cells: k-means cells (default 3, as params/default.yaml).
        pca_dim: PCA dimension, None for no PCA (default 64, as params/default.yaml).
        tau: cell threshold as a fraction of the points in the generated role; None = 20/m.
        seed: KMeans ``random_state`` (and the ``ct_test`` split).

    Returns:
        C_T (float). Fits PCA and cells anew; for many sets or layers use :func:`fit_reference`.
    """
    check_params(variant, n_cells, pca_dim)
    roles = _roles(variant, train, test, gen, n_cells, seed)
    return _ct_generic(*roles, n_cells=n_cells, pca_dim=pca_dim, tau=tau, seed=seed)


def ct_curve(train_layers: Any, test_layers: Any, gen_layers: Any, **kwargs) -> np.ndarray:
    """(L,) C_T per layer: ``fit_reference(train_layers, test_layers, **kwargs).curve(gen)``."""
    return fit_reference(train_layers, test_layers, **kwargs).curve(gen_layers)


def fit_reference(train_layers: Any, test_layers: Any, *, variant: str = "ct",
                  n_cells: int = DEFAULT_N_CELLS, pca_dim: int | None = DEFAULT_PCA_DIM,
                  tau: float | None = None, seed: int = DEFAULT_SEED,
                  progress: bool = False, small_t: str = "v2",
                  t_space: Sequence[tuple] | None = None) -> Reference:
    """Fit per-layer PCA and cells on the training layers and the test distances, once.

    Args:
        train_layers: L layers of (l, D_layer) training features (ignored by ``ct_test``;
            may be None there).
        test_layers: L layers of (n, D_layer) held-out features.
        variant, n_cells, pca_dim, tau, seed: as :func:`ct_score` (the same defaults).
        progress: show a progress bar over layers.
        small_t: the rule where the set playing T has no more points than ``pca_dim``
            (:data:`SMALL_T_RULES`): ``"cap"`` fits min(pca_dim, l − 1) components,
            ``"v2"`` (default until the next cold run) pca_dim components as before.
        t_space: :func:`fit_t_space` of the same ``train_layers``, ``pca_dim`` and ``small_t``
            (variant ``ct``): references of one T that differ in P_n or seed (e.g.
            :func:`memlib.hierarchical.reference_draws`) then fit each layer's PCA once; the
            result is the same as without.

    Returns:
        A :class:`Reference`; ``ref.curve(gen_layers)`` equals :func:`ct_score` per layer
        (with ``small_t="v2"``, or where T has more than ``pca_dim`` points).
    """
    check_params(variant, n_cells, pca_dim)
    if small_t not in SMALL_T_RULES:
        raise ParameterError(f"small_t must be one of {SMALL_T_RULES}, got {small_t!r}")
    test = as_layers(test_layers, "test")
    train = as_layers(train_layers, "train") if variant != "ct_test" else None
    if train is not None and len(train) != len(test):
        raise InputError(f"test: {len(test)} layers but train has {len(train)}")
    ref = Reference(variant, n_cells, pca_dim, tau, seed, len(test), small_t=small_t)
    if variant == "ct_modified":
        ref.sources = (train, test)
        return ref
    for l in tqdm(range(len(test)), desc="C_T reference", disable=not progress):
        with in_layer(l):
            if variant == "ct_test":
                both = layer_array(test[l], "test", 2 * n_cells)
                t_half, p_half = _split_test(len(both), seed)
                t, p, names = both[t_half], both[p_half], ("test", "gen", "test")
            else:
                t = layer_array(train[l], "train", n_cells)
                p = layer_array(test[l], "test", n_cells)
                names = ("test", "gen", "train")
                same_dim(p, "test", t, "train")
            shared = None
            if t_space is not None and variant == "ct":
                shared = t_space[l]
                if shared[1].shape[0] != len(t):
                    raise InputError(f"t_space: fit on {shared[1].shape[0]} points, "
                                     f"train has {len(t)}")
            ref.layers.append(fit_layer(t, p, n_cells, _small_t_pca(pca_dim, len(t), small_t),
                                        seed, names, shared))
    return ref


def fit_t_space(train_layers: Any, *, n_cells: int = DEFAULT_N_CELLS, pca_dim: int | None = DEFAULT_PCA_DIM,
                small_t: str = "v2") -> list[tuple]:
    """Per layer (PCA :class:`memlib.ct_space.Projection`, T projected (l, d) float32): what
    :func:`fit_reference` fits on T alone, for several references of one T (``t_space=``)."""
    check_params("ct", n_cells, pca_dim)
    train = as_layers(train_layers, "train")
    out = []
    for l in range(len(train)):
        with in_layer(l):
            t = layer_array(train[l], "train", n_cells)
            out.append(project_t(t, _small_t_pca(pca_dim, len(t), small_t), "train"))
    return out


class LayerDistances(NamedTuple):
    """One generated set's per-layer nearest-training distances and cells
    (:meth:`Reference.layer_distances`); unpacks as ``dist, cells = ...``."""

    dist: np.ndarray    # (L, m) float32 L(q), after PCA; NaN in a cell without training points
    cells: np.ndarray   # (L, m) int64 cell of each point


@dataclass
class Reference:
    """Per-layer PCA, cells, training points per cell and test distances, fit once.

    Build with :func:`fit_reference`; then :meth:`curve`, :meth:`curves`,
    :meth:`curve_bootstrap` and :meth:`subset_curves` score any number of generated sets, each
    costing one projection, one ``predict`` and one exact 1-NN search of the generated points
    per layer. A generated point's cell, its L(q) and its U contribution (the number of the
    cell's test points p with L(p) < L(q), ties ½) do not depend on the other generated points,
    so bootstrap replicates and subsets only re-count them.

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
    layers: list = field(default_factory=list)            # ct_space.LayerRef per layer (ct, ct_test)
    sources: tuple = ()                                   # (train, test) for ct_modified
    small_t: str = "v2"                                   # the small-T rule (SMALL_T_RULES)

    @property
    def pca_fitted(self) -> list:
        """Per layer, the PCA dimension fitted (None: no PCA, D ≤ the dimension asked for):
        ``pca_dim``, or l − 1 where ``small_t="cap"`` capped it for a T of l points. Empty for
        ``ct_modified`` (refit per set)."""
        return [None if lr.proj.components is None else lr.proj.dim_out for lr in self.layers]

    def curve(self, gen_layers: Any) -> np.ndarray:
        """(L,) C_T per layer for one generated set (``gen_layers``: L layers of (m, D))."""
        return self.curves([gen_layers])[0]

    def curves(self, gen_sets: Sequence[Any], *, progress: bool = False) -> np.ndarray:
        """(S, L) C_T for S generated sets; each row equals :meth:`curve` of that set alone."""
        names = [f"gen[{s}]" if len(gen_sets) > 1 else "gen" for s in range(len(gen_sets))]
        gens = [as_layers(g, nm) for g, nm in zip(gen_sets, names)]
        for g, nm in zip(gens, names):
            self._check_layer_count(g, nm)
        out = np.empty((len(gens), self.n_layers))
        for l in tqdm(range(self.n_layers), desc="C_T layers", disable=not progress):
            with in_layer(l):
                if self.variant == "ct_modified":
                    train, test = self.sources[0][l], self.sources[1][l]   # read once per layer
                    out[:, l] = [self._modified(train, test, g[l], nm)
                                 for g, nm in zip(gens, names)]
                    continue
                # all sets of this layer in one search per cell: one large GEMM, not S small
                found = self._search(l, [g[l] for g in gens], names)
                for s, ((dist, cells), nm) in enumerate(zip(found, names)):
                    out[s, l] = self._full_ct(l, cells, self._contributions(l, dist, cells), nm)
        return out

    def layer_distances(self, gen_layers: Any) -> LayerDistances:
        """Per-layer L(q) and cells of one generated set (``ct``/``ct_test`` only).

        Returns:
            :class:`LayerDistances`: dist (L, m) float32 (feature units, after PCA) and cells
            (L, m) int64; pass it to :meth:`subset_curves` to score many subsets.
        """
        self._check_not_modified("layer_distances")
        g = as_layers(gen_layers, "gen")
        self._check_layer_count(g, "gen")
        dist, cells = [], []
        for l in range(self.n_layers):
            with in_layer(l):
                d, c = self._search(l, [g[l]], ["gen"])[0]
            dist.append(d)
            cells.append(c)
        return LayerDistances(np.stack(dist), np.stack(cells))

    def subset_curves(self, gen: Any, subsets: Sequence[np.ndarray], *,
                      statistic: str = "ct") -> np.ndarray:
        """(S, L) C_T (or effect-size) curves of index subsets of one generated set, with no
        new search.

        Each subset's C_T re-counts the per-point cells and U contributions (O(subset size)
        per layer); τ (None: 20 / subset size) applies to each subset's own size. The
        ``ct``/``ct_test`` variants only.

        Args:
            gen: the set's L layers of (m, D) features, or its :class:`LayerDistances` from
                :meth:`layer_distances` (search once, then score many subset sizes).
            subsets: S non-empty 1-D index arrays into the m points (e.g.
                :func:`memlib.fingerprint.subsample_indices`); ``[np.arange(m)]`` gives
                :meth:`curve`. Indices may repeat (a bootstrap replicate is a subset drawn
                with replacement; an (S, s) array is S such draws).
            statistic: ``"ct"`` (Z_U per cell) or ``"effect"`` (2U/(n_π m_π) − 1 per cell,
                see the module docstring); both use the same cells, τ and weights.

        Returns:
            (S, L) float64; NaN where a subset keeps no cell on a layer. A kept cell without
            test or training points raises InputError, as in :meth:`curve`.
        """
        self._check_not_modified("subset_curves")
        if statistic not in STATISTICS:
            raise ParameterError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
        dist, cells = gen if isinstance(gen, LayerDistances) else self.layer_distances(gen)
        self._check_distances(dist, cells)
        draws = [index_array(idx, dist.shape[1], s) for s, idx in enumerate(subsets)]
        out = np.empty((len(draws), self.n_layers))
        for l in range(self.n_layers):
            with in_layer(l):
                got = self._draws(l, cells[l], self._contributions(l, dist[l], cells[l]), draws)
                for s in np.flatnonzero(np.isnan(got.ct) & got.kept.any(axis=1)):
                    self._explain_nan(l, got, s, f"gen subset {s}")
                out[:, l] = got.ct if statistic == "ct" else got.effect
        return out

    def curve_bootstrap(self, gen_layers: Any, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """C_T curve with percentile confidence intervals from resampling the generated set.

        Each replicate draws m generated points with replacement (the same draw for every
        layer). For ``ct``/``ct_test`` replicates re-count the per-point cells and U
        contributions (see the class docstring). Replicates in which a kept cell lacks test
        or training points, or no cell is kept, are NaN and ignored.

        Returns:
            ct (L,) the point estimate, lo (L,) and hi (L,) the (1±level)/2 percentiles.
        """
        g = as_layers(gen_layers, "gen")
        self._check_layer_count(g, "gen")
        with in_layer(0):
            m = layer_array(g[0], "gen", 1).shape[0]
        rng = np.random.default_rng(seed)
        if self.variant == "ct_modified":
            ct, boot = self._bootstrap_modified(g, m, n_boot, rng)
        else:
            ct = np.empty(self.n_layers)
            per_layer = []
            for l in range(self.n_layers):
                with in_layer(l):
                    dist, cells = self._search(l, [g[l]], ["gen"])[0]
                    check_same_images(len(cells), m)
                    contrib = self._contributions(l, dist, cells)
                    ct[l] = self._full_ct(l, cells, contrib, "gen")
                per_layer.append((cells, contrib))
            boot = np.empty((n_boot, self.n_layers))
            block = max(1, BOOT_BLOCK // m)
            for b0 in range(0, n_boot, block):
                idx = rng.integers(0, m, size=(min(block, n_boot - b0), m))
                for l, (cells, contrib) in enumerate(per_layer):
                    boot[b0:b0 + len(idx), l] = self._draws(l, cells, contrib, idx).ct
        alpha = (1.0 - level) / 2.0
        with warnings.catch_warnings():   # a layer undefined in every replicate: NaN, said in the tables
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            lo, hi = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
        return ct, lo, hi

    # -- internals (ct, ct_test): search, per-point contributions, the one combine path

    def _search(self, l, gens, names):
        """Per set of layer l: L(q) (m,) float32 (NaN in a cell without training points) and
        cells (m,) int64; all sets searched together (one query block per cell)."""
        ref = self.layers[l]
        zs = [ref.proj(layer_array(g, nm, 1), nm) for g, nm in zip(gens, names)]
        z = np.concatenate(zs)
        cells = ref.kmeans.predict(z)
        dist = np.full(len(z), np.nan, np.float32)
        for c in np.unique(cells):
            if ref.index[c] is not None:
                dist[cells == c] = ref.index[c].distances(z[cells == c])
        bounds = np.cumsum([0] + [len(x) for x in zs])
        return [(dist[a:b], cells[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def _contributions(self, l, dist, cells):
        """U contribution of each point (m,) float64: #{p in its cell: L(p) < L(q)} + ½
        #{L(p) = L(q)}; NaN where its cell has no test or no training points."""
        contrib = np.full(len(dist), np.nan)
        for c in np.unique(cells):
            lp = self.layers[l].test_sorted[c]
            if lp is not None:
                lq = dist[cells == c].astype(np.float64)
                contrib[cells == c] = 0.5 * (np.searchsorted(lp, lq, "left")
                                             + np.searchsorted(lp, lq, "right"))
        return contrib

    def _draws(self, l, cells, contrib, draws):
        """:func:`_ct_of_draws` with layer l's test and training counts per cell."""
        ref = self.layers[l]
        return _ct_of_draws(cells, contrib, draws, ref.n_test, ref.n_train, self.tau)

    def _full_ct(self, l, cells, contrib, name):
        """C_T of the whole set; raises where it is undefined (as :func:`ct_score`)."""
        got = self._draws(l, cells, contrib, [np.arange(len(cells))])
        if np.isnan(got.ct[0]):
            self._explain_nan(l, got, 0, name)
        return float(got.ct[0])

    def _explain_nan(self, l, got, row, name):
        """Raise the InputError that explains draw ``row``'s NaN C_T."""
        ref = self.layers[l]
        names = ("test", name, "test" if self.variant == "ct_test" else "train")
        _check_cells(got.kept[row], ref.n_test, ref.n_train, got.m_gen[row],
                     float(got.tau[row, 0]), names)
        raise AssertionError("a NaN C_T that _check_cells does not explain")  # pragma: no cover

    def _check_layer_count(self, g, name):
        if len(g) != self.n_layers:
            raise InputError(f"{name}: {len(g)} layers, the reference has {self.n_layers}")

    def _check_not_modified(self, method):
        if self.variant == "ct_modified":
            raise ParameterError(f"{method} is defined for variants 'ct' and 'ct_test'")

    def _check_distances(self, dist, cells):
        if not (dist.ndim == 2 and cells.shape == dist.shape and len(dist) == self.n_layers
                and np.issubdtype(cells.dtype, np.integer)):
            raise InputError(f"gen: expected LayerDistances of ({self.n_layers}, m) distances "
                             f"and integer cells, got {dist.shape} and {cells.dtype} "
                             f"{cells.shape}")
        if cells.size and (cells.min() < 0 or cells.max() >= self.n_cells):
            raise InputError(f"gen: cells must lie in [0, {self.n_cells})")

    # -- internals (ct_modified): the generated set plays T, everything is refit

    def _modified(self, train, test, gen, name="gen", rows=None):
        """ct_modified of one layer: gen (rows ``rows`` of it, if given) plays T."""
        t, p, q, names = _roles("ct_modified", train, test, gen, self.n_cells, self.seed)
        names = (names[0], names[1], name)
        if rows is not None:
            t = np.asarray(t)[rows]
        return _ct_generic(t, p, q, names, n_cells=self.n_cells,
                           pca_dim=_small_t_pca(self.pca_dim, len(t), self.small_t),
                           tau=self.tau, seed=self.seed)

    def _bootstrap_modified(self, g, m, n_boot, rng):
        """(ct (L,), replicates (n_boot, L)), refitting PCA and cells for every replicate."""
        idx = rng.integers(0, m, size=(n_boot, m))
        ct = np.empty(self.n_layers)
        boot = np.empty((n_boot, self.n_layers))
        for l in range(self.n_layers):
            with in_layer(l):
                train, test = self.sources[0][l], self.sources[1][l]
                gen = layer_array(g[l], "gen", 1)
                check_same_images(len(gen), m)
                ct[l] = self._modified(train, test, gen)
            for b in range(n_boot):
                try:
                    boot[b, l] = self._modified(train, test, gen, rows=idx[b])
                except InputError:      # e.g. a resample leaves a cell without points
                    boot[b, l] = np.nan
        return ct, boot


# ----------------------------------------------------------------------------- the combine path

class _Draws(NamedTuple):
    ct: np.ndarray       # (B,) C_T per draw; NaN where undefined
    effect: np.ndarray   # (B,) the effect size per draw (same cells and weights); NaN as ct
    m_gen: np.ndarray    # (B, k) generated points per cell
    kept: np.ndarray     # (B, k) cells above tau
    tau: np.ndarray      # (B, 1) the threshold each draw used


def _ct_of_draws(cells, contrib, draws, n_test, n_train, tau):
    """C_T of draws of one set's points from per-point numbers: the engine's one combine path.

    Args:
        cells: (m,) int64 cell of each point. contrib: (m,) float64 U contribution of each
            point (NaN in a cell without test or training points).
        draws: a (B, s) index array (bootstrap replicates) or a list of B 1-D index arrays
            (subsets; the whole set is ``[np.arange(m)]``); repeats count repeatedly.
        n_test, n_train: (k,) test and training points per cell. tau: as :func:`ct_score`,
            None meaning 20 / (size of the draw).

    Returns:
        :class:`_Draws`. C_T is NaN for a draw with no kept cell or with a kept cell that
        lacks test or training points (:func:`_check_cells` says which).
    """
    k = len(n_test)
    if isinstance(draws, np.ndarray):
        sizes, flat = np.full(len(draws), draws.shape[1]), draws.ravel()
    else:
        sizes, flat = np.array([len(d) for d in draws]), np.concatenate(draws)
    key = np.repeat(np.arange(len(sizes)) * k, sizes) + cells[flat]
    m_gen = np.bincount(key, minlength=len(sizes) * k).reshape(-1, k)
    u = np.bincount(key, weights=np.nan_to_num(contrib)[flat],
                    minlength=len(sizes) * k).reshape(-1, k)
    m = sizes[:, None]
    tau = np.broadcast_to(_tau(tau, m), m.shape)
    kept = _kept(m_gen, m, tau)
    no_train = (kept & (n_train == 0)).any(axis=1)
    ct = np.where(no_train, np.nan, _combine(u, m_gen, n_test, m, tau))
    effect = np.where(no_train, np.nan, _combine(u, m_gen, n_test, m, tau, per_cell=_effect_u))
    return _Draws(ct=ct, effect=effect, m_gen=m_gen, kept=kept, tau=tau)


def _combine(u, m_gen, n_test, m, tau, per_cell=None):
    """C_T from per-cell U sums (..., k) and generated counts (..., k); test counts (k,); m and
    tau scalars or broadcastable (..., 1). Z_U per kept cell (or ``per_cell(u, n, m)``, e.g.
    :func:`_effect_u`), weights P_n(π), their mean.

    Rows with no kept cell, or a kept cell without test points, give NaN.
    """
    per_cell = per_cell or _z_u
    keep = _kept(m_gen, m, tau) & (n_test > 0)
    bad = (_kept(m_gen, m, tau) & (n_test == 0)).any(axis=-1) | ~keep.any(axis=-1)
    z = np.where(keep, per_cell(u, n_test, m_gen), 0.0)
    w = np.where(keep, n_test / n_test.sum(), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ct = (w * z).sum(axis=-1) / w.sum(axis=-1)
    return np.where(bad, np.nan, ct)


def _z_u(u, n, m):
    """Meehan's z-score of a Mann-Whitney U (continuity −0.5, no tie correction)."""
    n = np.asarray(n, np.float64)
    m = np.asarray(m, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (u - (n * m / 2.0 - 0.5)) / np.sqrt(n * m * (n + m + 1.0) / 12.0)


def _effect_u(u, n, m):
    """The rank-biserial effect 2U / (n m) − 1 of a Mann-Whitney U: −1 … +1, 0 under H0."""
    n = np.asarray(n, np.float64)
    m = np.asarray(m, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * u / (n * m) - 1.0


def _kept(m_gen, m, tau):
    """Cells whose generated share m_π/m is above tau (the same float comparison as Meehan)."""
    return np.asarray(m_gen) / m > tau


def _tau(tau, m):
    """tau as given (checked), or MIN_CELL_POINTS/m; m may be an array of draw sizes."""
    if tau is None:
        return MIN_CELL_POINTS / m
    tau = float(tau)
    if not 0.0 <= tau < 1.0:
        raise ParameterError(f"tau is a fraction of the generated points in [0, 1), got {tau}")
    return tau


def _check_cells(keep, n_test, n_train, m_gen, tau, names):
    """Raise where C_T is undefined: no kept cell, or a kept cell without test/train points."""
    n_name, m_name, t_name = names
    if not keep.any():
        raise InputError(f"{m_name}: no cell holds more than tau = {tau:.4g} of the "
                         f"{int(m_gen.sum())} generated points (needs > 20 points in a cell "
                         f"by default); use a larger set or fewer cells")
    for c in np.flatnonzero(keep):
        if n_test[c] == 0:
            raise InputError(f"{n_name}: cell {c} holds {m_gen[c]} generated points of "
                             f"{m_name} but no test points; use fewer cells (n_cells) or more "
                             f"test data")
        if n_train[c] == 0:
            raise InputError(f"{t_name}: cell {c} holds {m_gen[c]} generated points of "
                             f"{m_name} but no training points; use fewer cells (n_cells)")


# ----------------------------------------------------------------------------- the reference statistic

def _ct_statistic(test, test_cells, gen, gen_cells, train, train_cells, tau,
                  names=("test", "gen", "train")):
    """:func:`ct_statistic` with the user's set names for each role (for error messages)."""
    n_name, m_name, t_name = names
    p, q, t = full_array(test, n_name), full_array(gen, m_name), full_array(train, t_name)
    same_dim(q, m_name, p, n_name)
    same_dim(t, t_name, p, n_name)
    pc, qc, tc = (cell_labels(c, len(x), nm) for c, x, nm in
                  ((test_cells, p, n_name), (gen_cells, q, m_name), (train_cells, t, t_name)))
    k = 1 + max(int(c.max()) for c in (pc, qc, tc))
    n_test = np.bincount(pc, minlength=k)
    m_gen = np.bincount(qc, minlength=k)
    n_train = np.bincount(tc, minlength=k)
    tau = _tau(tau, len(q))
    keep = _kept(m_gen, len(q), tau)
    _check_cells(keep, n_test, n_train, m_gen, tau, names)
    u = np.zeros(k)
    for c in np.flatnonzero(keep):
        index = NNIndex(t[tc == c], name=t_name)
        lq = index.distances(q[qc == c]).astype(np.float64)
        lp = index.distances(p[pc == c]).astype(np.float64)
        ranks = rankdata(np.concatenate([lq, lp]))          # average ranks: ties count ½
        u[c] = ranks[:len(lq)].sum() - len(lq) * (len(lq) + 1) / 2.0
    return float(_combine(u, m_gen, n_test, len(q), tau))


# ----------------------------------------------------------------------------- fitting helpers

def _roles(variant, train, test, gen, n_cells, seed):
    """(T, P, Q, names) for a variant; names are the user's set names in role order P, Q, T."""
    test = layer_array(test, "test", n_cells if variant != "ct_test" else 2 * n_cells)
    gen = layer_array(gen, "gen", 1 if variant != "ct_modified" else n_cells)
    if variant == "ct_test":
        t_half, p_half = _split_test(len(test), seed)
        return test[t_half], test[p_half], gen, ("test", "gen", "test")
    train = layer_array(train, "train", n_cells if variant == "ct" else 1)
    if variant == "ct_modified":
        return gen, test, train, ("test", "train", "gen")
    return train, test, gen, ("test", "gen", "train")


def _small_t_pca(pca_dim, n_train, rule):
    """The PCA dimension to fit on a T of n_train points under the small-T rule
    (:data:`SMALL_T_RULES`): pca_dim, or n_train − 1 where ``rule="cap"`` and n_train ≤ pca_dim."""
    if rule == "cap" and pca_dim is not None and n_train <= pca_dim:
        return max(1, n_train - 1)
    return pca_dim


def _split_test(n, seed):
    """Seeded halves of range(n): (first ⌈n/2⌉ of a permutation, the rest), each sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    h = (n + 1) // 2
    return np.sort(perm[:h]), np.sort(perm[h:])


def _ct_generic(t, p, q, names, *, n_cells, pca_dim, tau, seed):
    """Fit projection and cells on role T, then the statistic (arrays may be memmaps)."""
    n_name, m_name, t_name = names
    same_dim(p, n_name, t, t_name)
    same_dim(q, m_name, t, t_name)
    proj = Projection.fit(t, pca_dim, t_name)
    tz, pz, qz = proj(t, t_name), proj(p, n_name), proj(q, m_name)
    km = fit_cells(tz, n_cells, seed)
    return _ct_statistic(pz, km.predict(pz), qz, km.predict(qz), tz, km.predict(tz), tau,
                         names=names)
