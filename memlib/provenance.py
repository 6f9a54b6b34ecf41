"""``<figures_dir>/provenance.json``: what made the figures, written by every notebook run.

Two runs of this study agree to the last digit only on the same CPU kind, precision, thread
count and library versions (docs/reproducibility.md gives the measured tolerance across
machines). This file records all of them for the run that wrote the figures, beside the git
commit, the profile and its content hash, and the wall time of each notebook, so that a number
read later can be traced to the machine that made it.

Layout (JSON, no pickle): ``{"schema", "git": {"commit", "dirty"}, "profile": {"name",
"sha256"}, "compute": {"device", "precision_requested", "precision", "torch_threads",
"zoo_workers", "zoo_threads"}, "machine": {"cpu", "cpu_flags", "native_bf16", "microcode",
"cores_available", "cores_total", "platform", "gpu"}, "versions": {package: version},
"notebooks": [{"notebook", "seconds", "finished"}], "total_seconds", "complete"}``.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from .encoders import NATIVE_BF16_ENV, NATIVE_BF16_FLAGS, compute_precision, native_bf16_cpu, pick_device
from .machine import available_cores, cpu_flags, cpu_microcode, cpu_model, torch_threads, zoo_workers
from .store import atomic_path

PROVENANCE_FILE = "provenance.json"
SCHEMA = 1
# the CPU features that decide speed and the last digits of float results here
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_vnni", *NATIVE_BF16_FLAGS, "amx_tile")
PACKAGES = ("memlib", "torch", "timm", "numpy", "scipy", "scikit-learn", "pandas", "faiss-cpu",
            "papermill", "matplotlib")


def params_sha256(params: Mapping[str, Any]) -> str:
    """Content hash of a profile's resolved parameters (key order does not matter)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def git_state(repo: str | os.PathLike, outputs: str | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the work tree at ``repo``; changes
    under ``outputs`` (the figures folder the run rewrites) do not make it dirty."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 *([f":(exclude){outputs}"] if outputs else []))
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (None when one is absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect(params: Mapping[str, Any], profile: str, notebooks: list[dict],
            repo: str | os.PathLike, complete: bool) -> dict[str, Any]:
    """The provenance record (see the module docstring) of a run of ``notebooks`` (rows with
    ``notebook``, ``seconds``, ``finished``); ``complete``: every numbered notebook ran."""
    import torch

    device = pick_device(params["device"])
    flags = cpu_flags()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "schema": SCHEMA,
        "git": git_state(repo, outputs=params["figures_dir"]),
        "profile": {"name": profile, "sha256": params_sha256(params)},
        "compute": {
            "device": str(device),
            "precision_requested": params["precision"],
            "precision": compute_precision(device, params["precision"]),
            "torch_threads": torch_threads(params),
            "zoo_workers": zoo_workers(params),
            "zoo_threads": params["zoo_threads"],
            "native_bf16_env": os.environ.get(NATIVE_BF16_ENV) or None,   # docs/reproducibility.md
        },
        "machine": {
            "cpu": cpu_model(),
            "cpu_flags": sorted(f for f in FLAGS_THAT_MATTER if f in flags),
            "native_bf16": native_bf16_cpu(flags),
            "microcode": cpu_microcode(),
            "cores_available": available_cores(),
            "cores_total": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "gpu": gpu,
        },
        "versions": package_versions(),
        "notebooks": [{k: row[k] for k in ("notebook", "seconds", "finished")} for row in notebooks],
        "total_seconds": round(sum(float(row["seconds"]) for row in notebooks), 1),
        "complete": complete,
    }


def write(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return path


def read(path: str | os.PathLike) -> dict[str, Any]:
    """A provenance record written by :func:`write`."""
    return json.loads(Path(path).read_text())
