"""pixelcnn: a shallow PixelCNN with a discretised logistic mixture output."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ParameterError
from .base import TorchFamily, run_steps, seeded_minibatches, to_uint8, to_unit


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


class PixelCNN(TorchFamily):
    """Shallow PixelCNN: one large causal (type-A masked) convolution + a coarse (4×4-pooled)
    view of the complete rows above + per-position bias + 1×1 residual layers, discretised
    logistic mixture output over 256 levels; exact autoregressive sampling in raster order, one
    pixel at a time for the whole batch (H·W steps). Losses in bits per pixel."""

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
        x01 = to_unit(images, self.device)
        target = (x01 * 2 - 1).flatten(2).transpose(1, 2)  # (N, H·W, C) in [-1, 1]
        c = self.shape[2]
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hp["lr"])
        batches = seeded_minibatches(len(x01), self.hp["batch"])
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
        return run_steps(step, self.hp["steps"], "pixelcnn (bits/px)", progress)

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
        return to_uint8(torch.cat(out)), {}
