"""The space C_T is computed in, per layer: exact PCA (:class:`Projection`) and k-means cells
(:class:`Cells`), both fit on the set playing T (steps 1-2 of :mod:`memlib.ct`), and what a
:class:`memlib.ct.Reference` keeps per layer (:class:`LayerRef`, :func:`fit_layer`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sklearn.cluster import KMeans

from .ct_inputs import check_finite, chunks
from .errors import InputError
from .knn import NNIndex

_THREADPOOLS = None          # threadpoolctl.ThreadpoolController, made on first use


@dataclass
class Projection:
    """x ↦ (x − mean) @ components, or the identity (float32 copy) when ``components`` is None."""

    dim_in: int
    mean: np.ndarray | None = None        # (D,) float32
    components: np.ndarray | None = None  # (D, pca_dim) float32

    @classmethod
    def fit(cls, x, pca_dim, name):
        """Exact PCA of the rows of x (N, D), streamed in float32 chunks, float64 moments.

        The eigendecomposition of the float64 covariance gives the same solution as sklearn's
        ``covariance_eigh`` solver; each component's sign is fixed so that its
        largest-magnitude entry is positive. ``pca_dim`` None or ≥ D: the identity.
        """
        n, d = x.shape
        if pca_dim is None or d <= pca_dim:
            return cls(d)
        if n < 2:
            raise InputError(f"{name}: {n} point, need at least 2 to fit the PCA")
        shift = None
        s = np.zeros(d)
        cov = np.zeros((d, d))
        for start, chunk in chunks(x, name, check=False):
            if shift is None:   # centre on the first chunk's mean: little cancellation
                shift = chunk.mean(axis=0, dtype=np.float64).astype(np.float32)
            c = chunk - shift
            col = c.sum(axis=0, dtype=np.float64)
            if not np.isfinite(col).all():      # a NaN or inf anywhere makes its column's sum so
                check_finite(chunk, start, name)
            s += col
            cov += c.T @ c
        mu = s / n
        cov = (cov - n * np.outer(mu, mu)) / (n - 1)
        # all eigenpairs with LAPACK's divide-and-conquer driver ("evd"), which is faster here
        # than asking for the top pca_dim pairs only (docs/performance.md)
        _, vecs = scipy.linalg.eigh(cov, driver="evd")
        comps = vecs[:, ::-1][:, :pca_dim]
        signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(comps.shape[1])])
        comps = comps * np.where(signs == 0, 1.0, signs)
        return cls(d, (shift + mu).astype(np.float32), np.ascontiguousarray(comps, np.float32))

    @property
    def dim_out(self) -> int:
        return self.dim_in if self.components is None else self.components.shape[1]

    def __call__(self, x, name):
        """(N, D) → (N, dim_out) float32, reading x in chunks; ``name`` names x in errors."""
        if x.shape[1] != self.dim_in:
            raise InputError(f"{name}: feature dimension {x.shape[1]} does not match the "
                             f"reference's {self.dim_in}")
        out = np.empty((x.shape[0], self.dim_out), np.float32)
        for start, chunk in chunks(x, name, check=self.components is None):
            if self.components is not None:
                # a NaN or inf input entry reaches its output row through the product, so
                # checking the (N, pca_dim) output replaces a pass over the (N, D) input
                np.matmul(chunk - self.mean, self.components, out=out[start:start + len(chunk)])
                if not np.isfinite(out[start:start + len(chunk)]).all():
                    check_finite(chunk, start, name)
            else:
                out[start:start + len(chunk)] = chunk
        return out


class Cells(KMeans):
    """sklearn's KMeans, fit and queried in float64 whatever the input's dtype.

    float64 is what dgm-eval feeds it (its PCA returns float64), and it is also the faster
    path: on float32 input sklearn's k-means++ upcasts every distance block to float64 one at a
    time (docs/performance.md). ``predict`` returns int64 labels.
    """

    def fit(self, X, y=None, sample_weight=None):
        with _one_openmp_thread():
            return super().fit(np.asarray(X, np.float64), y, sample_weight)

    def predict(self, X):
        with _one_openmp_thread():
            return super().predict(np.asarray(X, np.float64)).astype(np.int64)


def project_t(t, pca_dim, name):
    """(:class:`Projection` fit on t (l, D), t projected (l, dim_out) float32): the part of a
    reference layer that depends on T and ``pca_dim`` only."""
    proj = Projection.fit(t, pca_dim, name)
    return proj, proj(t, name)


def fit_cells(z, n_cells, seed):
    """``KMeans(n_cells, n_init=10, random_state=seed)`` fit on z (N, d): a :class:`Cells`."""
    return Cells(n_clusters=n_cells, n_init=10, random_state=seed).fit(z)


@dataclass
class LayerRef:
    """What one layer of a reference keeps: projection, cells, train per cell, test stats."""

    proj: Projection
    kmeans: Cells
    index: list            # per cell: NNIndex over the cell's T points, or None if empty
    test_sorted: list      # per cell: sorted L(p) of the cell's P points (float64), or None
    n_test: np.ndarray     # (k,) test points per cell
    n_train: np.ndarray    # (k,) training points per cell


def fit_layer(t, p, n_cells, pca_dim, seed, names, t_space=None):
    """One layer of a reference: PCA and cells fit on t (l, D), test p (n, D) measured;
    names are the set names in role order (test, gen, train). ``t_space``: (projection, t
    projected) of :func:`project_t`, when references that share this t (other P_n, other
    k-means seeds) fit the PCA once."""
    n_name, _, t_name = names
    proj, tz = t_space if t_space is not None else project_t(t, pca_dim, t_name)
    km = fit_cells(tz, n_cells, seed)
    tc = km.predict(tz)
    pz = proj(p, n_name)
    pc = km.predict(pz)
    index, test_sorted = [], []
    for c in range(n_cells):
        ix = NNIndex(tz[tc == c], name=t_name) if (tc == c).any() else None
        index.append(ix)
        if ix is None or not (pc == c).any():
            test_sorted.append(None)
        else:
            test_sorted.append(np.sort(ix.distances(pz[pc == c]).astype(np.float64)))
    return LayerRef(proj, km, index, test_sorted, np.bincount(pc, minlength=n_cells),
                     np.bincount(tc, minlength=n_cells))


def _one_openmp_thread():
    """sklearn's k-means runs OpenMP loops over blocks of 256 points; with a few cells that work
    is too small to share, and extra threads only add synchronisation (one thread is faster on
    our machines, docs/performance.md)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:    # scanning the loaded libraries is not free: do it once
        from threadpoolctl import ThreadpoolController
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="openmp")
