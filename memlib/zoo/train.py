"""Fitting one zoo model, uncached: :func:`train_model` -> :class:`TrainedModel`."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ParameterError
from ..params import check_exact_keys
from .families import FAMILIES
from .families.base import Family, as_images, pick_device, seeded, threads as torch_threads


def derive_seed(seed: int, tag: int) -> int:
    """A 31-bit seed derived from (seed, tag): independent streams for training (tag 0) and
    sampling (tag 1)."""
    return int(np.random.SeedSequence([int(seed), int(tag)]).generate_state(1)[0] >> 1)


@dataclass
class TrainedModel:
    """A fitted zoo model.

    Attributes:
        family: registry name; model: the fitted :class:`Family` instance; hparams: its
        hyper-parameters; seed: training seed; losses: per-step training loss (units in the
        family's docstring: nats or bits per pixel, or D's loss for the GAN); train_seconds:
        wall-clock fitting time; train_cpu_seconds: CPU time of this process meanwhile (all
        threads; less sensitive than wall time to other jobs sharing the cores); threads: torch
        and BLAS threads it was fitted and samples with (None: the process's setting).
    """

    family: str
    model: Family
    hparams: dict[str, Any]
    seed: int
    losses: list[float]
    train_seconds: float
    train_cpu_seconds: float = float("nan")
    threads: int | None = None

    def sample(self, n: int, seed: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """n samples: uint8 (n, H, W) (colour: (n, H, W, C)) and extra arrays (kde: ``source_index``).
        Deterministic per seed (for a fixed thread count)."""
        with torch_threads(self.threads), seeded(derive_seed(self.seed if seed is None else seed, 1)):
            return self.model.sample(int(n))


def check_hparams(family: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """Validate a family's hyper-parameters: every documented key present, no unknown key."""
    if family not in FAMILIES:
        raise ParameterError(f"unknown zoo family {family!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(hparams, dict):
        raise ParameterError(f"zoo_hparams[{family!r}] must be a mapping, got {type(hparams).__name__}")
    doc = FAMILIES[family].hparams_doc
    check_exact_keys(hparams, doc, f"zoo family {family!r}", "hyper-parameters", "expected")
    return dict(hparams)


def train_model(family: str, train_images: np.ndarray, *, seed: int, hparams: dict[str, Any],
                progress: bool = True, device: str | torch.device = "auto",
                threads: int | None = None) -> TrainedModel:
    """Fit one model of ``family`` to uint8 (N, H, W[, C]) images; deterministic per seed (on CPU,
    for a fixed number of ``threads``; None keeps torch's current setting).

    Not cached: :func:`memlib.zoo.zoo_samples` adds caching. ``hparams`` must hold exactly the
    family's keys (see ``FAMILIES[family].hparams_doc``).
    """
    hparams = check_hparams(family, hparams)
    images = as_images(train_images)
    model = FAMILIES[family](hparams, pick_device(device))
    start, cpu = time.perf_counter(), time.process_time()
    with torch_threads(threads), seeded(derive_seed(seed, 0)):
        losses = model.fit(images, progress)
    return TrainedModel(family, model, hparams, int(seed), losses, time.perf_counter() - start,
                        time.process_time() - cpu, threads)
