"""Training and sampling a profile's whole zoo, several models at once in worker subprocesses.

:func:`zoo_sample` (CLI ``python -m memlib zoo sample``) and :func:`zoo_train` run every
selected model in ``params["zoo_workers"]`` subprocesses with ``params["zoo_threads"]``
threads each (small nets share cores better as several 1-thread processes than as one
multi-threaded one). Each worker writes its model's cache entry atomically; the results are
then read back from the cache in this process, so the rows are the same as a sequential run's.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import store
from ..errors import MemlibError, ParameterError
from ..machine import zoo_workers
from .cache import load_or_train, select_models, zoo_root, zoo_samples
from .families.base import progress_bar

# rough cost order (most expensive first), so that parallel workers finish together
_COST_ORDER = ("diffusion", "pixelcnn", "gan", "vae", "gmm", "kde")
# the command a worker subprocess runs (a plain interpreter: never re-imports the caller's __main__)
_WORKER_COMMAND = "from memlib.zoo.workers import worker_main; worker_main()"


def _zoo_job(action: str, family: str, variant: str, seed: int, params: dict[str, Any],
             cache_dir: str | None, n_samples: int | None, device: str | None,
             progress: bool) -> dict[str, Any]:
    """One model's work (train, or train-if-needed and sample); its result row."""
    if action == "train":
        trained, folder = load_or_train(family, variant, seed, params, cache_dir, progress=progress, device=device)
        return {"family": family, "variant": variant, "seed": seed, "folder": str(folder),
                "train_seconds": round(trained.train_seconds, 3),
                "train_cpu_seconds": round(trained.train_cpu_seconds, 3)}
    s = zoo_samples(family, seed, variant, params, cache_dir, n_samples=n_samples, progress=progress, device=device)
    return {**s.manifest, "folder": str(s.folder)}


def worker_main() -> None:
    """Entry point of a zoo worker subprocess: runs JSON jobs read line by line from stdin and
    answers each with one JSON line ``{"ok": true}`` or ``{"ok": false, "error": ...}``."""
    import traceback
    from threadpoolctl import threadpool_limits

    answer, sys.stdout = sys.stdout, sys.stderr  # stdout carries only the answers
    _exit_with_parent()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            with threadpool_limits(limits=int(job["params"]["zoo_threads"] or 1)):
                _zoo_job(job["action"], job["family"], job["variant"], job["seed"], job["params"],
                         job["cache_dir"], job["n_samples"], job["device"], False)
            answer.write(json.dumps({"ok": True}) + "\n")
        except Exception:  # reported to the parent, which raises
            answer.write(json.dumps({"ok": False, "error": traceback.format_exc()[-3000:]}) + "\n")
        answer.flush()


