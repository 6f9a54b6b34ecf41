"""Atomic, pickle-free file writes and reads shared by the cache, the zoo and the notebooks.

Every writer goes through a temporary file in the destination folder followed by
``os.replace``, so an interrupted run (Ctrl-C, SIGKILL, full disk) never leaves a file that a
later run would trust: either the complete file exists under its final name or nothing does.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import CacheError, InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` lets libraries that append extensions (``np.savez``) see the right name.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    except OSError as exc:
        raise CacheError(f"cannot write in {path.parent}: {exc.strerror}; "
                         f"set MEMLIB_CACHE to a writable folder") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed ``.npz``, atomically (no object arrays allowed)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise InputError(f"refusing to store object array {name!r} (would need pickle)")
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without pickle."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        raise InputError(f"{path}: cannot read as a pickle-free .npz ({exc})") from exc


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_arrays(*arrays: np.ndarray) -> str:
    """Content hash (hex sha256, 16 chars) of arrays: dtype, shape and bytes all count."""
    h = hashlib.sha256()
    for arr in arrays:
        _update_array(h, arr.dtype, arr.shape, [arr])
    return h.hexdigest()[:16]


def hash_array_chunks(dtype: Any, shape: tuple[int, ...], chunks: Iterable[np.ndarray]) -> str:
    """:func:`hash_arrays` of one array given as consecutive row blocks (``chunks``, together of
    ``shape`` and ``dtype``), so a set streamed from disk hashes as it would in memory."""
    h = hashlib.sha256()
    _update_array(h, dtype, shape, chunks)
    return h.hexdigest()[:16]


def _update_array(h, dtype: Any, shape: tuple[int, ...], chunks: Iterable[np.ndarray]) -> None:
    h.update(str(np.dtype(dtype)).encode())
    h.update(str(tuple(int(s) for s in shape)).encode())
    for chunk in chunks:
        h.update(memoryview(np.ascontiguousarray(chunk, dtype=dtype)).cast("B"))


def hash_params(params: dict[str, Any]) -> str:
    """Stable hash (16 hex chars) of a JSON-able parameter dict, independent of key order."""
    blob = json.dumps(params, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
