"""Many independent jobs (embedding shards of many sets, the zoo's models) on Dask.

A *launcher* names where the jobs run:

============================ =====================================================================
``inline``                   this process, one job after the other (the default; no Dask needed)
``local:N``                  ``distributed.LocalCluster``: N worker processes on this machine,
                             one thread each
``local-cuda:N``             ``dask_cuda.LocalCUDACluster``: one worker per GPU of this node, each
                             seeing only its own GPU (``pip install dask-cuda``; not run here)
``slurm:N``                  ``dask_jobqueue.SLURMCluster`` scaled to N SLURM jobs, one worker
                             each; queue, account, cores, memory, walltime and
                             ``job_extra_directives`` (e.g. ``--gres=gpu:1``) come from Dask's
                             own configuration, ``~/.config/dask/jobqueue.yaml`` (docs/scale.md)
``tcp://host:port``          an already running Dask scheduler (any deployment Dask supports)
============================ =====================================================================

Every job is a module-level function called with JSON-able keyword arguments and writes its
result into the content-keyed cache (atomically, chunk by chunk: :mod:`memlib.chunked`); the
caller then reads the cache, so a run with N workers writes the same bytes as a run with one
(tests/test_shard.py). Nothing is pickled to disk: Dask ships each call to its worker over the
scheduler's connection. Why Dask and not submitit: docs/scale.md.

Jobs defined here: :func:`embed_job` (one shard of one image set, full or projected features);
:func:`embed_sets` plans and runs them for a batch of sets. The zoo's models go through the
same :func:`run_jobs` (``memlib.zoo.zoo_train(..., launcher=...)``).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import MemlibError, ParameterError

INLINE = "inline"


def parse_launcher(spec: str | None) -> tuple[str, Any]:
    """``(kind, arg)`` of a launcher string: ("inline", None), ("local", N), ("local-cuda", N),
    ("slurm", N) or ("address", "tcp://…"). Raises ParameterError on anything else."""
    text = INLINE if spec in (None, "", INLINE) else str(spec)
    if text == INLINE:
        return INLINE, None
    if "://" in text:
        return "address", text
    kind, _, count = text.partition(":")
    if kind in ("local", "local-cuda", "slurm") and count.isdigit() and int(count) >= 1:
        return kind, int(count)
    raise ParameterError(f"launcher {spec!r}: expected inline, local:N, local-cuda:N, slurm:N "
                         f"or a scheduler address tcp://host:port")


@contextlib.contextmanager
def dask_client(spec: str) -> Iterator[Any]:
    """A ``distributed.Client`` for the launcher ``spec`` (not ``inline``); a cluster made here
    is closed on exit."""
    kind, arg = parse_launcher(spec)
    if kind == INLINE:
        raise ParameterError("the inline launcher has no Dask client")
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise MemlibError(f"launcher {spec!r} needs Dask: pip install -e '.[cluster]' "
                          "(dask[distributed]; dask-jobqueue for slurm:N)") from exc
    if kind == "address":
        with Client(arg) as client:
            yield client
        return
    if kind == "local":
        cluster = LocalCluster(n_workers=arg, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    elif kind == "local-cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise MemlibError("launcher local-cuda:N needs dask-cuda: pip install dask-cuda") from exc
        cluster = LocalCUDACluster(n_workers=arg, threads_per_worker=1, dashboard_address=None)
    else:
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as exc:
            raise MemlibError("launcher slurm:N needs dask-jobqueue: pip install -e '.[cluster]'") from exc
        cluster = SLURMCluster(processes=1)   # the rest from ~/.config/dask/jobqueue.yaml
        cluster.scale(jobs=arg)
    with cluster, Client(cluster) as client:
        yield client


def run_jobs(fn: Callable[..., Any], jobs: Sequence[dict], launcher: str | None = INLINE, *,
             threads: int = 1, desc: str = "jobs", progress: bool = True) -> list[Any]:
    """``[fn(**job) for job in jobs]``, run by ``launcher``; results in ``jobs`` order.

    Args:
        fn: a module-level function (importable by the workers).
        jobs: keyword arguments of each call (JSON-able: they travel to the workers).
        launcher: see the module docstring.
        threads: BLAS / OpenMP / torch threads inside each job on a Dask worker.
        desc: progress-bar label.

    Raises:
        MemlibError naming the first failed job (its traceback chained).
    """
    from tqdm.auto import tqdm

    kind, _ = parse_launcher(launcher)
    bar = tqdm(total=len(jobs), desc=f"{desc} ({launcher or INLINE})", disable=not progress,
               leave=False)
    try:
        if kind == INLINE:
            results = []
            for job in jobs:
                results.append(_call(fn, job, None))
                bar.update(1)
            return results
        from distributed import as_completed
        with dask_client(launcher) as client:
            futures = [client.submit(_call, fn, job, threads, pure=False) for job in jobs]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[Any] = [None] * len(jobs)
            for future in as_completed(futures):
                i = index[future.key]
                if future.status == "error":
                    exc = future.exception()
                    raise MemlibError(f"{desc}: job {i} ({_describe(jobs[i])}) failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
                results[i] = future.result()
                bar.update(1)
            return results
    finally:
        bar.close()


def _call(fn, job, threads):
    """One job; on a worker with ``threads`` BLAS/OpenMP/torch threads."""
    if threads is None:
        return fn(**job)
    import torch
    from threadpoolctl import threadpool_limits
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            return fn(**job)
    finally:
        torch.set_num_threads(previous)


def _describe(job: dict) -> str:
    keys = ("spec", "shard", "family", "variant", "seed")
    return ", ".join(f"{k}={job[k]}" for k in keys if k in job) or "?"


# --- embedding jobs --------------------------------------------------------------------------

def embed_job(spec: str, encoder: str, shard: Sequence[int], *, image_size: int,
              final_norm: bool = False, batch_size: int = 64, device: str = "auto",
              precision: str = "auto", chunk_rows: int | None = None,
              cache_dir: str | None = None, basis: str | None = None,
              store_dtype: str = "float16", seed: int = 0) -> dict:
    """Shard ``shard = [i, n]`` of the feature entry of image set ``spec`` (folder or ``.npz``:
    streamed; dataset spec: loaded). With ``basis`` (the folder of a
    :class:`memlib.projected.Basis`) the entry is a projected one (``store_dtype``).

    Returns ``{"spec", "shard", "finished"}``: whether the entry is complete after this shard."""
    from .data import open_images
    images = open_images(spec, seed=seed)
    kw = dict(image_size=image_size, final_norm=final_norm, batch_size=batch_size, device=device,
              precision=precision, cache_dir=cache_dir, progress=False, chunk_rows=chunk_rows)
    if basis is None:
        from .features import embed_shard
        finished = embed_shard(images, encoder, tuple(shard), **kw)
    else:
        from .projected import embed_projected, load_basis
        finished = embed_projected(images, encoder, load_basis(basis), dtype=store_dtype,
                                   shard=tuple(shard), **kw)
    return {"spec": str(spec), "shard": list(shard), "finished": bool(finished)}


def embed_sets(specs: Sequence[str], encoder: str, *, shards: int = 1,
               launcher: str | None = INLINE, progress: bool = True, **settings) -> list[dict]:
    """Fill the cache with the features of every set in ``specs``, each split into ``shards``
    jobs (chunks ``c % shards == i``), all run by ``launcher``; the caller (a notebook's
    :func:`memlib.features.embed`, the CLI) then finds finished entries.

    ``settings``: the keyword arguments of :func:`embed_job` (image_size, batch_size, device,
    precision, final_norm, chunk_rows, cache_dir, basis, store_dtype, seed). Returns the jobs'
    results; every set's entry is finished when this returns (else MemlibError)."""
    if int(shards) < 1:
        raise ParameterError(f"shards must be >= 1, got {shards}")
    if settings.get("cache_dir") is not None:
        settings["cache_dir"] = str(Path(settings["cache_dir"]).resolve())
    if settings.get("basis") is not None:
        settings["basis"] = str(Path(settings["basis"]).resolve())
    jobs = [dict(spec=str(s), encoder=encoder, shard=[i, int(shards)], **settings)
            for s in specs for i in range(int(shards))]
    results = run_jobs(embed_job, jobs, launcher, desc="embed", progress=progress)
    by_set: dict[str, bool] = {}
    for r in results:
        by_set[r["spec"]] = by_set.get(r["spec"], False) or r["finished"]
    missing = [s for s, done in by_set.items() if not done]
    for spec in missing:    # every chunk is written; finish (or, after a lost worker, complete) it
        by_set[spec] = embed_job(spec=spec, encoder=encoder, shard=[0, 1], **settings)["finished"]
    missing = [s for s, done in by_set.items() if not done]
    if missing:
        raise MemlibError(f"embedding finished no entry for {missing}: a shard failed silently?")
    return results


def default_workers() -> int:
    """Worker processes for ``local``: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