def _exit_with_parent(poll_seconds: float = 0.5) -> None:
    """End this worker as soon as the process that started it is gone (killed with SIGKILL,
    say), instead of finishing a model nobody waits for. Safe at any moment: every cache write
    is atomic, so an unfinished model leaves nothing behind that a later run would trust."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _run_jobs(action: str, params: dict[str, Any], models: list[tuple[str, str, int]],
              cache_dir, n_samples, device, progress: bool, workers: int | None,
              launcher: str | None = None) -> list[dict[str, Any]]:
    """Run ``_zoo_job`` for every model; with ``workers`` (default ``params["zoo_workers"]``,
    :func:`memlib.machine.zoo_workers`: ``auto`` = one per core) > 1
    in that many subprocesses at once (:func:`_run_subprocesses`), after which this process only
    loads the results from the cache. Results come back in ``models`` order."""
    workers = int(workers) if workers is not None else zoo_workers(params, len(models))
    order = sorted(range(len(models)), key=lambda i: _COST_ORDER.index(models[i][0])
                   if models[i][0] in _COST_ORDER else -1)
    if launcher not in (None, "inline"):   # Dask (memlib.launch): local:N, slurm:N, an address
        from ..launch import run_jobs
        root = str(zoo_root(cache_dir).parent.resolve())
        run_jobs(_zoo_job, [dict(action=action, family=f, variant=v, seed=int(s), params=params,
                                 cache_dir=root, n_samples=n_samples, device=device, progress=False)
                            for f, v, s in (models[i] for i in order)],
                 launcher, threads=int(params["zoo_threads"] or 1), desc=f"zoo {action}",
                 progress=progress)
    elif workers > 1 and len(models) > 1:
        _run_subprocesses(action, params, [models[i] for i in order], str(zoo_root(cache_dir).parent.resolve()),
                          n_samples, device, progress, workers)
    results: dict[int, dict[str, Any]] = {}
    with progress_bar(len(models), f"zoo {action}", progress and workers <= 1) as bar:
        for i in order:  # after the subprocesses, this only loads
            results[i] = _zoo_job(action, *models[i], params, cache_dir, n_samples, device, progress)
            bar.update(1)
    return [results[i] for i in range(len(models))]


def _run_subprocesses(action, params, models, cache_dir, n_samples, device, progress, workers) -> None:
    """Run the jobs in ``workers`` long-lived worker subprocesses (``python -c`` running
    :func:`worker_main`) fed from one queue, one job as a JSON line on a worker's stdin."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding memlib/
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-c", _WORKER_COMMAND]
    jobs: queue.Queue = queue.Queue()
    for model in models:
        jobs.put(model)
    errors: list[str] = []
    lock = threading.Lock()

    def feed(proc, bar):
        while not errors:
            try:
                family, variant, seed = jobs.get_nowait()
            except queue.Empty:
                break
            proc.stdin.write((json.dumps({
                "action": action, "family": family, "variant": variant, "seed": int(seed),
                "params": params, "cache_dir": cache_dir, "n_samples": n_samples,
                "device": device}) + "\n").encode())
            proc.stdin.flush()
            line = proc.stdout.readline()
            reply = json.loads(line) if line else {"ok": False, "error": "the worker process died"}
            with lock:
                if not reply["ok"]:
                    errors.append(f"zoo worker failed on {family}-{variant}-s{seed}:\n{reply['error']}")
                    break
                bar.update(1)
                bar.set_postfix_str(f"{family}-{variant}-s{seed}")
        proc.stdin.close()

    procs, logs, threads = [], [], []
    try:
        with progress_bar(len(models), f"zoo {action} ({workers} workers)", progress) as bar:
            for _ in range(min(workers, len(models))):
                logs.append(tempfile.TemporaryFile())  # worker stderr, for error messages
                procs.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=logs[-1], env=env))
            threads = [threading.Thread(target=feed, args=(p, bar), daemon=True) for p in procs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        for proc in procs:  # normally already exiting (stdin closed); on errors or Ctrl-C: stop them
            if proc.poll() is None and (errors or any(t.is_alive() for t in threads)):
                proc.kill()
            proc.wait()
        for log in logs:
            log.close()
    if errors:
        raise MemlibError(errors[0])


def _chosen_models(params, families, seeds, variants, models) -> list[tuple[str, str, int]]:
    """``models`` as given, or :func:`select_models` of the profile's zoo when None."""
    if models is None:
        return select_models(params, families, seeds, variants)
    if families or seeds or variants:
        raise ParameterError("zoo: give either models or families/seeds/variants, not both")
    return list(models)


def zoo_train(params: dict[str, Any], families: list[str] | None = None, seeds: list[int] | None = None,
              variants: list[str] | None = None, cache_dir: str | Path | None = None, *,
              progress: bool = True, device: str | None = None, workers: int | None = None,
              models: list[tuple[str, str, int]] | None = None,
              launcher: str | None = None) -> list[dict[str, Any]]:
    """Train (or find cached) every selected zoo model; one row per model with its folder and
    train_seconds / train_cpu_seconds of the original fit. ``workers`` processes in parallel
    (default ``params["zoo_workers"]``), each with ``params["zoo_threads"]`` torch threads.
    ``models`` replaces the selection as in :func:`zoo_sample`. ``launcher`` (``local:N``,
    ``slurm:N``, a Dask scheduler address: :mod:`memlib.launch`) runs the models as Dask jobs
    instead of ``workers`` subprocesses."""
    return _run_jobs("train", params, _chosen_models(params, families, seeds, variants, models),
                     cache_dir, None, device, progress, workers, launcher)


def zoo_sample(params: dict[str, Any], families: list[str] | None = None, seeds: list[int] | None = None,
               variants: list[str] | None = None, cache_dir: str | Path | None = None, *,
               n_samples: int | None = None, out: str | Path | None = None, progress: bool = True,
               device: str | None = None, workers: int | None = None,
               models: list[tuple[str, str, int]] | None = None,
               launcher: str | None = None) -> list[dict[str, Any]]:
    """Samples (training first where needed) for every selected zoo model, ``workers`` in
    parallel (or as Dask jobs of ``launcher``) as in :func:`zoo_train`; returns their
    manifests (with ``folder`` added).

    ``models`` (e.g. :func:`memlib.zoo.gradient_models`, or :func:`memlib.zoo.select_models`
    with ``gradient=True``) replaces the selection by families / seeds / variants, which must
    then be left out. Workers take the models by estimated cost, dearest family first.

    Call this once before looping over :func:`memlib.zoo.zoo_samples` (which then only loads).
    With ``out``, also writes ``out/<family>-<variant>-s<seed>.npz`` (``images`` uint8
    (n, H, W[, C]), plus kde's ``source_index``) for use outside memlib."""
    models = _chosen_models(params, families, seeds, variants, models)
    rows = _run_jobs("sample", params, models, cache_dir, n_samples, device, progress, workers,
                     launcher)
    if out is not None:
        for family, variant, seed in models:
            s = zoo_samples(family, seed, variant, params, cache_dir, n_samples=n_samples, progress=False)
            store.write_npz(Path(out) / f"{family}-{variant}-s{seed}.npz", images=s.images, **s.extras)
    return rows
