"""Shared fixtures: a per-session cache folder and small real image sets."""
from __future__ import annotations

import os

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
