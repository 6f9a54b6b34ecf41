"""What this machine offers and how the ``auto`` resource settings of a profile resolve on it.

* :func:`available_cores` — the cores this process may run on (its CPU affinity, not the
  machine's total: a container or ``taskset`` may allow fewer).
* :func:`zoo_workers` — ``params["zoo_workers"]``: ``auto`` = one worker process per available
  core (never more than there are models to train); an explicit number wins. Every worker runs
  its model with ``params["zoo_threads"]`` torch threads (1 by default), so a model's numbers
  never depend on how many workers ran beside it (``tests/test_zoo.py`` checks 2 against 4).
* :func:`torch_threads` / :func:`apply_torch_threads` — ``params["torch_threads"]``, the torch
  thread count of the ViT and the C_T fits in the notebook's own process: ``auto`` = the
  available cores; an explicit number wins. What the count changes in float32 is measured in
  docs/reproducibility.md.
* :func:`cpu_model`, :func:`cpu_flags` — what ``/proc/cpuinfo`` says (provenance, timings).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Mapping

from .errors import ParameterError

AUTO = "auto"


def available_cores() -> int:
    """Cores this process may run on (``sched_getaffinity``; ``os.cpu_count()`` where absent)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def is_count(value: Any) -> bool:
    """Whether ``value`` is a valid resource count: ``"auto"`` or a positive int (not a bool)."""
    return value == AUTO or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def resolve_count(value: Any, key: str, auto: int) -> int:
    """``value`` of the parameter ``key`` as a positive int: ``"auto"`` → ``auto``."""
    if not is_count(value):
        raise ParameterError(f"parameter {key!r} must be 'auto' or a positive integer, got {value!r}")
    return max(1, int(auto)) if value == AUTO else value


def zoo_workers(params: Mapping[str, Any], n_models: int | None = None) -> int:
    """Worker processes for the zoo: ``auto`` → :func:`available_cores`, at most ``n_models``."""
    workers = resolve_count(params["zoo_workers"], "zoo_workers", available_cores())
    if params["zoo_workers"] == AUTO and n_models is not None:
        workers = min(workers, max(1, n_models))
    return workers


def torch_threads(params: Mapping[str, Any]) -> int:
    """Torch threads of the study's own process: ``auto`` → :func:`available_cores`."""
    return resolve_count(params["torch_threads"], "torch_threads", available_cores())


def apply_torch_threads(params: Mapping[str, Any]) -> int:
    """Set torch's intra-op thread count from ``params["torch_threads"]``; returns it."""
    import torch

    n = torch_threads(params)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows, e.g. ``x86_64``."""
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    for line in _cpuinfo_lines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_microcode() -> str:
    """The CPU's microcode revision (``/proc/cpuinfo``), or ``""``: two machines of one model
    can differ in it, and in their results' last digits."""
    for line in _cpuinfo_lines():
        if line.startswith("microcode"):
            return line.split(":", 1)[1].strip()
    return ""


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def precision_line() -> str:
    """One line naming this CPU and what ``precision: auto`` computes in here, e.g.
    ``CPU: AMD EPYC (avx512_bf16) | precision auto -> bfloat16-autocast``; ``make test`` prints it
    so that a log says which precision path the suite took (docs/reproducibility.md)."""
    from .encoders import NATIVE_BF16_ENV, NATIVE_BF16_FLAGS, compute_precision, pick_device

    native = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()] or ["no native bf16"]
    forced = os.environ.get(NATIVE_BF16_ENV)
    return (f"CPU: {cpu_model()} ({', '.join(native)}) | precision auto -> "
            f"{compute_precision(pick_device('auto'), 'auto')}"
            + (f" ({NATIVE_BF16_ENV}={forced})" if forced else ""))


if __name__ == "__main__":   # python -m memlib.machine [--precision]
    import argparse

    parser = argparse.ArgumentParser(prog="python -m memlib.machine",
                                     description="Print this CPU and what precision auto computes in.")
    parser.add_argument("--precision", action="store_true", help="print the precision line (the default)")
    parser.parse_args()
    print(precision_line())
