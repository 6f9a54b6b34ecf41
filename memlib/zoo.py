"""The generative zoo: small generative models of different families, trained on CPU.

Every family is a real model fitted to Fashion-MNIST (28×28 grey, uint8) by gradient descent or
by maximum likelihood, each with its own inductive bias. (Any uint8 H×W×C set with H, W multiples
of 4 and C in {1, 3} works too, e.g. CIFAR-10 in the full profile; grey samples come back as
(n, H, W), colour ones as (n, H, W, C).)

========== ===================================================================================
family     model
========== ===================================================================================
kde        pixel-space Gaussian kernel density: a sample is a random training image plus
           N(0, σ²) noise per pixel ([0, 1] pixel units), clipped. σ is Meehan et al.'s copying
           knob; ``sigma: ml`` picks it by held-out log-likelihood (10 % of the training set).
gmm        Gaussian mixture (sklearn, EM) in a PCA space of the pixels; samples are decoded by
           the inverse PCA (so they are smooth: the PCA drops fine detail).
vae        convolutional VAE (Bernoulli likelihood); a sample is the decoder's mean for z ~ N(0, I).
gan        DCGAN-like generator/discriminator (non-saturating loss, batch norm in G).
diffusion  small UNet (working at 14×14 after a 2×2 pixel-unshuffle), DDPM training with
           v-prediction on a cosine schedule, EMA weights, deterministic DDIM sampling with few steps.
pixelcnn   shallow PixelCNN: one large causal (type-A masked) convolution + a coarse (4×4-pooled)
           view of the complete rows above + per-position bias + 1×1 residual layers,
           discretised-logistic-mixture output over 256 grey levels, exact autoregressive
           sampling pixel by pixel in raster order (H·W steps, batched).
========== ===================================================================================

Variants: ``standard`` trains on ``params["zoo_train"]``; ``memorize`` trains on the small
``params["zoo_memorize_train"]`` with the overrides in ``params["zoo_memorize_hparams"]``
(longer training, smaller bandwidth, ...) so that the model copies its training images.

The one entry the notebooks use is :func:`zoo_samples`, which trains-or-loads and
samples-or-loads one model. A cache entry is a folder
``<cache>/zoo/<family>-<variant>-s<seed>-<key>/`` where ``key`` hashes the family, variant, seed,
hyper-parameters, the training images' content hash and :data:`ZOO_VERSION`. It holds

* ``model.safetensors`` + ``train.json`` (written last: its presence marks a finished model),
* ``samples-n<n>.npz`` (``images`` uint8 (n, 28, 28), plus ``source_index`` for kde) +
  ``manifest-n<n>.json`` (written last: its presence marks finished samples).

All writes are atomic (``memlib.store``), so an interrupted run leaves no piece that a later run
would trust, and a finished piece is never recomputed. No pickle anywhere.

Running a whole profile's zoo: :func:`zoo_models` lists its (family, variant, seed) triples;
:func:`zoo_sample` (CLI ``python -m memlib zoo sample``) trains and samples them in
``params["zoo_workers"]`` spawned processes with ``params["zoo_threads"]`` threads each (small
nets on 2 shared cores run ~10× faster on one thread than on two that wait for each other), so
call it once before looping over :func:`zoo_samples`, which then only loads.

Cheap quality / copying numbers in every manifest (pixel space, no encoder): ``copy_rate`` and
``nn_ratio`` (:func:`copy_metrics`) and ``pixel_fd`` vs ``pixel_fd_ref`` (:func:`pixel_fd`).
"""
from __future__ import annotations

import collections
import contextlib
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import store
from .errors import InputError, ParameterError
from .malloc import keep_freed_memory

ZOO_VERSION = 1  # bump when a family's code changes its numbers: it is part of every cache key
VARIANTS = ("standard", "memorize")
TRAIN_CALLS: collections.Counter = collections.Counter()  # family -> fits run in this process


# --- small helpers -----------------------------------------------------------------------------

def _derive_seed(seed: int, tag: int) -> int:
    """A 31-bit seed derived from (seed, tag): independent streams for training and sampling."""
    return int(np.random.SeedSequence([int(seed), int(tag)]).generate_state(1)[0] >> 1)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
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
def _threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads and ``n`` BLAS threads (numpy, sklearn); None: leave as
    is. Restores both on exit.

    Small models on 2 shared cores run far faster on 1 thread (no barrier waits on a descheduled
    sibling thread), and two 1-thread workers use both cores (see :func:`zoo_sample`)."""
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


def _pick_device(device: str | torch.device | None) -> torch.device:
    if isinstance(device, torch.device):
        return device
    from .encoders import pick_device
    return pick_device(device or "auto")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, mininterval=0.5)


def _as_images(images: np.ndarray, what: str = "train_images") -> np.ndarray:
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


def _to_unit(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 tensor (N, C, H, W) in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous().to(device)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """float tensor (N, C, H, W) in [0, 1] -> uint8 (N, H, W) for C = 1, else (N, H, W, C)."""
    out = (x.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def _minibatches(n: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless stream of index batches: a fresh random permutation each epoch."""
    batch = min(batch, n)
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n - batch + 1, batch):
            yield perm[start:start + batch]


def _run_steps(step, n_steps: int, desc: str, progress: bool) -> list[float]:
    """Call ``step(i) -> loss`` n_steps times with a progress bar showing the running loss."""
    losses: list[float] = []
    with _progress(n_steps, desc, progress) as bar:
        for i in range(n_steps):
            losses.append(float(step(i)))
            bar.update(1)
            if i % 25 == 0 or i == n_steps - 1:
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4g}")
    return losses


