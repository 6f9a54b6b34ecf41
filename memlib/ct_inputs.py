"""Input checks of the C_T engine (:mod:`memlib.ct`): parameters, per-layer feature sets, cells.

Every error is an :class:`~memlib.errors.InputError` (or ``ParameterError``) whose message
starts with the name of the set at fault (``"gen: …"``, ``"train: …"`` or the caller's own
name). The functions here do not know which layer they look at: the loop over layers wraps
each layer's work in :func:`in_layer`, which adds the layer to the name (``"gen (layer 3): …"``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .errors import InputError, ParameterError

VARIANTS = ("ct", "ct_modified", "ct_test")
CHUNK_ROWS = 8192            # rows cast to float32 at once when streaming a layer
# Plain defaults of the kernels (memlib.ct): the default profile's values, written out so that
# a kernel never reads a file. tests/test_api.py keeps them equal to params/default.yaml.
DEFAULT_N_CELLS = 3
DEFAULT_PCA_DIM = 64
DEFAULT_SEED = 0


def check_params(variant, n_cells, pca_dim):
    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not isinstance(n_cells, (int, np.integer)) or isinstance(n_cells, bool) or n_cells < 1:
        raise ParameterError(f"n_cells must be a positive integer, got {n_cells!r}")
    if pca_dim is not None and (not isinstance(pca_dim, (int, np.integer))
                                or isinstance(pca_dim, bool) or pca_dim < 1):
        raise ParameterError(f"pca_dim must be a positive integer or None, got {pca_dim!r}")


@contextmanager
def in_layer(layer: int) -> Iterator[None]:
    """Re-raise an InputError from the block with the layer after the set's name.

    ``"gen: features contain NaN …"`` becomes ``"gen (layer 3): features contain NaN …"``.
    """
    try:
        yield
    except InputError as exc:
        name, sep, rest = str(exc).partition(": ")
        raise InputError(f"{name} (layer {layer}){sep}{rest}") from exc


def as_layers(x, name):
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


def layer_array(x, name, min_rows):
    """An (N, D) numeric array-like (kept lazy, e.g. a memmap) with at least min_rows rows."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        x = np.asarray(x)
    if len(x.shape) != 2:
        raise InputError(f"{name}: expected (N, D) features, got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{name}: expected real numeric features, got dtype {x.dtype}")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise InputError(f"{name}: {x.shape[0]} points of dimension {x.shape[1]}; "
                         f"need at least {max(min_rows, 1)} points")
    return x


def same_dim(x, name, other, other_name):
    """Raise unless the (N, D) arrays x and other have the same D."""
    if x.shape[1] != other.shape[1]:
        raise InputError(f"{name}: feature dimension {x.shape[1]} does not match "
                         f"{other_name}'s {other.shape[1]}")


def chunks(x, name, check=True):
    """(first row, float32 row chunk) pairs of x (N, D); with ``check``, each chunk is checked
    for NaN/inf (callers that check a reduction of the chunk instead pass ``check=False``)."""
    for s in range(0, x.shape[0], CHUNK_ROWS):
        chunk = np.asarray(x[s:s + CHUNK_ROWS], dtype=np.float32)
        if check:
            check_finite(chunk, s, name)
        yield s, chunk


def check_finite(chunk, start, name):
    bad = ~np.isfinite(chunk)
    if bad.any():
        row = start + int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(f"{name}: features contain NaN or inf (row {row}); "
                         f"fix or drop those images")


def full_array(x, name):
    """All of x (N, D) as one checked float32 array."""
    x = layer_array(x, name, 1)
    return np.concatenate([chunk for _, chunk in chunks(x, name)])


def cell_labels(c, n, name):
    """(n,) int64 non-negative cell labels."""
    c = np.asarray(c)
    if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
        raise InputError(f"{name}: cell labels must be {n} integers (one per point), "
                         f"got {c.dtype} array of shape {c.shape}")
    if n and c.min() < 0:
        raise InputError(f"{name}: cell labels must be non-negative")
    return c.astype(np.int64)


def check_same_images(n, m):
    """Raise unless a layer's n generated points are the m of layer 0."""
    if n != m:
        raise InputError(f"gen: {n} points but layer 0 has {m}; every layer must hold the "
                         f"same images")


def index_array(idx, m, s):
    """Subset s as a non-empty 1-D int64 index array into m points."""
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) \
            or idx.min() < 0 or idx.max() >= m:
        raise InputError(f"gen subset {s}: expected a non-empty 1-D integer index array into "
                         f"{m} generated points")
    return idx.astype(np.int64)
