"""The work ledger: one JSON line per feature-cache entry that was *computed* (never per cache
hit), so that a cold run records how many images went through which encoder at which size and
precision, and how long that took. ``bench/compute_floor.py`` turns these counts into the
study's compute floor (docs/performance.md#the-compute-floor).

The ledger is ``<cache root>/ledger/embed.jsonl`` (the cache root of the entry, e.g.
``$MEMLIB_CACHE``). A line is appended with one ``os.write`` on a descriptor opened with
``O_APPEND``, so lines of processes that embed at the same time never interleave (POSIX appends
of one write are atomic on a local file system). Recording never changes a feature: it runs
after the entry's chunks are written, and a ledger that cannot be written (read-only cache,
full disk) is skipped silently instead of failing the embedding. Set ``MEMLIB_LEDGER=0`` to
switch it off.

Line fields: ``encoder`` (registry name), ``image_size`` (px), ``precision``
(``float32`` | ``bfloat16-autocast``), ``n_images`` (images computed in this call: all of the
entry, or the chunks of one shard or of a resumed run), ``n_entry`` (images in the whole
entry), ``seconds`` (wall-clock of the computation), ``kind`` (the cache sub-folder:
``features`` or a derived store such as ``projected``), ``key`` (the entry's folder name),
``finished`` (UTC ISO time), ``pid``.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

LEDGER_FILE = Path("ledger") / "embed.jsonl"
FIELDS = ("encoder", "image_size", "precision", "n_images", "n_entry", "seconds", "kind", "key",
          "finished", "pid")


def ledger_path(cache_root: str | os.PathLike) -> Path:
    """The ledger file of a cache root: ``<cache_root>/ledger/embed.jsonl``."""
    return Path(cache_root) / LEDGER_FILE


def enabled() -> bool:
    """False when ``MEMLIB_LEDGER`` is ``0``, ``false`` or ``off``."""
    return os.environ.get("MEMLIB_LEDGER", "1").strip().lower() not in ("0", "false", "off", "no")


def append(path: str | os.PathLike, record: dict[str, Any]) -> bool:
    """Append ``record`` as one JSON line to ``path`` in a single ``O_APPEND`` write (atomic
    against other appenders). Returns False, writing nothing, when the file cannot be written."""
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        return os.write(fd, line) == len(line)
    except OSError:
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def recording(folder: str | os.PathLike, params: dict[str, Any], n_images: int) -> Iterator[None]:
    """Time the computation of ``n_images`` images of the cache entry ``folder``
    (``<root>/<kind>/<key>``) and, if the block finishes without an exception, append its line
    to the ledger of ``<root>``.

    params: the entry's key parameters (:func:`memlib.features.feature_key`): ``encoder``,
    ``image_size``, ``precision`` and ``n_images`` (the whole entry) are read from it."""
    start = time.perf_counter()
    yield
    if not enabled() or n_images <= 0:
        return
    folder = Path(folder)
    append(ledger_path(folder.parent.parent), {
        "encoder": params.get("encoder"), "image_size": params.get("image_size"),
        "precision": params.get("precision"), "n_images": int(n_images),
        "n_entry": params.get("n_images"), "seconds": round(time.perf_counter() - start, 3),
        "kind": folder.parent.name, "key": folder.name,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pid": os.getpid()})


def read(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every line of a ledger file (an absent file: no lines). A truncated last line (a process
    killed mid-write on a file system without atomic appends) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, float]]:
    """Images and seconds per (encoder, image_size, precision), summed over ``rows``."""
    out: dict[tuple[str, int, str], dict[str, float]] = {}
    for r in rows:
        key = (str(r["encoder"]), int(r["image_size"]), str(r["precision"]))
        acc = out.setdefault(key, {"n_images": 0, "seconds": 0.0, "entries": 0})
        acc["n_images"] += int(r["n_images"])
        acc["seconds"] += float(r["seconds"])
        acc["entries"] += 1
    return out


def by_window(rows: list[dict[str, Any]], ends: list[tuple[str, str]],
              start: str | None = None) -> dict[str, list[dict]]:
    """Split ledger rows by the notebook that wrote them: ``ends`` are (notebook, finished ISO
    time) in run order (``figures/executed/timings.csv``); a row belongs to the first notebook
    that finished at or after it. Rows before ``start`` (the run's start, ISO time; a cache used
    by earlier runs keeps their lines) go to ``"earlier"``, rows after the last end to ``"later"``."""
    parsed = [(name, datetime.datetime.fromisoformat(t)) for name, t in ends]
    begin = datetime.datetime.fromisoformat(start) if start else None
    out: dict[str, list[dict]] = {name: [] for name, _ in parsed}
    for r in rows:
        t = datetime.datetime.fromisoformat(r["finished"])
        name = ("earlier" if begin is not None and t < begin
                else next((n for n, end in parsed if t <= end), "later"))
        out.setdefault(name, []).append(r)
    return out