def _module_state(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _load_module_state(module: nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    sub = {k[len(prefix) + 1:]: torch.from_numpy(np.ascontiguousarray(v))
           for k, v in arrays.items() if k.startswith(prefix + ".")}
    module.load_state_dict(sub)


# --- families ------------------------------------------------------------------------------------

class Family:
    """Base class of a zoo family.

    Subclasses set ``name``, ``hparams_doc`` (every hyper-parameter name -> meaning and unit; the
    values themselves live only in the params files) and implement :meth:`fit`, :meth:`sample`,
    :meth:`state` and :meth:`load_state`.
    """

    name = ""
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
        images = _as_images(images)
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



class _TorchFamily(Family):
    """A family whose fitted state is one torch module: ``state_attr`` (an attribute set by
    ``_build``) stored under the key prefix ``state_prefix``."""

    state_attr = "net"
    state_prefix = "net"

    def _build(self) -> None:
        raise NotImplementedError

    def state(self):
        return _module_state(getattr(self, self.state_attr), self.state_prefix)

    def load_state(self, arrays, images):
        self._shape(images)
        self._build()
        _load_module_state(getattr(self, self.state_attr), arrays, self.state_prefix)

class KDE(Family):
    """Pixel-space Gaussian KDE. Sample = uniform random training image + N(0, σ²) per pixel."""

    name = "kde"
    hparams_doc = {
        "sigma": "kernel std in [0, 1] pixel units, or 'ml': maximise the log-likelihood of a "
                 "10 % held-out part of the training images over 31 log-spaced values in 0.01..1",
    }

    def fit(self, images, progress):
        self.train = self._shape(images)
        sigma = self.hp["sigma"]
        if sigma == "ml":
            self.sigma, curve = _kde_ml_sigma(images)
            return curve
        if not isinstance(sigma, (int, float)) or sigma < 0:
            raise ParameterError(f"kde: sigma must be 'ml' or a number ≥ 0, got {sigma!r}")
        self.sigma = float(sigma)
        return []

    def sample(self, n):
        source = torch.randint(0, len(self.train), (n,)).numpy()
        x = _to_unit(self.train[source], torch.device("cpu"))
        x = x + self.sigma * torch.randn(x.shape)
        return _to_uint8(x), {"source_index": source.astype(np.int64)}

    def state(self):
        return {"sigma": np.array([self.sigma], np.float64)}

    def load_state(self, arrays, images):
        self.train, self.sigma = self._shape(images), float(arrays["sigma"][0])


def _kde_ml_sigma(images: np.ndarray) -> tuple[float, list[float]]:
    """Bandwidth maximising held-out log-likelihood (last 10 % held out); returns (σ, -LL curve)."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    n_val = max(1, len(x) // 10)
    fit, val = x[:-n_val], x[-n_val:]
    d2 = _sq_dists(val, fit)  # (n_val, n_fit)
    grid = np.geomspace(0.01, 1.0, 31)
    dim = x.shape[1]
    nll = []
    for s in grid:
        a = -d2 / (2 * s * s)
        amax = a.max(axis=1, keepdims=True)
        ll = amax[:, 0] + np.log(np.exp(a - amax).sum(axis=1)) - np.log(len(fit)) \
            - 0.5 * dim * np.log(2 * np.pi * s * s)
        nll.append(float(-ll.mean() / dim))  # nats per pixel
    return float(grid[int(np.argmin(nll))]), nll


class GMM(Family):
    """Gaussian mixture (EM, sklearn) on PCA coefficients of the [0, 1] pixels."""

    name = "gmm"
    hparams_doc = {
        "pca_dim": "number of PCA components the mixture lives in",
        "n_components": "mixture components",
        "covariance": "sklearn covariance_type: full | diag | spherical",
        "reg_covar": "added to covariance diagonals (PCA-coefficient units², pixels in [0, 1])",
        "max_iter": "EM iterations at most",
    }

    def fit(self, images, progress):
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture
        self._shape(images)
        if self.hp["covariance"] not in ("full", "diag", "spherical"):
            raise ParameterError(f"gmm: covariance must be full, diag or spherical, got {self.hp['covariance']!r}")
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        dim = min(self.hp["pca_dim"], len(x) - 1, x.shape[1])
        self.pca = PCA(n_components=dim, random_state=seed).fit(x)
        z = self.pca.transform(x)
        k = min(self.hp["n_components"], len(x))
        self.gmm = GaussianMixture(k, covariance_type=self.hp["covariance"],
                                   reg_covar=self.hp["reg_covar"], max_iter=self.hp["max_iter"],
                                   random_state=seed).fit(z)
        return [float(-self.gmm.lower_bound_)]

    def sample(self, n):
        g = self.gmm
        comp = torch.multinomial(torch.from_numpy(g.weights_), n, replacement=True).numpy()
        eps = torch.randn(n, g.means_.shape[1], dtype=torch.float64).numpy()
        scale = _gmm_scale(g)  # (K, d, d) lower Cholesky factors, or (K, d) per-dimension stds
        z = g.means_[comp].copy()
        for k in np.unique(comp):
            rows = comp == k
            z[rows] += eps[rows] @ scale[k].T if scale.ndim == 3 else eps[rows] * scale[k]
        x = (z @ self.pca.components_ + self.pca.mean_).reshape((n,) + self.shape)
        return _to_uint8(torch.from_numpy(x).permute(0, 3, 1, 2)), {}

    def state(self):
        g = self.gmm
        return {"pca_mean": self.pca.mean_, "pca_components": self.pca.components_,
                "weights": g.weights_, "means": g.means_, "scale": _gmm_scale(g)}

    def load_state(self, arrays, images):
        self._shape(images)
        self.pca = _Struct(mean_=arrays["pca_mean"], components_=arrays["pca_components"])
        self.gmm = _Struct(weights_=arrays["weights"], means_=arrays["means"], scale_=arrays["scale"])


class _Struct:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _gmm_scale(g) -> np.ndarray:
    """Per-component noise scale of a fitted sklearn mixture: lower Cholesky factors (K, d, d) of
    full covariances, or standard deviations (K, d) for diag / spherical ones."""
    if hasattr(g, "scale_"):
        return g.scale_
    k, d = g.means_.shape
    if g.covariance_type == "full":
        return np.linalg.cholesky(g.covariances_)
    if g.covariance_type == "diag":
        return np.sqrt(g.covariances_)
    if g.covariance_type == "spherical":
        return np.repeat(np.sqrt(g.covariances_)[:, None], d, axis=1)
    raise ParameterError(f"gmm: covariance must be full, diag or spherical, got {g.covariance_type!r}")


# --- VAE ---

class _VAENet(nn.Module):
    """Encoder H×W×C -> 2 stride-2 convs -> (μ, log σ²); decoder the mirror image."""

    def __init__(self, latent: int, width: int, shape: tuple[int, int, int]):
        super().__init__()
        w, (h4, w4, c) = width, (shape[0] // 4, shape[1] // 4, shape[2])
        self.enc = nn.Sequential(nn.Conv2d(c, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, 2 * w, 4, 2, 1),
                                 nn.ReLU(), nn.Flatten(), nn.Linear(2 * w * h4 * w4, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, 2 * w * h4 * w4), nn.ReLU(), nn.Unflatten(1, (2 * w, h4, w4)),
                                 nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(w, c, 4, 2, 1))


class VAE(_TorchFamily):
    """Convolutional VAE, Bernoulli likelihood on [0, 1] pixels; sample = decoder mean."""

    name = "vae"
    hparams_doc = {
        "latent": "latent dimension",
        "width": "channels of the first conv layer (second has 2×)",
        "steps": "Adam steps",
        "batch": "images per step",
        "lr": "Adam learning rate",
        "beta": "weight of the KL term (1 = the ELBO)",
    }

    def _build(self):
        self.net = _VAENet(self.hp["latent"], self.hp["width"], self.shape).to(self.device)

    def fit(self, images, progress):
        self._shape(images)
        self._build()
        x = _to_unit(images, self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = _minibatches(len(x), self.hp["batch"], torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, ()).item())))
        latent, beta = self.hp["latent"], self.hp["beta"]

        def step(i):
            xb = x[next(batches).to(self.device)]
            mu, logvar = self.net.enc(xb).split(latent, dim=1)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            rec = F.binary_cross_entropy_with_logits(self.net.dec(z), xb, reduction="sum") / len(xb)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / len(xb)
            loss = rec + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item() / xb[0].numel()  # nats per pixel

        self.net.train()
        return _run_steps(step, self.hp["steps"], "vae", progress)

    @torch.no_grad()
    def sample(self, n):
        self.net.eval()
        out = [torch.sigmoid(self.net.dec(torch.randn(min(500, n - i), self.hp["latent"]).to(self.device)))
               for i in range(0, n, 500)]
        return _to_uint8(torch.cat(out)), {}



# --- GAN ---

class _Generator(nn.Module):
    def __init__(self, latent: int, width: int, shape: tuple[int, int, int]):
        super().__init__()
        w, (h4, w4, c) = width, (shape[0] // 4, shape[1] // 4, shape[2])
        self.net = nn.Sequential(
            nn.Linear(latent, 2 * w * h4 * w4), nn.Unflatten(1, (2 * w, h4, w4)), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, c, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class _Discriminator(nn.Module):
    def __init__(self, width: int, shape: tuple[int, int, int]):
        super().__init__()
        w, (h4, w4, c) = width, (shape[0] // 4, shape[1] // 4, shape[2])
        self.net = nn.Sequential(
            nn.Conv2d(c, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * w * h4 * w4, 1))

    def forward(self, x):
        return self.net(x)[:, 0]


class GAN(_TorchFamily):
    """DCGAN-like GAN: non-saturating loss, Adam(β1 = 0.5); G in eval mode (running BN stats) to sample."""

    name = "gan"
    state_attr, state_prefix = "G", "G"
    hparams_doc = {
        "latent": "dimension of z ~ N(0, I)",
        "width": "base channels of G and D",
        "steps": "alternating D/G Adam steps",
        "batch": "images per step",
        "lr": "Adam learning rate (G and D)",
    }

    def _build(self):
        self.G = _Generator(self.hp["latent"], self.hp["width"], self.shape).to(self.device)
        self.D = _Discriminator(self.hp["width"], self.shape).to(self.device)

    def fit(self, images, progress):
        self._shape(images)
        self._build()
        x = _to_unit(images, self.device) * 2 - 1
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.hp["lr"], betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.hp["lr"], betas=(0.5, 0.999))
        batches = _minibatches(len(x), self.hp["batch"], torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, ()).item())))
        latent = self.hp["latent"]

        def step(i):
            real = x[next(batches).to(self.device)]
            b = len(real)
            fake = self.G(torch.randn(b, latent, device=self.device))
            d_loss = F.softplus(-self.D(real)).mean() + F.softplus(self.D(fake.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = F.softplus(-self.D(fake)).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            return d_loss.item()

        self.G.train()
        self.D.train()
        return _run_steps(step, self.hp["steps"], "gan (D loss)", progress)

    @torch.no_grad()
    def sample(self, n):
        self.G.eval()
        out = [self.G(torch.randn(min(500, n - i), self.hp["latent"]).to(self.device))
               for i in range(0, n, 500)]
        return _to_uint8((torch.cat(out) + 1) / 2), {}



# --- diffusion ---

class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t = nn.Linear(t_dim, c_out)
        self.n2, self.c2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, t_emb):
        h = self.c1(F.silu(self.n1(x))) + self.t(t_emb)[:, :, None, None]
        return self.c2(F.silu(self.n2(h))) + self.skip(x)


class _UNet(nn.Module):
    """Denoiser (predicts v). H×W×C is pixel-unshuffled to H/2×W/2×4C; levels H/2 (w channels) and H/4 (2w)."""

    def __init__(self, width: int, channels: int):
        super().__init__()
        w, t_dim = width, 4 * width
        self.width = w
        self.t_mlp = nn.Sequential(nn.Linear(w, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inc = nn.Conv2d(4 * channels, w, 3, padding=1)
        self.d1 = _ResBlock(w, w, t_dim)
        self.down = nn.Conv2d(w, w, 3, 2, 1)
        self.d2 = _ResBlock(w, 2 * w, t_dim)
        self.mid = _ResBlock(2 * w, 2 * w, t_dim)
        self.u1 = _ResBlock(3 * w, w, t_dim)
        self.out = nn.Sequential(nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, 4 * channels, 3, padding=1))

    def forward(self, x, t):
        half = self.width // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device) / half)
        arg = t[:, None].float() * freqs[None]
        t_emb = self.t_mlp(torch.cat([arg.sin(), arg.cos()], dim=1))
        h0 = self.d1(self.inc(F.pixel_unshuffle(x, 2)), t_emb)
        h = self.mid(self.d2(self.down(h0), t_emb), t_emb)
        h = self.u1(torch.cat([F.interpolate(h, scale_factor=2.0), h0], dim=1), t_emb)
        return F.pixel_shuffle(self.out(h), 2)


def _cosine_alpha_bar(timesteps: int) -> torch.Tensor:
    """ᾱ_t for t = 0..T-1 (Nichol & Dhariwal 2021, s = 0.008), clipped so β_t ≤ 0.999."""
    s = 0.008
    f = torch.cos((torch.arange(timesteps + 1, dtype=torch.float64) / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0).float()


class Diffusion(_TorchFamily):
    """DDPM with a small UNet (v-prediction, cosine schedule, EMA); DDIM (η = 0) sampling with the
    predicted clean image clipped to [-1, 1] at each step. v-prediction (Salimans & Ho 2022) trains
    faster than ε-prediction in a short CPU budget (ε gave washed-out samples)."""

    name = "diffusion"
    state_attr, state_prefix = "net", "ema"
    hparams_doc = {
        "width": "UNet base channels (14×14 level; the 7×7 level has 2×)",
        "steps": "Adam steps",
        "batch": "images per step",
        "lr": "Adam learning rate",
        "ema": "decay of the exponential moving average of the weights used for sampling",
        "timesteps": "diffusion steps T of the training schedule",
        "sample_steps": "DDIM steps at sampling time",
    }

    def _build(self):
        self.net = _UNet(self.hp["width"], self.shape[2]).to(self.device)
        self.alpha_bar = _cosine_alpha_bar(self.hp["timesteps"]).to(self.device)

    def fit(self, images, progress):
        self._shape(images)
        self._build()
        self.ema = _UNet(self.hp["width"], self.shape[2]).to(self.device)
        self.ema.load_state_dict(self.net.state_dict())
        self.ema.requires_grad_(False)
        x = _to_unit(images, self.device) * 2 - 1
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = _minibatches(len(x), self.hp["batch"], torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, ()).item())))
        T, decay = self.hp["timesteps"], self.hp["ema"]
        warmup = max(1, min(100, self.hp["steps"] // 10))

        def step(i):
            x0 = x[next(batches).to(self.device)]
            t = torch.randint(0, T, (len(x0),), device=self.device)
            noise = torch.randn_like(x0)
            ab = self.alpha_bar[t][:, None, None, None]
            v = ab.sqrt() * noise - (1 - ab).sqrt() * x0  # v-prediction target
            loss = F.mse_loss(self.net(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t), v)
            for g in opt.param_groups:
                g["lr"] = self.hp["lr"] * min(1.0, (i + 1) / warmup)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            d = min(decay, (1 + i) / (10 + i))
            with torch.no_grad():
                for pe, p in zip(self.ema.parameters(), self.net.parameters()):
                    pe.lerp_(p, 1 - d)
            return loss.item()

        self.net.train()
        losses = _run_steps(step, self.hp["steps"], "diffusion", progress)
        self.net = self.ema
        return losses

    @torch.no_grad()
    def sample(self, n):
        self.net.eval()
        T, S = self.hp["timesteps"], self.hp["sample_steps"]
        ts = torch.linspace(T - 1, 0, S).round().long().tolist()
        out = []
        for i in range(0, n, 500):
            hh, ww, cc = self.shape
            x = torch.randn(min(500, n - i), cc, hh, ww).to(self.device)
            for k, t in enumerate(ts):
                ab = self.alpha_bar[t]
                ab_prev = self.alpha_bar[ts[k + 1]] if k + 1 < len(ts) else torch.ones((), device=self.device)
                v = self.net(x, torch.full((len(x),), t, device=self.device))
                x0 = (ab.sqrt() * x - (1 - ab).sqrt() * v).clamp(-1, 1)
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
                x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
            out.append(x)
        return _to_uint8((torch.cat(out) + 1) / 2), {}



# --- PixelCNN ---

class _PixelNet(nn.Module):
    """Causal neighbourhood (rows i-h..i, cols j-h..j+h; in row i only cols < j; all channels)
    plus a coarse view of every complete row above (4×4 average pooling of rows < i, so the
    model knows the garment's shape so far) -> per-position MLP -> logistic-mixture
    parameters for every channel of pixel (i, j)."""

    def __init__(self, kernel: int, width: int, depth: int, n_mix: int, shape: tuple[int, int, int]):
        super().__init__()
        if kernel % 2 != 1:
            raise ParameterError(f"pixelcnn: kernel must be odd, got {kernel}")
        self.k, self.h = kernel, kernel // 2
        self.height, self.width_px, self.channels = shape
        mask = torch.ones(self.h + 1, kernel)
        mask[self.h, self.h:] = 0  # type A: the current pixel and those right of it are unseen
        self.register_buffer("mask", mask.flatten().repeat(self.channels))  # unfold is channel-major
        self.inp = nn.Linear(self.channels * (self.h + 1) * kernel, width)
        self.ctx = nn.Linear(self.channels * (self.height // 4) * (self.width_px // 4), width, bias=False)
        self.pos = nn.Parameter(torch.zeros(self.height * self.width_px, width))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, self.channels * 3 * n_mix)

    def pad(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> zero (= black) padded canvas (B, C, H + h, W + 2h)."""
        return F.pad(x01, (self.h, self.h, self.h, 0))

    def windows(self, canvas: torch.Tensor) -> torch.Tensor:
        """All causal windows of a padded canvas: (B, H·W, C·(h+1)·k)."""
        return F.unfold(canvas, (self.h + 1, self.k)).transpose(1, 2)

    def row_context(self, x01: torch.Tensor, rows: range) -> torch.Tensor:
        """Coarse context of the rows above each row i in ``rows``: (B, len(rows), width).

        x01 (B, C, H, W); row i sees the 4×4-pooled image with every pooled row that is not
        entirely above row i (pooled row r covers rows 4r..4r+3; complete iff 4r + 3 < i) zeroed."""
        pooled = F.avg_pool2d(x01, 4)  # (B, C, H/4, W/4)
        keep = (torch.arange(pooled.shape[2], device=x01.device)[None, :] * 4 + 3
                < torch.tensor(list(rows), device=x01.device)[:, None]).float()  # (rows, H/4)
        masked = pooled[:, None] * keep[None, :, None, :, None]  # (B, rows, C, H/4, W/4)
        return self.ctx(masked.flatten(2))

    def forward(self, win: torch.Tensor, pos: torch.Tensor | slice, ctx: torch.Tensor) -> torch.Tensor:
        """win (B, P, C·(h+1)·k), ctx (B, P, width) -> mixture parameters (B, P, C·3·n_mix);
        pos selects the P positions."""
        a = F.linear(win, self.inp.weight * self.mask, self.inp.bias) + self.pos[pos] + ctx
        a = F.gelu(a)
        for layer in self.hidden:
            a = a + F.gelu(layer(a))
        return self.head(a)

    def sampling_weights(self) -> dict[str, Any]:
        """Transposed, pre-masked weights for :meth:`step` (computed once per sampling run)."""
        return {"w_in": (self.inp.weight * self.mask).T.contiguous(), "b_in": self.inp.bias + self.pos,
                "hidden": [(layer.weight.T.contiguous(), layer.bias) for layer in self.hidden],
                "w_out": self.head.weight.T.contiguous(), "b_out": self.head.bias}

    def step(self, canvas: torch.Tensor, i: int, j: int, ctx: torch.Tensor, w: dict[str, Any]) -> torch.Tensor:
        """Mixture parameters (b, C·3·n_mix) of pixel (i, j) from a padded canvas (b, C, H+h, W+2h),
        the row's context ``ctx`` (b, width) and :meth:`sampling_weights` ``w``. Equals
        ``forward`` at that position (tested), at a cost independent of the image size."""
        win = canvas[:, :, i:i + self.h + 1, j:j + self.k].reshape(len(canvas), -1)
        a = F.gelu(torch.addmm(w["b_in"][i * self.width_px + j] + ctx, win, w["w_in"]))
        for w_l, b_l in w["hidden"]:
            a = a + F.gelu(torch.addmm(b_l, a, w_l))
        return torch.addmm(w["b_out"], a, w["w_out"])


def _dlogistic_nll(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Discretised logistic mixture NLL (nats) of x in [-1, 1] on 256 levels (PixelCNN++).

    params (..., 3K) = mixture logits, means, log-scales; x (...). Returns (...)."""
    k = params.shape[-1] // 3
    logit_pi, mu, log_s = params[..., :k], params[..., k:2 * k], params[..., 2 * k:].clamp(min=-7.0)
    x = x[..., None]
    inv_s = torch.exp(-log_s)
    c = x - mu
    plus, minus = inv_s * (c + 1 / 255), inv_s * (c - 1 / 255)
    log_cdf_plus = plus - F.softplus(plus)
    log_one_minus_cdf_min = -F.softplus(minus)
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_s * c
    log_pdf_mid = mid - log_s - 2 * F.softplus(mid)
    log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid - math.log(127.5))
    log_p = torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_mid))
    return -torch.logsumexp(log_p + F.log_softmax(logit_pi, dim=-1), dim=-1)


class PixelCNN(_TorchFamily):
    """Shallow PixelCNN; exact autoregressive sampling, one pixel at a time for the whole batch."""

    name = "pixelcnn"
    hparams_doc = {
        "kernel": "size k of the causal (type-A masked) kernel: sees rows i-k//2..i",
        "width": "channels of the per-position MLP",
        "depth": "residual 1×1 layers after the masked convolution",
        "n_mix": "logistic mixture components per pixel",
        "steps": "Adam steps",
        "batch": "images per step",
        "lr": "Adam learning rate",
    }

    def _build(self):
        hp = self.hp
        self.net = _PixelNet(hp["kernel"], hp["width"], hp["depth"], hp["n_mix"], self.shape).to(self.device)

    def fit(self, images, progress):
        self._shape(images)
        self._build()
        x01 = _to_unit(images, self.device)
        target = (x01 * 2 - 1).flatten(2).transpose(1, 2)  # (N, H·W, C) in [-1, 1]
        c = self.shape[2]
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = _minibatches(len(x01), self.hp["batch"], torch.Generator().manual_seed(
            int(torch.randint(0, 2**31 - 1, ()).item())))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.hp["steps"])

        def step(i):
            idx = next(batches).to(self.device)
            xb = x01[idx]
            ctx = self.net.row_context(xb, range(self.shape[0])).repeat_interleave(self.shape[1], dim=1)
            params = self.net(self.net.windows(self.net.pad(xb)), slice(None), ctx)
            loss = _dlogistic_nll(params.unflatten(-1, (c, -1)), target[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            return loss.item() / math.log(2)  # bits per pixel

        self.net.train()
        return _run_steps(step, self.hp["steps"], "pixelcnn (bits/px)", progress)

    @torch.no_grad()
    def sample(self, n):
        """Raster-order sampling; each step evaluates the net at one position for the whole batch
        (the causal window is read straight from the canvas, so no full-image passes)."""
        net, h = self.net.eval(), self.net.h
        hh, ww, c = self.shape
        dev = self.device
        w = net.sampling_weights()
        n_mix = net.head.out_features // (3 * c)
        out = []
        for start in range(0, n, 1000):
            b = min(1000, n - start)
            canvas = torch.zeros(b, c, hh + h, ww + 2 * h, device=dev)
            gumbel = -torch.log(-torch.log(torch.rand(hh, ww, b, c, n_mix, device=dev).clamp(1e-10, 1 - 1e-10)))
            u = torch.rand(hh, ww, b, c, device=dev).clamp(1e-5, 1 - 1e-5)
            logistic = torch.log(u) - torch.log1p(-u)
            for i in range(hh):
                ctx = net.row_context(canvas[:, :, h:, h:h + ww], range(i, i + 1))[:, 0]  # (b, width)
                for j in range(ww):
                    params = net.step(canvas, i, j, ctx, w).view(b, c, 3 * n_mix)
                    pick = (params[..., :n_mix] + gumbel[i, j]).argmax(dim=-1, keepdim=True)
                    mu = params[..., n_mix:2 * n_mix].gather(-1, pick)[..., 0]
                    log_s = params[..., 2 * n_mix:].gather(-1, pick)[..., 0].clamp(min=-7.0)
                    x = (mu + log_s.exp() * logistic[i, j]).clamp(-1, 1)
                    canvas[:, :, i + h, j + h] = ((x + 1) * 127.5).round() / 255.0
            out.append(canvas[:, :, h:, h:h + ww])
        return _to_uint8(torch.cat(out)), {}



FAMILIES: dict[str, type[Family]] = {cls.name: cls for cls in (KDE, GMM, VAE, GAN, Diffusion, PixelCNN)}


# --- training and sampling one model ---------------------------------------------------------------

@dataclass
class TrainedModel:
    """A fitted zoo model.

    Attributes:
        family: registry name; model: the fitted :class:`Family` instance; hparams: its
        hyper-parameters; seed: training seed; losses: per-step training loss (units in the
        family's docstring: nats or bits per pixel, or D's loss for the GAN); train_seconds:
        wall-clock fitting time; train_cpu_seconds: CPU time of this process meanwhile (all
        threads; less sensitive than wall time to other jobs sharing the cores).
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
        with _threads(self.threads), _seeded(_derive_seed(self.seed if seed is None else seed, 1)):
            return self.model.sample(int(n))


def check_hparams(family: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """Validate a family's hyper-parameters: every documented key present, no unknown key."""
    if family not in FAMILIES:
        raise ParameterError(f"unknown zoo family {family!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(hparams, dict):
        raise ParameterError(f"zoo_hparams[{family!r}] must be a mapping, got {type(hparams).__name__}")
    doc = FAMILIES[family].hparams_doc
    missing, unknown = sorted(set(doc) - set(hparams)), sorted(set(hparams) - set(doc))
    if missing or unknown:
        raise ParameterError(f"zoo family {family!r}: " + "; ".join(
            p for p in (f"missing hyper-parameters {missing}" if missing else "",
                        f"unknown hyper-parameters {unknown}" if unknown else "") if p)
            + f" (expected: {', '.join(f'{k} = {v}' for k, v in doc.items())})")
    return dict(hparams)


def train_model(family: str, train_images: np.ndarray, *, seed: int, hparams: dict[str, Any],
                progress: bool = True, device: str | torch.device | None = "auto",
                threads: int | None = None) -> TrainedModel:
    """Fit one model of ``family`` to uint8 (N, H, W[, C]) images; deterministic per seed (on CPU,
    for a fixed number of ``threads``; None keeps torch's current setting).

    Not cached: :func:`zoo_samples` adds caching. ``hparams`` must hold exactly the family's
    keys (see ``FAMILIES[family].hparams_doc``).
    """
    hparams = check_hparams(family, hparams)
    images = _as_images(train_images)
    model = FAMILIES[family](hparams, _pick_device(device))
    TRAIN_CALLS[family] += 1
    start, cpu = time.perf_counter(), time.process_time()
    with _threads(threads), _seeded(_derive_seed(seed, 0)):
        losses = model.fit(images, progress)
    return TrainedModel(family, model, hparams, int(seed), losses, time.perf_counter() - start,
                        time.process_time() - cpu, threads)


# --- the cached zoo ------------------------------------------------------------------------------

@dataclass
class ZooSamples:
    """Samples of one zoo model.

    Attributes:
        images: uint8 (n, 28, 28) for Fashion-MNIST (grey: (n, H, W); colour: (n, H, W, C)).
        manifest: family, variant, seed, hparams, data spec and hash, loss summary,
            train_seconds, sample_seconds, n_samples, copy metrics (see :func:`copy_metrics`).
        extras: other arrays stored with the samples (kde: ``source_index`` int64 (n,), the
            training row each sample was drawn around).
        folder: the cache entry.
    """

    images: np.ndarray
    manifest: dict[str, Any]
    extras: dict[str, np.ndarray]
    folder: Path


def zoo_hparams(family: str, variant: str, params: dict[str, Any]) -> dict[str, Any]:
    """A family's hyper-parameters for a variant: ``zoo_hparams[family]`` updated by
    ``zoo_memorize_hparams[family]`` for ``memorize``."""
    if variant not in VARIANTS:
        raise ParameterError(f"unknown zoo variant {variant!r}; known: {', '.join(VARIANTS)}")
    table = params.get("zoo_hparams") or {}
    if family not in table:
        raise ParameterError(f"zoo_hparams has no entry for family {family!r} "
                             f"(has: {', '.join(table) or 'none'})")
    hp = dict(table[family])
    if variant == "memorize":
        hp.update((params.get("zoo_memorize_hparams") or {}).get(family) or {})
    return check_hparams(family, hp)


def train_spec(variant: str, params: dict[str, Any]) -> str:
    """The image spec a variant trains on (``zoo_train`` or ``zoo_memorize_train``)."""
    return params["zoo_memorize_train" if variant == "memorize" else "zoo_train"]


def load_spec_images(spec: str) -> np.ndarray:
    """uint8 (N, H, W, C) images of a data spec (via :func:`memlib.data.load_images`)."""
    from .data import load_images
    return _as_images(load_images(spec).images, spec)


def cache_folder(family: str, variant: str, seed: int, params: dict[str, Any],
                 cache_dir: str | Path | None = None, *, data_hash: str | None = None) -> Path:
    """The cache entry of one (family, variant, seed) under ``cache_dir`` (default $MEMLIB_CACHE)."""
    hp = zoo_hparams(family, variant, params)
    if data_hash is None:
        data_hash = store.hash_arrays(load_spec_images(train_spec(variant, params)))
    key = store.hash_params({"zoo_version": ZOO_VERSION, "family": family, "variant": variant,
                             "seed": int(seed), "hparams": hp, "data_hash": data_hash})
    return _zoo_root(cache_dir) / f"{family}-{variant}-s{int(seed)}-{key}"


def _zoo_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        from .encoders import cache_root
        cache_dir = cache_root()
    return Path(cache_dir) / "zoo"


def load_or_train(family: str, variant: str, seed: int, params: dict[str, Any],
                  cache_dir: str | Path | None = None, *, progress: bool = True,
                  device: str | None = None) -> tuple[TrainedModel, Path]:
    """Train one model, or load it from its cache entry when ``train.json`` is there."""
    images = load_spec_images(train_spec(variant, params))
    data_hash = store.hash_arrays(images)
    folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=data_hash)
    hp = zoo_hparams(family, variant, params)
    threads = params.get("zoo_threads") or None
    dev = _pick_device(device or params.get("device", "auto"))
    info_path, weights_path = folder / "train.json", folder / "model.safetensors"
    if info_path.exists() and weights_path.exists():
        from safetensors.numpy import load_file
        info = store.read_json(info_path)
        model = FAMILIES[family](hp, dev)
        model.load_state(load_file(str(weights_path)), images)
        return TrainedModel(family, model, hp, int(seed), info["losses"], info["train_seconds"],
                            info.get("train_cpu_seconds", float("nan")), threads), folder
    trained = train_model(family, images, seed=seed, hparams=hp, progress=progress, device=dev,
                          threads=threads)
    from safetensors.numpy import save_file
    with store.atomic_path(weights_path, suffix=".safetensors") as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in trained.model.state().items()}, str(tmp))
    store.write_json(info_path, {
        "family": family, "variant": variant, "seed": int(seed), "hparams": hp,
        "train_spec": train_spec(variant, params), "data_hash": data_hash, "n_train": len(images),
        "zoo_version": ZOO_VERSION, "train_seconds": trained.train_seconds,
        "train_cpu_seconds": trained.train_cpu_seconds, "losses": trained.losses, "device": str(dev),
        "torch_threads": threads or torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(),
    })
    return trained, folder


def zoo_samples(family: str, seed: int, variant: str, params: dict[str, Any],
                cache_dir: str | Path | None = None, *, n_samples: int | None = None,
                progress: bool = True, device: str | None = None) -> ZooSamples:
    """Samples of one zoo model: trained-or-loaded, sampled-or-loaded, cached (see module doc).

    Args:
        family: a key of :data:`FAMILIES`; seed: model seed (training and sampling);
        variant: ``standard`` or ``memorize``; params: a profile's parameters (keys ``zoo_*``,
        ``test``, ``device``); cache_dir: cache root (default ``$MEMLIB_CACHE``);
        n_samples: default ``params["zoo_n_samples"]``.
    """
    n = int(n_samples if n_samples is not None else params["zoo_n_samples"])
    images = load_spec_images(train_spec(variant, params))
    folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=store.hash_arrays(images))
    samples_path, manifest_path = folder / f"samples-n{n}.npz", folder / f"manifest-n{n}.json"
    if manifest_path.exists() and samples_path.exists():
        arrays = store.read_npz(samples_path)
        return ZooSamples(arrays.pop("images"), store.read_json(manifest_path), arrays, folder)
    trained, folder = load_or_train(family, variant, seed, params, cache_dir, progress=progress, device=device)
    start, cpu = time.perf_counter(), time.process_time()
    samples, extras = trained.sample(n)
    sample_seconds, sample_cpu = time.perf_counter() - start, time.process_time() - cpu
    test = load_spec_images(params["test"])
    metrics = copy_metrics(samples, images, test, quantile=params.get("zoo_copy_quantile", 0.01))
    metrics.update(pixel_fd(samples, images, test))
    losses = trained.losses
    manifest = {
        "family": family, "variant": variant, "seed": int(seed), "hparams": trained.hparams,
        "train_spec": train_spec(variant, params), "data_hash": store.hash_arrays(images),
        "n_train": len(images), "test_spec": params["test"], "zoo_version": ZOO_VERSION,
        "n_samples": n, "train_seconds": round(trained.train_seconds, 3),
        "train_cpu_seconds": round(trained.train_cpu_seconds, 3),
        "sample_seconds": round(sample_seconds, 3), "sample_cpu_seconds": round(sample_cpu, 3),
        "loss_summary": loss_summary(losses),
        "torch_threads": trained.threads or torch.get_num_threads(), **metrics,
    }
    store.write_npz(samples_path, images=samples, **extras)
    store.write_json(manifest_path, manifest)
    return ZooSamples(samples, manifest, extras, folder)


def loss_summary(losses: list[float], points: int = 20) -> dict[str, Any]:
    """First/last loss and the mean loss in ``points`` equal windows (a compact loss curve)."""
    if not losses:
        return {"n_steps": 0}
    arr = np.asarray(losses, np.float64)
    windows = np.array_split(arr, min(points, len(arr)))
    return {"n_steps": len(arr), "first": float(arr[0]), "last": float(arr[-1]),
            "final_mean": float(windows[-1].mean()),
            "curve": [round(float(w.mean()), 5) for w in windows]}


# --- cheap quality / copying metrics (pixel space) -------------------------------------------------

def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)) of float rows, float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return np.maximum(d, 0)


