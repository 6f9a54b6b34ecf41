"""vae: convolutional variational auto-encoder."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import TorchFamily, run_steps, seeded_minibatches, to_uint8, to_unit


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


class _MLPDecoderVAENet(_VAENet):
    """The same conv encoder; the decoder a 2-hidden-layer MLP straight to H·W·C logits (no
    spatial prior: every pixel is a separate output unit)."""

    def __init__(self, latent: int, width: int, hidden: int, shape: tuple[int, int, int]):
        super().__init__(latent, width, shape)
        h, w, c = shape
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, c * h * w), nn.Unflatten(1, (c, h, w)))


class VAE(TorchFamily):
    """Convolutional VAE, Bernoulli likelihood on [0, 1] pixels; sample = decoder mean for
    z ~ N(0, I). Losses in nats per pixel."""

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
        x = to_unit(images, self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = seeded_minibatches(len(x), self.hp["batch"])
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
        return run_steps(step, self.hp["steps"], "vae", progress)

    @torch.no_grad()
    def sample(self, n):
        self.net.eval()
        out = [torch.sigmoid(self.net.dec(torch.randn(min(500, n - i), self.hp["latent"]).to(self.device)))
               for i in range(0, n, 500)]
        return to_uint8(torch.cat(out)), {}


class VAEMLPDecoder(VAE):
    """Architecture ``vae-mlp`` of family vae: the conv encoder of :class:`VAE` with an MLP
    decoder (:class:`_MLPDecoderVAENet`); trained and sampled exactly as :class:`VAE`."""

    name = "vae-mlp"
    family = "vae"
    hparams_doc = {**VAE.hparams_doc, "hidden": "units of each of the decoder's two hidden layers"}

    def _build(self):
        self.net = _MLPDecoderVAENet(self.hp["latent"], self.hp["width"], self.hp["hidden"], self.shape).to(self.device)
