"""The networks of the encoders this study trains itself (docs/design.md#trained-encoders).

Two kinds, each built from a recipe (a mapping checked by :func:`memlib.trained_encoders.check_recipe`):

* ``vit`` — a plain timm ``VisionTransformer`` at the images' native size: ``patch``-px patches,
  ``depth`` blocks of width ``width`` with ``heads`` heads and MLP ratio ``mlp_ratio``, a CLS token,
  learned position embeddings, a final LayerNorm and a linear head on the CLS token. Its
  :class:`~memlib.encoders.Encoder` is the one every ViT of the registry uses.
* ``cnn`` — :class:`ResNet`, a small pre-activation ResNet whose layers are its residual blocks,
  viewed through :class:`CNNEncoder`: a layer's feature is the global average of its block's
  output over the spatial positions.

Both take the preprocessed images of :meth:`memlib.encoders.Encoder.preprocess`: float32
(B, 3, S, S), ImageNet-normalised, grey replicated to three channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoders import Encoder

N_CHANNELS = 3   # Encoder.preprocess always gives three channels


class _Block(nn.Module):
    """Pre-activation basic block: x + conv(relu(bn(conv(relu(bn(x)))))), width kept.

    With ``stride`` 2 the residual path strides its first conv and the shortcut is a 2×2 average
    pool (parameter-free, so every block keeps the same width)."""

    def __init__(self, width: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x)))
        h = self.conv2(F.relu(self.bn2(h)))
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, ceil_mode=True, count_include_pad=False)
        return x + h


class ResNet(nn.Module):
    """A small pre-activation ResNet of constant width.

    ``stem``: a 3×3 conv (3 → ``width`` channels, stride ``stem_stride``); then ``len(stages)``
    stages of ``stages[i]`` blocks (:class:`_Block`), every stage after the first halving the
    resolution in its first block; ``norm``: BatchNorm1d of the pooled last block (the "final
    norm"); ``head``: linear to ``n_classes``.

    Every block has the same width so that every layer has the same feature dimension D, which
    the feature cache stores one of per entry (:mod:`memlib.features`). For 28-px images,
    ``stem_stride`` 2 and 3 stages the blocks work at 14, 7 and 4 px.
    """

    def __init__(self, width: int, stages: list[int], stem_stride: int, n_classes: int):
        super().__init__()
        self.width = int(width)
        self.stem = nn.Conv2d(N_CHANNELS, width, 3, stride=stem_stride, padding=1, bias=False)
        self.blocks = nn.ModuleList(
            _Block(width, 2 if (s > 0 and b == 0) else 1)
            for s, n in enumerate(stages) for b in range(n))
        self.norm = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, n_classes)

    def block_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output of a preprocessed batch (B, 3, S, S): ``len(blocks)`` tensors
        (B, width, h, w)."""
        x = self.stem(x)
        outs = []
        for blk in self.blocks:
            x = blk(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes) of a preprocessed batch (B, 3, S, S)."""
        return self.head(self.norm(self.block_maps(x)[-1].mean((2, 3))))

    def init_weights(self) -> None:
        """Fresh initialisation from torch's global RNG (the ``+random`` control): Kaiming-normal
        convs, unit BatchNorm, default linear."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                m.reset_parameters()


def build_net(recipe: Mapping[str, Any], n_classes: int) -> nn.Module:
    """The untrained network of a checked recipe, initialised from torch's global RNG (seed it
    first for a reproducible start). ``vit``: a timm VisionTransformer; ``cnn``: :class:`ResNet`."""
    if recipe["kind"] == "vit":
        from timm.models.vision_transformer import VisionTransformer
        return VisionTransformer(
            img_size=recipe["image_size"], patch_size=recipe["patch"], in_chans=N_CHANNELS,
            num_classes=n_classes, global_pool="token", embed_dim=recipe["width"],
            depth=recipe["depth"], num_heads=recipe["heads"], mlp_ratio=recipe["mlp_ratio"],
            class_token=True, drop_rate=0.0, drop_path_rate=0.0)
    net = ResNet(recipe["width"], list(recipe["stages"]), recipe["stem_stride"], n_classes)
    net.init_weights()
    return net


def n_params(net: nn.Module) -> int:
    """Number of trainable parameters (head included)."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


@dataclass
class CNNEncoder(Encoder):
    """An :class:`~memlib.encoders.Encoder` over a :class:`ResNet`: its layers are the residual
    blocks, a layer's feature is the block output averaged over the spatial positions (B, width).

    A CNN has no CLS token: ``layer_tokens`` gives the same pooled array under ``cls`` and
    ``mean``, so both tokens score the same features. ``final_norm`` applies the net's final
    BatchNorm1d (per-channel affine in eval mode, so it commutes with the pooling and the
    inherited :meth:`apply_final_norm` on cached pooled features is exact). ``n_layers`` and
    ``apply_final_norm`` are the ViT encoder's: the net has ``blocks`` and ``norm`` too."""

    @property
    def dim(self) -> int:
        return int(self.model.width)

    @torch.inference_mode()
    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output of a preprocessed batch (B, 3, S, S): ``n_layers`` tensors
        (B, width, h, w)."""
        return self.model.block_maps(x.to(self.device))

    @torch.inference_mode()
    def layer_tokens(self, images: np.ndarray, *, final_norm: bool = False
                     ) -> dict[str, list[np.ndarray]]:
        """Per-layer pooled features of a uint8 batch (B, H, W, C):
        ``{"cls": [L × (B, D)], "mean": [L × (B, D)]}`` float32, the two lists equal."""
        x = self.preprocess(images)
        use_amp = self.precision == "bfloat16-autocast"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            outs = self.block_outputs(x)
        pooled = []
        for h in outs:
            v = h.float().mean((2, 3))
            if final_norm:
                v = self.model.norm(v)
            pooled.append(v.cpu().numpy())
        return {"cls": pooled, "mean": [p.copy() for p in pooled]}
