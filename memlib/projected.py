"""The projected store: per layer, only each image's projection onto the reference's PCA basis.

C_T only ever reads the PCA projection of each layer (:mod:`memlib.ct`, step 1), fit on the
reference set T. At the paper's scale (DINOv2 ViT-L/14: 24 blocks × 1,024-d, 41 sets × 50,000
images) the full feature cache is ~98 kB an image; the projection onto 64 components is
3 kB (float16) or 6 kB (float32) an image (:func:`bytes_per_image`).

Three pieces, all under ``<MEMLIB_CACHE>/projected/``:

* a :class:`Basis` — per layer the mean (D,) and the ``pca_dim`` components (D, k) that the
  C_T engine itself fits on T (:meth:`memlib.ct_space.Projection.fit`, exact, streamed from the
  memory-mapped full entry of T). Keyed by T's feature entry, the token and ``pca_dim``:
  ``<basis key>/basis.npz`` + ``meta.json``.
* projected entries ``<basis key>/<entry key>/<token>/layerNN.npy`` (N, k), float16 or float32,
  in the layout of a feature entry (so :func:`memlib.features.load_features` opens them,
  memory-mapped), keyed by the basis, the image set's feature parameters and the stored dtype;
  made from a full entry (:func:`project`) or straight from images (:func:`embed_projected`:
  the full features of a batch never reach the disk). Both are written in resumable chunks
  (:mod:`memlib.chunked`) and can be sharded.
* nothing else: the C_T engine runs on projected entries unchanged. Given (N, k) layers with
  k ≤ ``pca_dim`` it skips its PCA (design.md, step 1) and fits cells, nearest neighbours and
  the statistic on the stored projections.

Equality. Each chunk is projected by the same :class:`~memlib.ct_space.Projection` call on the
same row blocks (:data:`memlib.ct_inputs.CHUNK_ROWS`) as the engine's own projection of the
full features, so a float32 projected store gives the engine bit-identical inputs and C_T,
curves and attribution equal the full store's exactly (tests/test_projected.py). A float16
store rounds each projected coordinate to float16 (relative 2⁻¹¹); C_T then moves by far less
than its bootstrap interval (the measured difference is in tests/test_projected.py and
docs/scale.md).

Scope: the ``ct`` variant (PCA on T). ``ct_modified`` fits its PCA on the generated set and
``ct_test`` on half of the test set; they need full features.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunked import PartialEntry
from .ct_inputs import CHUNK_ROWS
from .ct_space import Projection
from .encoders import Encoder, cache_root
from .errors import InputError
from .features import (TOKENS, LayerFeatures, default_chunk_rows, entry_job, load_features)
from .store import hash_params, read_json, read_npz, write_json, write_npz

PROJECTED_FORMAT_VERSION = 1
STORE_DTYPES = ("float16", "float32")


def bytes_per_image(n_layers: int, dim: int, *, pca_dim: int | None = None,
                    dtype: str = "float16", tokens: int = 2) -> int:
    """Bytes one image takes in a store (array data only; the .npy headers add 128 B a file).

    Full store (``pca_dim`` None): ``tokens`` (cls and mean) × layers × dim float16 values.
    Projected store: one token × layers × ``pca_dim`` values of ``dtype``. E.g. ViT-L (24 ×
    1,024): full 98,304 B, projected 3,072 B (float16) / 6,144 B (float32); ViT-S (12 × 384):
    full 18,432 B, projected 1,536 B / 3,072 B."""
    if pca_dim is None:
        return int(tokens) * int(n_layers) * int(dim) * 2
    return int(n_layers) * min(int(pca_dim), int(dim)) * np.dtype(dtype).itemsize


@dataclass
class Basis:
    """Per-layer PCA of a reference set (what the C_T engine fits on T).

    Attributes:
        key: 16-hex-char id (reference entry, token, pca_dim).
        mean: float32 (L, D) per-layer centre.
        components: float32 (L, D, k) per-layer principal axes (k = pca_dim).
        meta: reference key, token, pca_dim, set name, dims.
    """

    key: str
    mean: np.ndarray
    components: np.ndarray
    meta: dict
    folder: Path | None = None      # where it is cached (what memlib.launch's jobs load)

    @property
    def n_layers(self) -> int:
        return int(self.mean.shape[0])

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    @property
    def pca_dim(self) -> int:
        return int(self.components.shape[2])

    @property
    def token(self) -> str:
        return self.meta["token"]

    def projection(self, layer: int) -> Projection:
        """The engine's :class:`~memlib.ct_space.Projection` of ``layer``."""
        return Projection(self.dim, self.mean[layer], self.components[layer])


def basis_key(reference_key: str, token: str, pca_dim: int) -> str:
    """Key of the basis of a reference feature entry."""
    return hash_params(dict(format=PROJECTED_FORMAT_VERSION, reference=reference_key,
                            token=token, pca_dim=int(pca_dim)))


