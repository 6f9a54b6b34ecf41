"""Layer features on disk: one forward pass, every block, cached by content and parameters.

A cache entry is a folder ``<MEMLIB_CACHE>/features/<key>/`` holding, per token kind
(``cls``, ``mean``), one ``float16`` array ``(N, D)`` per layer as ``.npy`` files
(memory-mapped on read) and a ``meta.json`` sidecar naming the encoder, its weights id, every
preprocessing parameter and the image set's content hash. ``key`` hashes all of these, so any
parameter that changes the numbers changes the folder. The entry is written in a temporary
folder and renamed into place in one step: an interrupted run leaves no entry that a later run
would read, and a finished entry is never recomputed.

Entries are computed chunk by chunk (:mod:`memlib.chunked`): images are read in batches
(:class:`memlib.data.ImageStream` streams a folder or ``.npz``), each batch's features go
straight into the entry's preallocated files, and a chunk of ``chunk_rows`` images is marked
complete once written. An interrupted pass (even SIGKILL) resumes at the first chunk without its
mark; several processes (:func:`embed_shard`, :mod:`memlib.launch`) can fill disjoint chunks of
one entry at once. The finished folder has the same layout, key and format (1) as entries
written in one piece before chunking, so those are read as they are.
"""
from __future__ import annotations

import concurrent.futures
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .chunked import PartialEntry
from .ct_inputs import CHUNK_ROWS
from .data import ImageSet, ImageStream
from .encoders import (Encoder, cache_root, compute_precision, pick_device, shared_encoder,
                       weights_id)
from .errors import CacheError, InputError
from .store import hash_params, read_json, write_json

FEATURE_FORMAT_VERSION = 1
TOKENS = ("cls", "mean")
RESIZE_METHOD = "torch-bicubic-antialias"


@dataclass
class LayerFeatures:
    """Per-layer features of one image set, for one token kind.

    ``feats[l]`` is a float32 array (N, D) for layer ``l`` (0-based; layer 1 of the paper is
    index 0). Layers are read one at a time from memory-mapped float16 files, so a 100k × 24 ×
    1024 set never needs to fit in RAM. Also accepts in-memory arrays (``layers`` a list of
    (N, D) arrays) for tests and derived sets.
    """

    layers: Sequence[np.ndarray]
    meta: dict

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer: int) -> np.ndarray:
        return np.asarray(self.layers[layer], dtype=np.float32)

    @property
    def n(self) -> int:
        """Number of images."""
        return int(self.layers[0].shape[0])

    @property
    def dim(self) -> int:
        return int(self.layers[0].shape[1])

    def subset(self, index: np.ndarray) -> "LayerFeatures":
        """Rows ``index`` of every layer (reads each layer once, returns in-memory features)."""
        return LayerFeatures([np.asarray(layer[index]) for layer in self.layers],
                             {**self.meta, "subset_of": self.meta.get("key"), "n": len(index)})

    @staticmethod
    def concat(parts: Sequence["LayerFeatures"], meta: dict | None = None) -> "LayerFeatures":
        """Stack several feature sets (same layers and dims) along the image axis."""
        n_layers = {len(p) for p in parts}
        if len(n_layers) != 1:
            raise InputError(f"cannot concatenate features with {sorted(n_layers)} layers")
        return LayerFeatures([np.concatenate([np.asarray(p.layers[l]) for p in parts])
                              for l in range(len(parts[0]))], meta or {})


