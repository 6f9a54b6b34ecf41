"""Supervised training of one trained encoder's network, uncached (docs/design.md#trained-encoders).

:func:`train_classifier` fits a network of :mod:`memlib.encoder_nets` to labelled uint8 images by
cross-entropy: AdamW (``lr``, ``weight_decay``), batches of ``batch`` images in a fresh seeded
order every epoch, ``epochs`` passes, the learning rate rising linearly over the first 10 % of
the steps and then falling to 0 on a cosine. No augmentation, no dropout. Inputs are exactly what
the encoder sees at embedding time (:meth:`memlib.encoders.Encoder.preprocess`). Everything runs
in float32 on the CPU (or the given device) with deterministic kernels, so on one machine and
one torch thread count a seed gives the same weights, byte for byte
(tests/test_trained_encoders.py). :func:`accuracy` scores it on held-out labelled images.

Caching, content keys and the registry are :mod:`memlib.trained_encoders`' job.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import Encoder
from .zoo.families.base import progress_bar, seeded

WARMUP_SHARE = 0.1   # share of the steps over which the learning rate rises linearly from 0


@dataclass
class TrainResult:
    """What a training run measured.

    Attributes:
        epoch_loss: mean cross-entropy (nats) of each epoch's batches, length ``epochs``.
        epoch_accuracy: share of each epoch's training images classified right (while training).
        train_seconds: wall-clock seconds of the training loop; train_cpu_seconds: CPU seconds
        of this process meanwhile (all threads; less sensitive than wall time to other jobs on
        the same cores); torch_threads: torch's intra-op thread count during training;
        n_steps: optimiser steps.
    """

    epoch_loss: list[float]
    epoch_accuracy: list[float]
    train_seconds: float
    train_cpu_seconds: float
    torch_threads: int
    n_steps: int


def lr_factor(step: int, n_steps: int) -> float:
    """Learning-rate multiplier of optimiser step ``step`` (0-based) of ``n_steps``: linear warm-up
    over the first :data:`WARMUP_SHARE` of the steps, then a cosine from 1 down to 0."""
    warm = max(1, int(math.ceil(WARMUP_SHARE * n_steps)))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, n_steps - warm)))


def train_classifier(encoder: Encoder, head_net: nn.Module, images: np.ndarray, labels: np.ndarray,
                     recipe: Mapping[str, Any], *, progress: bool = True, desc: str = "train") -> TrainResult:
    """Train ``head_net`` (the encoder's network, which maps preprocessed images to logits) in
    place on uint8 images (N, H, W, C) with int64 labels (N,) in 0..K-1.

    ``encoder`` supplies the preprocessing (:meth:`~memlib.encoders.Encoder.preprocess`: float32
    (B, 3, S, S)); ``recipe`` the keys ``seed``, ``epochs``, ``batch``, ``lr``, ``weight_decay``.
    The network is left in eval mode."""
    n = len(images)
    batch = int(recipe["batch"])
    per_epoch = int(math.ceil(n / batch))
    n_steps = per_epoch * int(recipe["epochs"])
    order_rng = np.random.default_rng([int(recipe["seed"]), 1])   # the data order's own stream
    labels_t = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    channels_last = _channels_last(head_net)
    start, cpu = time.perf_counter(), time.process_time()
    losses, accs = [], []
    with seeded(int(recipe["seed"])):
        opt = torch.optim.AdamW(head_net.parameters(), lr=float(recipe["lr"]),
                                weight_decay=float(recipe["weight_decay"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, n_steps))
        head_net.train()
        with progress_bar(n_steps, desc, progress) as bar:
            for epoch in range(int(recipe["epochs"])):
                perm = order_rng.permutation(n)
                loss_sum, right = 0.0, 0
                for b in range(per_epoch):
                    idx = perm[b * batch:(b + 1) * batch]
                    x = encoder.preprocess(images[idx]).to(encoder.device)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    y = labels_t[idx].to(encoder.device)
                    logits = head_net(x)
                    loss = F.cross_entropy(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    loss_sum += float(loss.detach()) * len(idx)
                    right += int((logits.argmax(1) == y).sum())
                    bar.update(1)
                    bar.set_postfix_str(f"epoch {epoch + 1} loss {loss_sum / ((b * batch) + len(idx)):.3f}")
                losses.append(loss_sum / n)
                accs.append(right / n)
    head_net.eval()
    return TrainResult(losses, accs, time.perf_counter() - start, time.process_time() - cpu,
                       torch.get_num_threads(), n_steps)


@torch.inference_mode()
def accuracy(encoder: Encoder, head_net: nn.Module, images: np.ndarray, labels: np.ndarray,
             batch: int = 500) -> float:
    """Share of uint8 images (N, H, W, C) whose argmax logit is their label (N,), in float32 and
    eval mode."""
    head_net.eval()
    channels_last = _channels_last(head_net)
    right = 0
    for s in range(0, len(images), batch):
        x = encoder.preprocess(images[s:s + batch]).to(encoder.device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        right += int((head_net(x).argmax(1).cpu() == torch.from_numpy(
            np.asarray(labels[s:s + batch], dtype=np.int64))).sum())
    return right / len(images)


def _channels_last(net: nn.Module) -> bool:
    """Whether the network's convolutions hold channels-last weights (the CNN trains that way:
    on the AMD EPYC one 128-image step of the default CNN took 0.44 CPU-s instead of 0.92)."""
    return any(isinstance(m, nn.Conv2d) and m.weight.is_contiguous(memory_format=torch.channels_last)
               and not m.weight.is_contiguous() for m in net.modules())