def fit_basis(reference: LayerFeatures, *, pca_dim: int = 64,
              cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Basis:
    """The per-layer PCA basis of ``reference`` (T), fit once and cached.

    Args:
        reference: features of T from the feature cache (:func:`memlib.features.embed`;
            its ``meta["key"]`` and ``meta["token"]`` name the basis). Layers are read one at
            a time from their memory maps.
        pca_dim: components per layer (the engine's ``pca_dim``); must be below the layer dim.
        cache_dir: cache root (default ``$MEMLIB_CACHE``).

    Returns:
        :class:`Basis` with mean (L, D) and components (L, D, pca_dim), float32.
    """
    from tqdm.auto import tqdm

    ref_key, token = reference.meta.get("key"), reference.meta.get("token")
    if not ref_key or token not in TOKENS:
        raise InputError("fit_basis needs reference features from the feature cache "
                         "(memlib.features.embed or load_features), which name their entry")
    if pca_dim is None or int(pca_dim) >= reference.dim:
        raise InputError(f"pca_dim {pca_dim} is not below the features' dimension "
                         f"{reference.dim}: nothing to project (use the full features)")
    key = basis_key(ref_key, token, pca_dim)
    folder = _root(cache_dir) / key
    if (folder / "meta.json").exists():
        return load_basis(folder)
    name = reference.meta.get("set_name", "reference")
    means, comps = [], []
    for l in tqdm(range(len(reference)), desc=f"PCA basis of {name}", disable=not progress,
                  leave=False):
        proj = Projection.fit(reference.layers[l], int(pca_dim), name)
        means.append(proj.mean)
        comps.append(proj.components)
    write_npz(folder / "basis.npz", mean=np.stack(means), components=np.stack(comps))
    write_json(folder / "meta.json", dict(format=PROJECTED_FORMAT_VERSION, reference=ref_key,
                                          token=token, pca_dim=int(pca_dim), set_name=name,
                                          n_layers=len(reference), dim=reference.dim,
                                          n_reference=reference.n))
    return load_basis(folder)


def load_basis(folder: str | os.PathLike) -> Basis:
    """Open a basis written by :func:`fit_basis`."""
    folder = Path(folder)
    meta = read_json(folder / "meta.json")
    arrays = read_npz(folder / "basis.npz")
    return Basis(folder.name, arrays["mean"].astype(np.float32, copy=False),
                 arrays["components"].astype(np.float32, copy=False), meta, folder.resolve())


def project(features: LayerFeatures, basis: Basis, *, dtype: str = "float16",
            cache_dir: str | os.PathLike | None = None, progress: bool = True) -> LayerFeatures:
    """The projected entry of a full feature entry (e.g. T itself), made once, then read.

    Args:
        features: full features from the cache, with the basis's token and dims.
        basis: from :func:`fit_basis`.
        dtype: ``float16`` (3 kB an image at ViT-L) or ``float32`` (bit-identical C_T).

    Returns:
        :class:`LayerFeatures` of (N, pca_dim) layers, memory-mapped.
    """
    from tqdm.auto import tqdm

    _check(features, basis, dtype)
    params = {**{k: v for k, v in features.meta.items()
                 if k not in ("key", "token", "n_layers", "dim", "tokens", "set_name",
                              "subset_of", "n")},
              "source_entry": features.meta["key"], **_key_extra(basis, dtype)}
    folder = _root(cache_dir) / basis.key / hash_params(params)
    if not (folder / "meta.json").exists():
        sink = ProjectedSink(basis, dtype, features.n)
        entry = PartialEntry(folder, {**params, **sink.manifest}, sink.arrays, CHUNK_ROWS).open()
        todo = sorted(set(range(entry.n_chunks)) - entry.done())
        for c in tqdm(todo, desc=f"project {features.meta.get('set_name', '')}",
                      disable=not progress, leave=False):
            start, stop = entry.rows(c)
            entry.write_rows(start, {
                sink.rel(l): sink.project(l, features.layers[l][start:stop])
                for l in range(basis.n_layers)})
            entry.mark(c)
        entry.finish({**params, **sink.meta, "set_name": features.meta.get("set_name", "")})
    return load_features(folder, basis.token)


def embed_projected(images, encoder: str | Encoder, basis: Basis, *, image_size: int,
                    final_norm: bool = False, batch_size: int = 64, device: str = "auto",
                    precision: str = "auto", dtype: str = "float16",
                    cache_dir: str | os.PathLike | None = None, progress: bool = True,
                    chunk_rows: int | None = None,
                    shard: tuple[int, int] | None = None) -> LayerFeatures | bool:
    """Embed ``images`` straight into the projected store (full features never hit the disk).

    The same parameters as :func:`memlib.features.embed`, plus the ``basis`` and the stored
    ``dtype``. If the set's full entry is already cached, it is projected instead
    (:func:`project`; no forward pass). Images are read and embedded in batches; a chunk of
    ``chunk_rows`` images (default :func:`memlib.features.default_chunk_rows`) is held as
    float16 features of the basis's token (L × chunk_rows × D: 400 MB at ViT-L and 8,192 rows)
    until it is projected and written.

    Returns:
        :class:`LayerFeatures` (N, pca_dim) per layer, memory-mapped; with ``shard=(i, n)``
        only that shard's chunks are computed and the return value says whether the entry is
        finished (as :func:`memlib.features.embed_shard`).
    """
    kw = dict(image_size=image_size, final_norm=final_norm, batch_size=batch_size,
              device=device, precision=precision, cache_dir=cache_dir)
    full_folder, _ = entry_job(images, encoder, **kw)
    if (full_folder / "meta.json").exists():
        feats = project(load_features(full_folder, basis.token), basis, dtype=dtype,
                        cache_dir=cache_dir, progress=progress)
        return True if shard is not None else feats
    if dtype not in STORE_DTYPES:
        raise InputError(f"dtype must be one of {STORE_DTYPES}, got {dtype!r}")
    folder, job = entry_job(images, encoder, **kw, sink_factory=projected_sink(basis, dtype),
                            root_sub=f"projected/{basis.key}",
                            key_extra=_key_extra(basis, dtype))
    if shard is not None:
        i, n = (int(v) for v in shard)
        if n < 1 or not 0 <= i < n:
            raise InputError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
        return (folder / "meta.json").exists() or job.run(chunk_rows, (i, n), progress)
    if not (folder / "meta.json").exists():
        job.run(chunk_rows, None, progress)
    return load_features(folder, basis.token)


class ProjectedSink:
    """Turns float16 token features of ``n`` images into a projected entry's rows; used by
    :class:`memlib.features.EmbedJob` (batch by batch, through :func:`projected_sink`) and by
    :func:`project` (chunk by chunk). ``enc`` (optional) is checked against the basis."""

    def __init__(self, basis: Basis, dtype: str, n: int, enc: Encoder | None = None):
        if dtype not in STORE_DTYPES:
            raise InputError(f"dtype must be one of {STORE_DTYPES}, got {dtype!r}")
        if enc is not None and (enc.n_layers, enc.dim) != (basis.n_layers, basis.dim):
            raise InputError(f"encoder {enc.name}: {enc.n_layers} layers × {enc.dim} but the "
                             f"basis is {basis.n_layers} × {basis.dim}")
        self.basis, self.dtype, self.n = basis, dtype, int(n)
        self.projections = [basis.projection(l) for l in range(basis.n_layers)]
        self.arrays = {self.rel(l): ((self.n, basis.pca_dim), np.dtype(dtype))
                       for l in range(basis.n_layers)}
        self.manifest = {}
        self.tokens = (basis.token,)
        self.meta = {"n_layers": basis.n_layers, "dim": basis.pca_dim, "tokens": [basis.token],
                     "store_dtype": dtype, "basis": basis.key}
        self.buffer = None

    def rel(self, layer: int) -> str:
        return f"{self.basis.token}/layer{layer:02d}.npy"

    def project(self, layer: int, x) -> np.ndarray:
        """(rows, D) float16 features of ``layer`` → (rows, k) in the stored dtype, by the
        engine's own projection code on the same row blocks."""
        z = self.projections[layer](x, f"layer {layer + 1}")
        return z if self.dtype == "float32" else z.astype(np.float16)

    # -- the EmbedJob sink interface --
    def start_chunk(self, entry, chunk):
        start, stop = entry.rows(chunk)
        self.chunk_start = start
        self.buffer = np.empty((self.basis.n_layers, stop - start, self.basis.dim), np.float16)

    def add(self, entry, start, tokens):
        rows = tokens[self.basis.token]
        for l in range(self.basis.n_layers):
            self.buffer[l, start - self.chunk_start:start - self.chunk_start + len(rows[l])] = rows[l]

    def end_chunk(self, entry, chunk):
        entry.write_rows(self.chunk_start, {self.rel(l): self.project(l, self.buffer[l])
                                            for l in range(self.basis.n_layers)})
        entry.mark(chunk)
        self.buffer = None


class ProjectedReference:
    """A ``ct`` reference fit on projected T and P_n that scores generated sets from either
    store (what :class:`memlib.study.Study` uses as the public reference with
    ``feature_store: projected``).

    Generated layers of the basis's dimension k (a projected entry, (N, k)) are scored as they
    are; full layers (N, D), D = the basis's feature dimension, are first projected through the
    basis and rounded to the store's ``dtype``, i.e. turned into the values a projected entry
    of the same rows holds (:meth:`ProjectedSink.project`). So a set embedded in full (because
    another analysis needs its final layer) and a set embedded straight into the projected
    store are scored the same way, and with a float32 store both equal the full-feature
    reference's numbers (tests/test_study_store.py). :class:`memlib.ct.LayerDistances` pass
    through. Every other attribute (``n_layers``, ``variant``, ``pca_fitted``, …) is the
    wrapped reference's.

    Args:
        reference: :func:`memlib.ct.fit_reference` of projected T and P_n (variant ``ct``).
        basis: the :class:`Basis` T and P_n were projected on.
        dtype: the store's dtype (``float16`` or ``float32``).
    """

    def __init__(self, reference, basis: Basis, dtype: str):
        if dtype not in STORE_DTYPES:
            raise InputError(f"dtype must be one of {STORE_DTYPES}, got {dtype!r}")
        if reference.variant != "ct":
            raise InputError(f"a projected reference is of variant ct (PCA fit on T), got "
                             f"{reference.variant!r}: ct_modified and ct_test need full features")
        self.reference, self.basis, self.dtype = reference, basis, dtype
        self._sink = ProjectedSink(basis, dtype, 0)

    def __getattr__(self, name):
        if name in ("reference", "basis", "dtype", "_sink"):    # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.reference, name)

    def projected(self, gen, name: str = "gen"):
        """``gen`` as the projected store holds it: L layers of (N, k) in the store's dtype
        (full layers projected, projected ones as they are), or ``gen`` itself when it is a
        :class:`~memlib.ct.LayerDistances` or not of the basis's shape (the engine's own
        checks then name the problem)."""
        from .ct import LayerDistances
        from .ct_inputs import as_layers

        if isinstance(gen, LayerDistances):
            return gen
        layers = as_layers(gen, name)
        source = gen.layers if isinstance(gen, LayerFeatures) else layers   # the memory maps
        if len(layers) != self.basis.n_layers or self.basis.dim == self.basis.pca_dim:
            return gen
        dims = {int(source[l].shape[1]) for l in range(len(layers))}
        if dims != {self.basis.dim}:
            return gen
        return [self._sink.project(l, source[l]) for l in range(len(layers))]

    def curve(self, gen_layers):
        """As :meth:`memlib.ct.Reference.curve`."""
        return self.reference.curve(self.projected(gen_layers))

    def curves(self, gen_sets, *, progress: bool = False):
        """As :meth:`memlib.ct.Reference.curves`."""
        return self.reference.curves([self.projected(g, f"gen[{s}]") for s, g in enumerate(gen_sets)],
                                     progress=progress)

    def layer_distances(self, gen_layers):
        """As :meth:`memlib.ct.Reference.layer_distances`."""
        return self.reference.layer_distances(self.projected(gen_layers))

    def subset_curves(self, gen, subsets, **kwargs):
        """As :meth:`memlib.ct.Reference.subset_curves`."""
        return self.reference.subset_curves(self.projected(gen), subsets, **kwargs)

    def curve_bootstrap(self, gen_layers, *args, **kwargs):
        """As :meth:`memlib.ct.Reference.curve_bootstrap`."""
        return self.reference.curve_bootstrap(self.projected(gen_layers), *args, **kwargs)


def projected_sink(basis: Basis, dtype: str):
    """The ``sink_factory`` of :func:`memlib.features.entry_job` for a projected entry."""
    def factory(params, enc, n):
        return ProjectedSink(basis, dtype, n, enc)
    return factory


def _key_extra(basis: Basis, dtype: str) -> dict:
    return {"projected_format": PROJECTED_FORMAT_VERSION, "basis": basis.key,
            "token": basis.token, "store_dtype": dtype}


def _check(features: LayerFeatures, basis: Basis, dtype: str) -> None:
    if dtype not in STORE_DTYPES:
        raise InputError(f"dtype must be one of {STORE_DTYPES}, got {dtype!r}")
    if not features.meta.get("key"):
        raise InputError("project() needs features from the feature cache (they name their entry)")
    if features.meta.get("token") != basis.token:
        raise InputError(f"features of token {features.meta.get('token')!r}, basis of "
                         f"{basis.token!r}")
    if (len(features), features.dim) != (basis.n_layers, basis.dim):
        raise InputError(f"features {len(features)} layers × {features.dim}, basis "
                         f"{basis.n_layers} × {basis.dim}")


def _root(cache_dir) -> Path:
    return (Path(cache_dir) if cache_dir is not None else cache_root()) / "projected"


__all__ = ["Basis", "ProjectedReference", "ProjectedSink", "STORE_DTYPES", "basis_key", "bytes_per_image",
           "default_chunk_rows", "embed_projected", "fit_basis", "load_basis", "project",
           "projected_sink"]