def nn_distances(queries: np.ndarray, reference: np.ndarray, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-space nearest neighbour of each query image in ``reference``.

    Images are uint8 (N, H, W[, C]); distances are L2 over all pixel values in [0, 1] units
    (784 of them for Fashion-MNIST).
    Returns (distance float64 (n_q,), index int64 (n_q,)). Exact, chunked (never n_q × n_ref at once
    beyond ``chunk`` rows)."""
    q = np.asarray(queries, np.float32).reshape(len(queries), -1) / 255.0
    r = np.asarray(reference, np.float32).reshape(len(reference), -1) / 255.0
    dist, index = np.empty(len(q)), np.empty(len(q), np.int64)
    for s in range(0, len(q), chunk):
        index[s:s + chunk] = _sq_dists(q[s:s + chunk], r).argmin(1)
        # exact distance of the chosen pair (0 for identical images, unlike the expansion above)
        diff = q[s:s + chunk].astype(np.float64) - r[index[s:s + chunk]]
        dist[s:s + chunk] = np.sqrt((diff * diff).sum(1))
    return dist, index


def copy_metrics(samples: np.ndarray, train: np.ndarray, test: np.ndarray, quantile: float = 0.01) -> dict[str, float]:
    """Nearest-neighbour copy check in pixel space.

    ``copy_rate`` is the fraction of samples whose nearest training image is closer than the
    ``quantile`` of held-out test→train nearest-neighbour distances (so an ideal non-copying
    generator scores ≈ ``quantile``); ``nn_ratio`` is the median sample→train distance over the
    median test→train distance (≪ 1: copying; ≫ 1: far from the data)."""
    d_s, _ = nn_distances(samples, train)
    d_t, _ = nn_distances(test, train)
    thr = float(np.quantile(d_t, quantile))
    return {"copy_quantile": float(quantile), "copy_threshold": thr,
            "copy_rate": float((d_s < thr).mean()), "exact_copy_rate": float((d_s == 0).mean()),
            "nn_median": float(np.median(d_s)), "nn_median_test": float(np.median(d_t)),
            "nn_ratio": float(np.median(d_s) / max(np.median(d_t), 1e-12))}


def pixel_fd(samples: np.ndarray, train: np.ndarray, test: np.ndarray, dim: int = 64) -> dict[str, float]:
    """Fréchet distance to the test set in a PCA-``dim`` space of pixels fitted on ``train``.

    A cheap sanity metric (not the study's encoder FD): ``pixel_fd`` for the samples and
    ``pixel_fd_ref`` for as many real training images (the floor a perfect model would reach)."""
    from scipy import linalg
    from sklearn.decomposition import PCA
    flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1) / 255.0  # noqa: E731
    pca = PCA(n_components=min(dim, len(train) - 1), random_state=0).fit(flat(train))
    t = pca.transform(flat(test))

    def fd(a):
        mu1, mu2 = a.mean(0), t.mean(0)
        c1, c2 = np.cov(a, rowvar=False), np.cov(t, rowvar=False)
        covmean = linalg.sqrtm(c1 @ c2)
        return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(covmean)))

    ref = train[np.random.default_rng(0).permutation(len(train))[:len(samples)]]
    return {"pixel_fd": fd(pca.transform(flat(samples))), "pixel_fd_ref": fd(pca.transform(flat(ref)))}


# --- the profile's zoo and the command-line entry points --------------------------------------------

def zoo_models(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (family, variant, seed) of a profile's zoo, in training order."""
    out = [(f, "standard", int(s)) for f in params["zoo_families"] for s in params["zoo_seeds"]]
    out += [(f, "memorize", int(s)) for f in params["zoo_memorize_families"]
            for s in params["zoo_memorize_seeds"]]
    for family, variant, _ in out:
        zoo_hparams(family, variant, params)  # validates early
    return out


def _select(params, families, seeds, variants):
    wanted = zoo_models(params)
    for name, values in (("family", families), ("variant", variants)):
        known = {m[0 if name == "family" else 1] for m in wanted}
        for v in values or []:
            if v not in known:
                raise ParameterError(f"zoo: {name} {v!r} is not in this profile's zoo ({', '.join(sorted(known))})")
    return [m for m in wanted if (not families or m[0] in families) and (not variants or m[1] in variants)
            and (not seeds or m[2] in [int(s) for s in seeds])]


def zoo_list(params: dict[str, Any], cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per zoo model: family, variant, seed, folder, trained?, sampled?, and timings/metrics
    from its manifest when sampled."""
    rows, hashes = [], {}
    n = int(params["zoo_n_samples"])
    for family, variant, seed in zoo_models(params):
        spec = train_spec(variant, params)
        if spec not in hashes:
            hashes[spec] = store.hash_arrays(load_spec_images(spec))
        folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=hashes[spec])
        row = {"family": family, "variant": variant, "seed": seed, "folder": str(folder),
               "trained": (folder / "train.json").exists(),
               "sampled": (folder / f"manifest-n{n}.json").exists()}
        if row["sampled"]:
            m = store.read_json(folder / f"manifest-n{n}.json")
            row.update({k: m.get(k) for k in ("n_samples", "train_seconds", "train_cpu_seconds",
                                               "sample_seconds", "copy_rate", "nn_ratio",
                                               "pixel_fd", "pixel_fd_ref")})
        elif row["trained"]:
            row["train_seconds"] = store.read_json(folder / "train.json")["train_seconds"]
        rows.append(row)
    return rows


# rough cost order (most expensive first), so that parallel workers finish together
_COST_ORDER = ("diffusion", "pixelcnn", "gan", "vae", "gmm", "kde")


def _zoo_job(action: str, family: str, variant: str, seed: int, params: dict[str, Any],
             cache_dir: str | None, n_samples: int | None, device: str | None,
             progress: bool) -> dict[str, Any]:
    """One model's work (train, or train-if-needed and sample); top level so workers can run it."""
    if action == "train":
        trained, folder = load_or_train(family, variant, seed, params, cache_dir, progress=progress, device=device)
        return {"family": family, "variant": variant, "seed": seed, "folder": str(folder),
                "train_seconds": round(trained.train_seconds, 3),
                "train_cpu_seconds": round(trained.train_cpu_seconds, 3)}
    s = zoo_samples(family, seed, variant, params, cache_dir, n_samples=n_samples, progress=progress, device=device)
    return {**s.manifest, "folder": str(s.folder)}


def _worker_main() -> None:
    """Entry point of a zoo worker subprocess: runs JSON jobs read line by line from stdin and
    answers each with one JSON line ``{"ok": true}`` or ``{"ok": false, "error": ...}``."""
    import json
    import sys
    import traceback
    from threadpoolctl import threadpool_limits

    answer, sys.stdout = sys.stdout, sys.stderr  # stdout carries only the answers
    _exit_with_parent()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            with threadpool_limits(limits=int(job["params"].get("zoo_threads") or 1)):
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
    import os
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _run_jobs(action: str, params: dict[str, Any], models: list[tuple[str, str, int]],
              cache_dir, n_samples, device, progress: bool, workers: int | None) -> list[dict[str, Any]]:
    """Run ``_zoo_job`` for every model; with ``workers`` > 1 in that many subprocesses at once.

    Each subprocess (``python -c "from memlib.zoo import _worker_main; ..."``, one job as JSON on
    stdin) writes its model's cache entry atomically and exits; the results are then read back
    from the cache. Subprocesses, unlike multiprocessing, never re-import the caller's
    ``__main__`` (a script, the CLI, a notebook). Results come back in ``models`` order."""
    workers = int(workers if workers is not None else params.get("zoo_workers", 1) or 1)
    order = sorted(range(len(models)), key=lambda i: _COST_ORDER.index(models[i][0])
                   if models[i][0] in _COST_ORDER else -1)
    if workers > 1 and len(models) > 1:
        _run_subprocesses(action, params, [models[i] for i in order], str(_zoo_root(cache_dir).parent.resolve()),
                          n_samples, device, progress, workers)
    results: dict[int, dict[str, Any]] = {}
    with _progress(len(models), f"zoo {action}", progress and workers <= 1) as bar:
        for i in order:  # after the subprocesses, this only loads
            results[i] = _zoo_job(action, *models[i], params, cache_dir, n_samples, device, progress)
            bar.update(1)
    return [results[i] for i in range(len(models))]


def _run_subprocesses(action, params, models, cache_dir, n_samples, device, progress, workers) -> None:
    """Run the jobs in ``workers`` long-lived worker subprocesses fed from one queue."""
    import json
    import os
    import queue
    import subprocess
    import sys
    import tempfile
    import threading

    from .errors import MemlibError

    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-c", "from memlib.zoo import _worker_main; _worker_main()"]
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
        with _progress(len(models), f"zoo {action} ({workers} workers)", progress) as bar:
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


def zoo_train(params: dict[str, Any], families: list[str] | None = None, seeds: list[int] | None = None,
              variants: list[str] | None = None, cache_dir: str | Path | None = None, *,
              progress: bool = True, device: str | None = None,
              workers: int | None = None) -> list[dict[str, Any]]:
    """Train (or find cached) every selected zoo model; one row per model with its folder and
    train_seconds / train_cpu_seconds of the original fit. ``workers`` processes in parallel
    (default ``params["zoo_workers"]``), each with ``params["zoo_threads"]`` torch threads."""
    return _run_jobs("train", params, _select(params, families, seeds, variants), cache_dir, None,
                     device, progress, workers)


def zoo_sample(params: dict[str, Any], families: list[str] | None = None, seeds: list[int] | None = None,
               variants: list[str] | None = None, cache_dir: str | Path | None = None, *,
               n_samples: int | None = None, out: str | Path | None = None, progress: bool = True,
               device: str | None = None, workers: int | None = None) -> list[dict[str, Any]]:
    """Samples (training first where needed) for every selected zoo model, ``workers`` in
    parallel as in :func:`zoo_train`; returns their manifests (with ``folder`` added).

    Call this once before looping over :func:`zoo_samples` (which then only loads). With
    ``out``, also writes ``out/<family>-<variant>-s<seed>.npz`` (``images`` uint8 (n, 28, 28),
    plus kde's ``source_index``) for use outside memlib."""
    models = _select(params, families, seeds, variants)
    rows = _run_jobs("sample", params, models, cache_dir, n_samples, device, progress, workers)
    if out is not None:
        for family, variant, seed in models:
            s = zoo_samples(family, seed, variant, params, cache_dir, n_samples=n_samples, progress=False)
            store.write_npz(Path(out) / f"{family}-{variant}-s{seed}.npz", images=s.images, **s.extras)
    return rows


# --- pictures -----------------------------------------------------------------------------------------

def sample_grid(images: np.ndarray, ncol: int = 10, pad: int = 1, value: int = 255) -> np.ndarray:
    """Tile uint8 images (n, H, W) into one uint8 array (rows·(H+pad)+pad, ncol·(W+pad)+pad)."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), value, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def save_grid_png(images: np.ndarray, path: str | Path, ncol: int = 10, scale: int = 2) -> Path:
    """Write :func:`sample_grid` as a PNG (nearest-neighbour upscaled by ``scale``), atomically."""
    from PIL import Image
    grid = sample_grid(images, ncol)
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    with store.atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return Path(path)
