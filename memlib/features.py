"""Layer features on disk: one forward pass, every block, cached by content and parameters.

A cache entry is a folder ``<MEMLIB_CACHE>/features/<key>/`` holding, per token kind
(``cls``, ``mean``), one ``float16`` array ``(N, D)`` per layer as ``.npy`` files
(memory-mapped on read) and a ``meta.json`` sidecar naming the encoder, its weights id, every
preprocessing parameter and the image set's content hash. ``key`` hashes all of these, so any
parameter that changes the numbers changes the folder. The entry is written in a temporary
folder and renamed into place in one step: an interrupted run leaves no entry that a later run
would read, and a finished entry is never recomputed.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import ImageSet
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


def feature_key(images: ImageSet, encoder_name: str, weights_id: str, image_size: int,
                final_norm: bool, precision: str = "float32") -> tuple[str, dict]:
    """Cache key and the parameter dict it hashes (everything that changes the numbers).

    ``precision`` is what the forward pass computes in (:func:`memlib.encoders.compute_precision`:
    ``float32`` or ``bfloat16-autocast``)."""
    params = dict(format=FEATURE_FORMAT_VERSION, encoder=encoder_name, weights=weights_id,
                  image_size=int(image_size), resize=RESIZE_METHOD, final_norm=bool(final_norm),
                  precision=precision,
                  normalisation="imagenet", dtype="float16", images=images.content_hash,
                  n_images=len(images), input_shape=list(images.images.shape[1:]))
    return hash_params(params), params


def embed(images: ImageSet, encoder: str | Encoder, *, image_size: int, token: str = "cls",
          final_norm: bool = False, batch_size: int = 64, device: str = "auto",
          precision: str = "auto", cache_dir: str | os.PathLike | None = None,
          progress: bool = True) -> LayerFeatures:
    """Per-layer features of ``images``, computed once and then read from the cache.

    Args:
        images: the image set (uint8 N×H×W×C).
        encoder: a registry name or an already built :class:`Encoder` (built at ``image_size``).
        image_size: px side the ViT sees.
        token: ``cls`` or ``mean`` (mean of patch tokens). Both are stored; this picks one.
        final_norm: apply the final LayerNorm to every block output.
        batch_size: images per forward pass; the features do not depend on it.
        device: ``auto``, ``cpu`` or ``cuda[:i]`` (for a registry name).
        precision: ``auto``, ``float32`` or ``bfloat16`` (for a registry name;
            :func:`memlib.encoders.compute_precision`). A built encoder keeps its own device
            and precision.
        cache_dir: cache root (default ``$MEMLIB_CACHE`` or ``.cache/memlib``).

    Returns:
        :class:`LayerFeatures` with ``len == n_layers`` and arrays (N, D).
    """
    if token not in TOKENS:
        raise InputError(f"token must be one of {TOKENS}, got {token!r}")
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    if isinstance(encoder, Encoder):
        if encoder.image_size != image_size:
            raise InputError(f"encoder built for {encoder.image_size} px but image_size={image_size}")
        name, weights, computed = encoder.name, encoder.weights_id, encoder.precision
    else:
        name, weights = encoder, weights_id(encoder)
        computed = compute_precision(pick_device(device), precision)
    key, params = feature_key(images, name, weights, image_size, final_norm, computed)
    folder = root / "features" / key
    if not (folder / "meta.json").exists():
        enc = (encoder if isinstance(encoder, Encoder)
               else shared_encoder(encoder, image_size, device, precision))
        if enc.weights_id != weights:
            raise CacheError(f"encoder {name}: weights id {enc.weights_id} differs from the "
                             f"expected {weights}; delete the weights cache and retry")
        from .ledger import recording   # one ledger line per computed entry (memlib/ledger.py)
        with recording(folder, params, len(images)):
            _compute_entry(images, enc, folder, params, final_norm, batch_size, progress)
    return load_features(folder, token)


def load_features(folder: str | os.PathLike, token: str = "cls") -> LayerFeatures:
    """Open a finished cache entry (memory-mapped)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        raise CacheError(f"{folder}: not a finished feature entry (no meta.json)")
    meta = read_json(meta_path)
    layers = _MemmapLayers([folder / token / f"layer{l:02d}.npy" for l in range(meta["n_layers"])],
                           (meta["n_images"], meta["dim"]))
    return LayerFeatures(layers, {**meta, "token": token, "key": folder.name})


class _MemmapLayers:
    """Per-layer ``.npy`` files opened (memory-mapped) only while one layer is being read.

    Keeping every layer's map open would keep every page ever read resident; reopening per
    access lets the OS drop a layer once it has been used, so memory stays at one layer.
    """

    def __init__(self, paths: list[Path], shape: tuple[int, int]):
        self.paths, self.shape = paths, tuple(shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, layer: int) -> np.ndarray:
        return _LayerView(self.paths[layer], self.shape)


class _LayerView:
    """One layer: ``.shape`` without reading; indexing or ``np.asarray`` reads from disk."""

    def __init__(self, path: Path, shape: tuple[int, int]):
        self.path, self.shape, self.dtype = path, shape, np.dtype(np.float16)

    def _open(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def __getitem__(self, index) -> np.ndarray:
        return np.array(self._open()[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = np.array(self._open())
        return arr if dtype is None else arr.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]


def _compute_entry(images: ImageSet, enc: Encoder, folder: Path, params: dict,
                   final_norm: bool, batch_size: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise CacheError(f"cannot write the feature cache in {folder.parent}: {exc.strerror}; "
                         f"set MEMLIB_CACHE to a writable folder") from exc
    try:
        n, n_layers, dim = len(images), enc.n_layers, enc.dim
        arrays = {tok: [np.lib.format.open_memmap(_mkdir(tmp / tok) / f"layer{l:02d}.npy", "w+",
                                                  np.float16, (n, dim))
                        for l in range(n_layers)] for tok in TOKENS}
        starts = list(range(0, n, batch_size))
        bar = tqdm(total=n, desc=f"embed {images.name} [{enc.name}, {enc.image_size}px]",
                   unit="img", disable=not progress, leave=False)
        # Preprocessing of batch i+1 overlaps the forward pass of batch i (torch frees the GIL).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            batches = (images.images[s:s + batch_size] for s in starts)
            pending = pool.submit(_first, batches)
            for s in starts:
                batch = pending.result()
                pending = pool.submit(_first, batches)
                tokens = enc.layer_tokens(batch, final_norm=final_norm)
                for tok in TOKENS:
                    for l in range(n_layers):
                        arrays[tok][l][s:s + len(batch)] = tokens[tok][l]
                bar.update(len(batch))
        bar.close()
        for tok in TOKENS:
            for arr in arrays[tok]:
                if not np.isfinite(arr).all():
                    raise InputError(f"encoder {enc.name} produced non-finite features for "
                                     f"{images.name} (float16 overflow?)")
                arr.flush()
        del arrays
        write_json(tmp / "meta.json", {**params, "n_layers": n_layers, "dim": dim,
                                       "set_name": images.name, "tokens": list(TOKENS)})
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # lost a race only if the winner finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _first(iterator):
    return next(iterator, None)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def pixel_features(images: ImageSet) -> LayerFeatures:
    """Raw pixels in [0, 1] as a one-'layer' feature set (N, H·W·C): the baseline space."""
    flat = images.images.reshape(len(images), -1).astype(np.float32) / 255.0
    return LayerFeatures([flat], {"encoder": "pixels", "n_layers": 1, "dim": flat.shape[1],
                                  "set_name": images.name, "images": images.content_hash})
