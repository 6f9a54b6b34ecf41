"""gan: DCGAN-like generator and discriminator."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import TorchFamily, run_steps, seeded_minibatches, to_uint8, to_unit


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


class _ShallowGenerator(nn.Module):
    """One up-sampling step: a linear map to a (H/2)×(W/2) grid, then one stride-2 transposed conv."""

    def __init__(self, latent: int, width: int, shape: tuple[int, int, int]):
        super().__init__()
        w, (h2, w2, c) = width, (shape[0] // 2, shape[1] // 2, shape[2])
        self.net = nn.Sequential(
            nn.Linear(latent, w * h2 * w2), nn.Unflatten(1, (w, h2, w2)), nn.BatchNorm2d(w), nn.ReLU(),
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


class GAN(TorchFamily):
    """DCGAN-like GAN: non-saturating loss, Adam(β1 = 0.5), batch norm in G; G in eval mode
    (running BN stats) to sample. Losses: D's loss per step."""

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
        x = to_unit(images, self.device) * 2 - 1
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.hp["lr"], betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.hp["lr"], betas=(0.5, 0.999))
        batches = seeded_minibatches(len(x), self.hp["batch"])
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
        return run_steps(step, self.hp["steps"], "gan (D loss)", progress)

    @torch.no_grad()
    def sample(self, n):
        self.G.eval()
        out = [self.G(torch.randn(min(500, n - i), self.hp["latent"]).to(self.device))
               for i in range(0, n, 500)]
        return to_uint8((torch.cat(out) + 1) / 2), {}


class ShallowGAN(GAN):
    """Architecture ``gan-shallow`` of family gan: the generator up-samples once
    (:class:`_ShallowGenerator`) instead of twice; discriminator, loss and training as :class:`GAN`."""

    name = "gan-shallow"
    family = "gan"

    def _build(self):
        self.G = _ShallowGenerator(self.hp["latent"], self.hp["width"], self.shape).to(self.device)
        self.D = _Discriminator(self.hp["width"], self.shape).to(self.device)