def feature_key(images: ImageSet | ImageStream, encoder_name: str, weights_id: str, image_size: int,
                final_norm: bool, precision: str = "float32",
                batch_size: int = 64) -> tuple[str, dict]:
    """Cache key and the parameter dict it hashes (everything that changes the numbers).

    ``precision`` is what the forward pass computes in (:func:`memlib.encoders.compute_precision`:
    ``float32`` or ``bfloat16-autocast``). ``batch_size`` (images per forward pass) is part of
    every key: the CPU's GEMM kernels block a batch by its size, so one image embedded in batches
    of different sizes differs by up to 2.6e-3 under bf16 on the Intel Xeon (AMX) and by one
    float16 unit in the last place under float32 (docs/reproducibility.md#batch-size-rule).
    An entry is therefore byte-reproducible at its own batch size, and runs with two batch
    sizes never share an entry."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    params = dict(format=FEATURE_FORMAT_VERSION, encoder=encoder_name, weights=weights_id,
                  image_size=int(image_size), resize=RESIZE_METHOD, final_norm=bool(final_norm),
                  precision=precision, batch_size=int(batch_size),
                  normalisation="imagenet", dtype="float16", images=images.content_hash,
                  n_images=len(images), input_shape=list(images.image_shape))
    return hash_params(params), params


def default_chunk_rows(batch_size: int) -> int:
    """Images per resumable chunk: the least common multiple of ``batch_size`` and
    :data:`memlib.ct_inputs.CHUNK_ROWS` (8,192). A multiple of the batch size keeps every batch
    where a one-pass run puts it (features depend on the batch); a multiple of CHUNK_ROWS makes
    a projected entry (:mod:`memlib.projected`) project the same row blocks as the C_T engine,
    hence the same bits."""
    return math.lcm(int(batch_size), CHUNK_ROWS)


def embed(images: ImageSet | ImageStream, encoder: str | Encoder, *, image_size: int,
          token: str = "cls", final_norm: bool = False, batch_size: int = 64, device: str = "auto",
          precision: str = "auto", cache_dir: str | os.PathLike | None = None,
          progress: bool = True, chunk_rows: int | None = None) -> LayerFeatures:
    """Per-layer features of ``images``, computed once and then read from the cache.

    Args:
        images: the image set (uint8 N×H×W×C), in memory or streamed from disk
            (:class:`memlib.data.ImageStream`: one batch is held at a time).
        encoder: a registry name or an already built :class:`Encoder` (built at ``image_size``).
        image_size: px side the ViT sees.
        token: ``cls`` or ``mean`` (mean of patch tokens). Both are stored; this picks one.
        final_norm: apply the final LayerNorm to every block output.
        batch_size: images per forward pass. Part of the cache key (:func:`feature_key`): bf16
            features depend on it at the 1e-3 level on some CPUs, float32 ones at float16's
            last place.
        device: ``auto``, ``cpu`` or ``cuda[:i]`` (for a registry name).
        precision: ``auto``, ``float32`` or ``bfloat16`` (for a registry name;
            :func:`memlib.encoders.compute_precision`). A built encoder keeps its own device
            and precision.
        cache_dir: cache root (default ``$MEMLIB_CACHE`` or ``.cache/memlib``).
        chunk_rows: images per resumable chunk (default :func:`default_chunk_rows`), a
            multiple of ``batch_size``. An unfinished entry must be resumed with the value it
            was started with (a mismatch is refused with a message).

    Returns:
        :class:`LayerFeatures` with ``len == n_layers`` and arrays (N, D).
    """
    if token not in TOKENS:
        raise InputError(f"token must be one of {TOKENS}, got {token!r}")
    folder, job = entry_job(images, encoder, image_size=image_size, final_norm=final_norm,
                            batch_size=batch_size, device=device, precision=precision,
                            cache_dir=cache_dir)
    if not (folder / "meta.json").exists():
        job.run(chunk_rows, None, progress)
    return load_features(folder, token)


def embed_shard(images: ImageSet | ImageStream, encoder: str | Encoder, shard: tuple[int, int], *,
                image_size: int, final_norm: bool = False, batch_size: int = 64,
                device: str = "auto", precision: str = "auto",
                cache_dir: str | os.PathLike | None = None, progress: bool = True,
                chunk_rows: int | None = None) -> bool:
    """Compute shard ``i`` of ``n`` (``shard = (i, n)``) of the cache entry :func:`embed` makes:
    its chunks ``c`` with ``c % n == i``. The shards of one entry can run in any order, at the
    same time, in processes or machines that share the cache folder; the shard that completes
    the last chunk finishes the entry, byte-identical to what one :func:`embed` writes.

    Returns True when the entry is finished (here or by another shard), False while chunks of
    other shards are still missing."""
    i, n = (int(v) for v in shard)
    if n < 1 or not 0 <= i < n:
        raise InputError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    folder, job = entry_job(images, encoder, image_size=image_size, final_norm=final_norm,
                            batch_size=batch_size, device=device, precision=precision,
                            cache_dir=cache_dir)
    if (folder / "meta.json").exists():
        return True
    return job.run(chunk_rows, (i, n), progress)


def entry_job(images, encoder: str | Encoder, *, image_size: int, final_norm: bool,
              batch_size: int, device: str, precision: str, cache_dir, sink_factory=None,
              root_sub: str = "features", key_extra: dict | None = None) -> tuple[Path, "EmbedJob"]:
    """The folder of ``images``' feature entry and the :class:`EmbedJob` that fills it.

    ``sink_factory`` (default: full features) and ``key_extra`` (extra parameters hashed into
    the key, under ``<cache>/<root_sub>/``) let :mod:`memlib.projected` write other entries with
    the same machinery."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    if isinstance(encoder, Encoder):
        if encoder.image_size != image_size:
            raise InputError(f"encoder built for {encoder.image_size} px but image_size={image_size}")
        name, weights, computed = encoder.name, encoder.weights_id, encoder.precision
    else:
        name, weights = encoder, weights_id(encoder)
        computed = compute_precision(pick_device(device), precision)
    key, params = feature_key(images, name, weights, image_size, final_norm, computed, batch_size)
    if key_extra:
        params = {**params, **key_extra}
        key = hash_params(params)
    folder = root / root_sub / key
    return folder, EmbedJob(images, encoder, weights, folder, params, final_norm, batch_size,
                            device, precision, sink_factory or FullSink)


