"""diffusion: a small UNet trained as a DDPM, sampled with DDIM."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import TorchFamily, run_steps, seeded_minibatches, to_uint8, to_unit


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


class Diffusion(TorchFamily):
    """DDPM with a small UNet (v-prediction, cosine schedule, EMA weights); deterministic DDIM
    (η = 0) sampling in few steps, with the predicted clean image clipped to [-1, 1] at each
    step. v-prediction (Salimans & Ho 2022) trains faster than ε-prediction in a short CPU
    budget (ε gave washed-out samples). Losses: the v-prediction MSE."""

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
        x = to_unit(images, self.device) * 2 - 1
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = seeded_minibatches(len(x), self.hp["batch"])
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
        losses = run_steps(step, self.hp["steps"], "diffusion", progress)
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
        return to_uint8((torch.cat(out) + 1) / 2), {}


class NarrowDiffusion(Diffusion):
    """Architecture ``diffusion-narrow`` of family diffusion: the same UNet design at its own
    ``width`` (params: half the standard one) and its own number of DDIM ``sample_steps``; the
    training recipe of :class:`Diffusion`."""

    name = "diffusion-narrow"
    family = "diffusion"
