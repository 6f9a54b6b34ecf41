"""What every zoo family shares: the :class:`Family` interface, :class:`TorchFamily` (a family
whose fitted state is one torch module) and the torch helpers the families train with (seeded
RNG, thread limits, image conversion, minibatches, a training loop with a progress bar, state
to and from named numpy arrays)."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from ...errors import InputError
from ...malloc import keep_freed_memory


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG and force deterministic kernels; restore both on exit."""
    previous = torch.are_deterministic_algorithms_enabled()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads and ``n`` BLAS threads (numpy, sklearn); None: leave as
    is. Restores both on exit.

    Small models on shared cores run faster on 1 thread (no barrier waits on a descheduled
    sibling thread), and 1-thread workers side by side use every core (see
    :func:`memlib.zoo.zoo_sample`)."""
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        with threadpool_limits(limits=int(n)):
            yield
    finally:
        torch.set_num_threads(previous)


def pick_device(device: str | torch.device) -> torch.device:
    """A torch device from ``auto`` | ``cpu`` | ``cuda[:k]`` or a ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    from ...encoders import pick_device as pick
    return pick(device)


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar (disabled unless ``enabled``), updated at most twice a second."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, mininterval=0.5)


def as_images(images: np.ndarray, what: str = "train_images") -> np.ndarray:
    """Validate an image array; return uint8 (N, H, W, C) with C in {1, 3}, H and W multiples of 4."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise InputError(f"{what}: expected uint8 images (N, H, W) or (N, H, W, C) with C in {{1, 3}}, "
                         f"got {arr.dtype} {arr.shape}")
    if arr.shape[1] % 4 or arr.shape[2] % 4:
        raise InputError(f"{what}: image size {arr.shape[1]}×{arr.shape[2]} is not a multiple of 4 "
                         f"(the zoo's networks downsample twice by 2), e.g. 28×28 or 32×32")
    if len(arr) == 0:
        raise InputError(f"{what}: no images")
    return arr


def to_unit(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 tensor (N, C, H, W) in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous().to(device)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float tensor (N, C, H, W) in [0, 1] -> uint8 (N, H, W) for C = 1, else (N, H, W, C)."""
    out = (x.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def minibatches(n: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless stream of index batches: a fresh random permutation each epoch."""
    batch = min(batch, n)
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n - batch + 1, batch):
            yield perm[start:start + batch]


def seeded_minibatches(n: int, batch: int) -> Iterator[torch.Tensor]:
    """:func:`minibatches` with a generator seeded by one draw from torch's global RNG."""
    return minibatches(n, batch, torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item())))


def run_steps(step, n_steps: int, desc: str, progress: bool) -> list[float]:
    """Call ``step(i) -> loss`` n_steps times with a progress bar showing the running loss."""
    losses: list[float] = []
    with progress_bar(n_steps, desc, progress) as bar:
        for i in range(n_steps):
            losses.append(float(step(i)))
            bar.update(1)
            if i % 25 == 0 or i == n_steps - 1:
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4g}")
    return losses


def module_state(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """A module's state dict as numpy arrays named ``<prefix>.<key>``."""
    return {f"{prefix}.{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_module_state(module: nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Load the ``<prefix>.*`` arrays of :func:`module_state` into ``module``."""
    sub = {k[len(prefix) + 1:]: torch.from_numpy(np.ascontiguousarray(v))
           for k, v in arrays.items() if k.startswith(prefix + ".")}
    module.load_state_dict(sub)


class Family:
    """Base class of a zoo family.

    Subclasses set ``name`` (the architecture, the key in :data:`FAMILIES`), ``family`` (the
    family it belongs to; empty: its own name), ``hparams_doc`` (every hyper-parameter name ->
    meaning and unit; the values themselves live only in the params files) and implement
    :meth:`fit`, :meth:`sample`, :meth:`state` and :meth:`load_state`.
    """

    name = ""
    family = ""
    hparams_doc: dict[str, str] = {}

    def __init__(self, hparams: dict[str, Any], device: torch.device):
        self.hp = dict(hparams)
        self.device = device
        if device.type == "cpu":
            keep_freed_memory()  # training steps reuse freed tensors instead of page-faulting

    def fit(self, images: np.ndarray, progress: bool) -> list[float]:
        """Fit to uint8 (N, H, W, C) images (global torch RNG already seeded); return per-step losses.

        Subclasses first call ``self._shape(images)``, which sets ``self.shape = (H, W, C)``."""
        raise NotImplementedError

    def _shape(self, images: np.ndarray) -> np.ndarray:
        """Set ``self.shape = (H, W, C)``; return the images as uint8 (N, H, W, C)."""
        images = as_images(images)
        self.shape = tuple(int(v) for v in images.shape[1:])
        return images

    def sample(self, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Draw n samples (global torch RNG already seeded): uint8 (n, H, W) for grey images
        ((n, H, W, C) for colour) and extra arrays."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`load_state` needs, as named numpy arrays (stored as safetensors)."""
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray], images: np.ndarray) -> None:
        """Restore a fitted model (``images``: the uint8 (N, H, W, C) training images, which give
        the image shape and, for kde, the kernel centres)."""
        raise NotImplementedError


class TorchFamily(Family):
    """A family whose fitted state is one torch module: ``state_attr`` (an attribute set by
    ``_build``) stored under the key prefix ``state_prefix``."""

    state_attr = "net"
    state_prefix = "net"

    def _build(self) -> None:
        raise NotImplementedError

    def state(self):
        return module_state(getattr(self, self.state_attr), self.state_prefix)

    def load_state(self, arrays, images):
        self._shape(images)
        self._build()
        load_module_state(getattr(self, self.state_attr), arrays, self.state_prefix)