class EmbedJob:
    """Embedding one image set into one chunked cache entry.

    ``sink_factory(params, enc, n)`` gives the sink: its ``arrays`` (relative path → (shape,
    dtype)), ``manifest`` and ``meta`` additions, and ``start_chunk`` / ``add`` / ``end_chunk``,
    which turn each batch's float16 tokens into rows of those arrays (:class:`FullSink`; the
    projected store's sink in :mod:`memlib.projected`)."""

    def __init__(self, images, encoder, weights, folder, params, final_norm, batch_size, device,
                 precision, sink_factory):
        self.images, self.encoder, self.weights, self.folder = images, encoder, weights, folder
        self.params, self.final_norm, self.batch_size = params, final_norm, int(batch_size)
        self.device, self.precision, self.sink_factory = device, precision, sink_factory

    def encoder_object(self) -> Encoder:
        enc = (self.encoder if isinstance(self.encoder, Encoder)
               else shared_encoder(self.encoder, self.params["image_size"], self.device,
                                   self.precision))
        if enc.weights_id != self.weights:
            raise CacheError(f"encoder {enc.name}: weights id {enc.weights_id} differs from the "
                             f"expected {self.weights}; delete the weights cache and retry")
        return enc

    def run(self, chunk_rows: int | None, shard: tuple[int, int] | None, progress: bool) -> bool:
        """Compute the missing chunks (of ``shard`` only, if given); True once finished."""
        enc = self.encoder_object()
        chunk_rows = default_chunk_rows(self.batch_size) if chunk_rows is None else int(chunk_rows)
        if chunk_rows < 1 or chunk_rows % self.batch_size:
            raise InputError(f"chunk_rows {chunk_rows} must be a positive multiple of batch_size "
                             f"{self.batch_size}")
        sink = self.sink_factory(self.params, enc, len(self.images))
        entry = PartialEntry(self.folder, {**self.params, **sink.manifest}, sink.arrays,
                             chunk_rows).open()
        if (self.folder / "meta.json").exists():    # finished by another process meanwhile
            return entry.finish({})
        mine = [c for c in range(entry.n_chunks) if shard is None or c % shard[1] == shard[0]]
        todo = sorted(set(mine) - entry.done())
        if todo:
            from .ledger import recording   # one ledger line per computed entry (memlib/ledger.py)
            try:
                with recording(self.folder, self.params, sum(-entry.rows(c)[0] + entry.rows(c)[1] for c in todo)):
                    _fill(self.images, enc, entry, todo, sink, self.final_norm, self.batch_size,
                          progress)
            except FileNotFoundError:
                if not (self.folder / "meta.json").exists():
                    raise
                return True     # another process finished the entry while this one wrote
        return entry.finish({**self.params, **sink.meta, "set_name": self.images.name})


class FullSink:
    """Every layer of both tokens as float16 ``<token>/layerNN.npy`` (N, D), written batch by
    batch (a chunk is never held in memory)."""

    def __init__(self, params, enc, n):
        self.n_layers = enc.n_layers
        self.arrays = {f"{tok}/layer{l:02d}.npy": ((n, enc.dim), np.float16)
                       for tok in TOKENS for l in range(enc.n_layers)}
        self.manifest = {}
        self.tokens = TOKENS            # the token kinds this sink stores
        self.meta = {"n_layers": enc.n_layers, "dim": enc.dim, "tokens": list(TOKENS)}

    def start_chunk(self, entry, chunk):
        pass

    def add(self, entry, start, tokens):
        entry.write_rows(start, {f"{tok}/layer{l:02d}.npy": tokens[tok][l]
                                 for tok in TOKENS for l in range(self.n_layers)})

    def end_chunk(self, entry, chunk):
        entry.mark(chunk)


