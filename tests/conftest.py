"""Shared fixtures: a per-session cache folder, small real image sets, one smoke run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """An empty cache root for this test session (the project cache is never touched)."""
    path = tmp_path_factory.mktemp("memlib-cache")
    os.environ["MEMLIB_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def fmnist_small():
    """128 Fashion-MNIST test images as an ImageSet."""
    from memlib.data import load_images
    return load_images("fashion-mnist:test[:128]")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def smoke_run():
    """Every notebook on the smoke profile (the same command as `make smoke`); its figures folder."""
    repo = Path(__file__).resolve().parent.parent
    shutil.rmtree(repo / "smoke-out" / "figures", ignore_errors=True)  # no table of an older run
    env = {**os.environ, "MEMLIB_CACHE": os.environ.get("MEMLIB_CACHE", str(repo / ".cache" / "memlib"))}
    result = subprocess.run([sys.executable, "-m", "memlib", "--profile", "smoke", "run-notebooks"],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo / "smoke-out" / "figures"
