"""Cache entries written chunk by chunk: resumable after a crash, fillable by several processes.

An entry under construction lives in ``<parent>/.<key>.partial/``:

* ``manifest.json`` — what the entry is (its parameters), its arrays (relative path, shape,
  dtype) and ``chunk_rows``, the rows of one chunk. A partial folder whose manifest differs
  from the one asked for is refused with a message (never mixed).
* the arrays themselves, ``.npy`` files preallocated at their final shape and filled in place
  through memory maps (so the finished entry needs no copy and the disk holds each row once);
* ``done/chunk_NNNNNN`` — one marker per complete chunk, written (atomically) only after the
  chunk's rows of every array are in the files (written through a shared memory map and
  unmapped: the kernel's page cache holds them even if the process is killed the next moment;
  like every cache write here, this protects against a killed process, not a power cut).

A process killed at any moment (SIGKILL included) leaves at most one chunk without its marker;
the next run recomputes exactly the chunks without markers. Processes that fill disjoint sets
of chunks of the same entry at once (shards, :mod:`memlib.launch`) share the partial folder:
the folder is created under a temporary name and renamed into place (one creator wins), each
writes only its own rows, and whoever sees every marker renames the folder to ``<parent>/<key>/``
(one rename wins; the others find the finished entry). Two writers of the *same* chunk write
the same bytes (the computation is deterministic), so even that race is harmless.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .errors import CacheError
from .store import read_json, write_json


class PartialEntry:
    """One entry being written in chunks of rows.

    Args:
        final: the folder of the finished entry (``<parent>/<key>``).
        manifest: JSON-able description of the entry; must match an existing partial folder.
        arrays: relative path → (shape, dtype) of every array; axis 0 is the row axis (images)
            and is the same for all arrays.
        chunk_rows: rows per chunk (> 0).
    """

    def __init__(self, final: str | os.PathLike, manifest: dict, arrays: dict[str, tuple],
                 chunk_rows: int):
        self.final = Path(final)
        self.folder = self.final.parent / f".{self.final.name}.partial"
        rows = {int(shape[0]) for shape, _ in arrays.values()}
        if len(rows) != 1:
            raise CacheError(f"{self.final.name}: arrays of different lengths {sorted(rows)}")
        self.n_rows = rows.pop()
        self.chunk_rows = int(chunk_rows)
        if self.chunk_rows < 1:
            raise CacheError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.arrays = {k: (tuple(int(v) for v in shape), np.dtype(dtype).str)
                       for k, (shape, dtype) in arrays.items()}
        self.manifest = {"entry": manifest, "chunk_rows": self.chunk_rows,
                         "arrays": {k: [list(s), d] for k, (s, d) in self.arrays.items()}}

    @property
    def n_chunks(self) -> int:
        return -(-self.n_rows // self.chunk_rows)

    def rows(self, chunk: int) -> tuple[int, int]:
        """(start, stop) rows of ``chunk``."""
        start = chunk * self.chunk_rows
        return start, min(start + self.chunk_rows, self.n_rows)

    def open(self) -> "PartialEntry":
        """Create the partial folder (or join an existing one with the same manifest)."""
        if (self.folder / "manifest.json").exists():
            self._check_manifest()
            return self
        tmp = self.final.parent / f".{self.final.name}.new-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            (tmp / "done").mkdir(parents=True)
            for rel, (shape, dtype) in self.arrays.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                arr = np.lib.format.open_memmap(tmp / rel, "w+", np.dtype(dtype), shape)
                del arr     # a sparse file of the final size: blocks are used as rows are written
            write_json(tmp / "manifest.json", self.manifest)
            try:
                os.rename(tmp, self.folder)
            except OSError:         # another process created it first: join theirs
                if not (self.folder / "manifest.json").exists():
                    raise
        except OSError as exc:
            raise CacheError(f"cannot write the cache in {self.final.parent}: {exc.strerror}; "
                             f"set MEMLIB_CACHE to a writable folder") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._check_manifest()
        return self

    def _check_manifest(self) -> None:
        found = read_json(self.folder / "manifest.json")
        if found != self.manifest:
            raise CacheError(f"{self.folder}: an unfinished entry written with other settings "
                             f"(chunk_rows {found.get('chunk_rows')} vs {self.chunk_rows}, or "
                             f"another layout); delete that folder to start it again")

    def done(self) -> set[int]:
        """Indices of the complete chunks (empty once the entry is finished and moved)."""
        folder = self.folder / "done"
        if not folder.exists():
            return set()
        return {int(p.name.split("_")[1]) for p in folder.iterdir() if p.name.startswith("chunk_")}

    def write_rows(self, start: int, values: dict[str, np.ndarray]) -> None:
        """Write rows ``start:start+len(value)`` of each array (no marker: see :meth:`mark`)."""
        if set(values) != set(self.arrays):
            raise CacheError(f"rows {start}+: arrays {sorted(values)} != {sorted(self.arrays)}")
        for rel, value in values.items():
            if start + value.shape[0] > self.n_rows:
                raise CacheError(f"{rel}: rows {start}:{start + value.shape[0]} past {self.n_rows}")
            arr = np.load(self.folder / rel, mmap_mode="r+", allow_pickle=False)
            arr[start:start + value.shape[0]] = value
            del arr     # unmapped: the rows are in the file's page cache, which outlives a killed process

    def is_done(self, chunk: int) -> bool:
        """Whether ``chunk`` is marked complete (by this or another process)."""
        return (self.folder / "done" / f"chunk_{chunk:06d}").exists()

    def mark(self, chunk: int) -> None:
        """Mark ``chunk`` complete: call only after all its rows were written."""
        start, stop = self.rows(chunk)
        if not (self.folder / "manifest.json").exists():   # finished and moved by another process
            raise FileNotFoundError(self.folder / "manifest.json")
        write_json(self.folder / "done" / f"chunk_{chunk:06d}", {"rows": [start, stop]})

    def write(self, chunk: int, values: dict[str, np.ndarray]) -> None:
        """Write every array's rows of ``chunk`` (``values[rel]`` shaped (rows, ...)), then mark
        the chunk complete."""
        start, stop = self.rows(chunk)
        for rel, value in values.items():
            if value.shape[0] != stop - start:
                raise CacheError(f"chunk {chunk} of {rel}: {value.shape[0]} rows, expected "
                                 f"{stop - start}")
        self.write_rows(start, values)
        self.mark(chunk)

    def finish(self, meta: dict) -> bool:
        """If every chunk is complete: write ``meta.json`` and move the entry into place.

        Returns True when the finished entry exists afterwards (made here or by another
        process), False when chunks are still missing."""
        if (self.final / "meta.json").exists():
            # finished by another process; a partial folder made after that is stale
            shutil.rmtree(self.folder, ignore_errors=True)
            return True
        if len(self.done()) < self.n_chunks:
            return False
        try:
            write_json(self.folder / "meta.json", meta)
            os.rename(self.folder, self.final)
        except (OSError, CacheError):
            if not (self.final / "meta.json").exists():
                raise
            # another process finished it first; drop what this one may have re-created
            if not (self.folder / "manifest.json").exists():
                shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.final / "done", ignore_errors=True)
        return True