def _fill(images, enc: Encoder, entry: PartialEntry, chunks: list[int], sink, final_norm: bool,
          batch_size: int, progress: bool) -> None:
    """Embed the rows of ``chunks`` batch by batch into ``entry`` through ``sink``."""
    from tqdm.auto import tqdm

    reads = [(c, s, min(s + batch_size, entry.rows(c)[1])) for c in chunks
             for s in range(entry.rows(c)[0], entry.rows(c)[1], batch_size)]
    bar = tqdm(total=sum(stop - start for _, start, stop in reads),
               desc=f"embed {images.name} [{enc.name}, {enc.image_size}px]",
               unit="img", disable=not progress, leave=False)
    # Reading and decoding batch i+1 overlaps the forward pass of batch i (torch frees the GIL).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        todo = iter(reads)
        pending = pool.submit(_read_next, images, todo)
        current, skipped = None, None
        while (item := pending.result()) is not None:
            chunk, start, batch = item
            pending = pool.submit(_read_next, images, todo)
            if chunk == skipped:
                bar.update(len(batch))
                continue
            if chunk != current:
                if entry.is_done(chunk):    # another process writing this entry did it
                    skipped = chunk
                    bar.update(len(batch))
                    continue
                sink.start_chunk(entry, chunk)
                current = chunk
            tokens = enc.layer_tokens(batch, final_norm=final_norm)
            half = {tok: [np.asarray(t, np.float16) for t in tokens[tok]] for tok in sink.tokens}
            if not all(np.isfinite(t).all() for tok in sink.tokens for t in half[tok]):
                raise InputError(f"encoder {enc.name} produced non-finite features for "
                                 f"{images.name} (float16 overflow?)")
            sink.add(entry, start, half)
            if start + len(batch) == entry.rows(chunk)[1]:
                sink.end_chunk(entry, chunk)
            bar.update(len(batch))
    bar.close()


def _read_next(images, reads):
    item = next(reads, None)
    if item is None:
        return None
    chunk, start, stop = item
    return chunk, start, images.read(start, stop)


def load_features(folder: str | os.PathLike, token: str = "cls") -> LayerFeatures:
    """Open a finished cache entry (memory-mapped)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise CacheError(f"{folder}: not a finished feature entry (no meta.json)")
    meta = read_json(meta_path)
    if token not in meta.get("tokens", TOKENS):
        raise InputError(f"{folder}: has tokens {meta.get('tokens')}, not {token!r}")
    layers = _MemmapLayers([folder / token / f"layer{l:02d}.npy" for l in range(meta["n_layers"])],
                           (meta["n_images"], meta["dim"]), meta.get("store_dtype", "float16"))
    return LayerFeatures(layers, {**meta, "token": token, "key": folder.name})


class _MemmapLayers:
    """Per-layer ``.npy`` files opened (memory-mapped) only while one layer is being read.

    Keeping every layer's map open would keep every page ever read resident; reopening per
    access lets the OS drop a layer once it has been used, so memory stays at one layer.
    """

    def __init__(self, paths: list[Path], shape: tuple[int, int], dtype: str = "float16"):
        self.paths, self.shape, self.dtype = paths, tuple(shape), np.dtype(dtype)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, layer: int) -> np.ndarray:
        return _LayerView(self.paths[layer], self.shape, self.dtype)


class _LayerView:
    """One layer: ``.shape`` without reading; indexing or ``np.asarray`` reads from disk."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype=np.float16):
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)

    def _open(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def __getitem__(self, index) -> np.ndarray:
        return np.array(self._open()[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = np.array(self._open())
        return arr if dtype is None else arr.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]


def pixel_features(images: ImageSet) -> LayerFeatures:
    """Raw pixels in [0, 1] as a one-'layer' feature set (N, H·W·C): the baseline space."""
    flat = images.images.reshape(len(images), -1).astype(np.float32) / 255.0
    return LayerFeatures([flat], {"encoder": "pixels", "n_layers": 1, "dim": flat.shape[1],
                                  "set_name": images.name, "images": images.content_hash})
