"""FLOPs of the study's compute, counted from the code (docs/performance.md#the-compute-floor).

* :func:`vit_flops` (:func:`encoder_flops`, :func:`trained_encoder_flops` for the encoders
  trained here): one forward pass of a registry encoder (the exact
  :meth:`memlib.encoders.Encoder.block_outputs` the cache runs) under
  ``torch.utils.flop_counter.FlopCounterMode``; attention's two matmuls are added as
  ``4·T²·D`` per block when the counter did not see them (its CPU attention kernel is not
  registered), and the non-matmul work is counted separately as element operations.
* :func:`zoo_train_step_flops` / :func:`zoo_sample_flops`: one training step (forward, backward,
  both networks of a GAN) of a zoo architecture at a recipe, by running its own ``fit`` for one
  step under the counter, and its sampler (DDIM steps, PixelCNN's pixel-by-pixel loop) on a few
  samples, scaled linearly.
* :func:`kde_fit_flops` / :func:`gmm_fit_flops`: the two numpy/sklearn families, by formula
  (no torch op to count).

Units: FLOPs, a multiply-add = 2 (the counter's convention and the matmul rates').
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

IMAGE_SHAPE = (28, 28, 1)   # Fashion-MNIST, the default profile's zoo data (H, W, C)


class ElementOps(TorchDispatchMode):
    """Counts one operation per output element of every aten op that is neither a view nor one
    of the matmul-like ops ``FlopCounterMode`` counts (GELU, LayerNorm, softmax, adds, copies,
    optimiser updates...): a proxy for the non-matmul work, not FLOPs of the matmul kind."""

    def __init__(self, matmul_ops):
        super().__init__()
        self.matmul_ops = {getattr(op, "_overloadpacket", op) for op in matmul_ops}
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view and func._overloadpacket not in self.matmul_ops:
            outs = out if isinstance(out, (tuple, list)) else (out,)
            self.count += sum(t.numel() for t in outs if isinstance(t, torch.Tensor))
        return out


@contextlib.contextmanager
def counting():
    """Count FLOPs and element ops of the block: yields a dict filled on exit with ``matmul``
    (FLOPs of every op FlopCounterMode knows, by op name in ``by_op``), ``elementwise``."""
    result: dict[str, Any] = {}
    counter = FlopCounterMode(display=False)
    elements = ElementOps(counter.flop_registry)
    with counter, elements:
        yield result
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    result.update(matmul=float(sum(by_op.values())), by_op=by_op, elementwise=float(elements.count))


def _count_blocks(enc, image_size: int, *, attention: bool) -> dict[str, float]:
    """:func:`counting` over ``enc.block_outputs`` of one zero image (1, 3, S, S): the dict
    :func:`vit_flops` returns. ``attention``: a transformer, whose ``tokens``/``dim`` are its
    outputs' (B, T, D) and whose attention is added as ``4·T²·D`` per block where the counter
    did not see it; else a CNN (outputs (B, C, h, w): ``tokens`` = h·w, ``dim`` = C, no attention)."""
    x = torch.zeros(1, 3, image_size, image_size)
    with counting() as c:
        outs = enc.block_outputs(x)
    blocks = len(outs)
    if not attention:
        return {"matmul": c["matmul"], "attention": 0.0, "attention_added": 0.0,
                "elementwise": c["elementwise"], "tokens": int(outs[0].shape[2] * outs[0].shape[3]),
                "dim": int(outs[0].shape[1]), "blocks": blocks}
    tokens, dim = int(outs[0].shape[1]), int(outs[0].shape[2])
    attention_seen = {k: v for k, v in c["by_op"].items() if "attention" in k}
    flops = float(sum(attention_seen.values())) or float(blocks * 4 * tokens * tokens * dim)
    matmul = c["matmul"] + (0.0 if attention_seen else flops)
    return {"matmul": matmul, "attention": flops, "attention_added": float(not attention_seen),
            "elementwise": c["elementwise"], "tokens": tokens, "dim": dim, "blocks": blocks}


@functools.lru_cache(maxsize=16)
def vit_flops(encoder: str, image_size: int) -> dict[str, float]:
    """FLOPs of one image through every block of ``encoder`` at ``image_size`` px.

    Built as ``<encoder>+random`` (same shapes, no weights read; ``+`` controls of the name are
    kept), float32, batch of 1. Returns ``matmul`` (linear layers and patch conv as counted, plus
    attention), ``attention`` (the QKᵀ and AV part), ``attention_added`` (1.0 when it was added
    by formula), ``elementwise`` (element ops, see :class:`ElementOps`), ``tokens``, ``dim``,
    ``blocks``. Memoised per process (do not change the returned dict)."""
    from memlib.encoders import build_encoder
    base = encoder.split("+")[0]
    return _count_blocks(build_encoder(f"{base}+random", image_size, "cpu", "float32"), image_size,
                         attention=True)


def trained_encoder_flops(recipe: dict[str, Any], image_size: int) -> dict[str, float]:
    """:func:`vit_flops` for an encoder trained here (``memlib.trained_encoders``): the same
    count on an untrained network of its ``recipe`` (a checked entry of the profile's
    ``trained_encoders``; shapes are all that matter), through its own ``block_outputs``.
    A ``cnn`` has no attention (``attention`` 0) and ``tokens`` is its first block's spatial
    positions."""
    from memlib.trained_encoders import _fresh
    _, enc = _fresh("floor", "0" * 16, recipe, 10, torch.device("cpu"))
    return _count_blocks(enc, image_size, attention=recipe["kind"] != "cnn")


def encoder_flops(encoder: str, image_size: int, params: dict[str, Any]) -> dict[str, float]:
    """FLOPs of one image through ``encoder`` as a ledger names it: an encoder trained here
    (``<name>@<key>``, its recipe in ``params["trained_encoders"]``) by
    :func:`trained_encoder_flops`, any other by :func:`vit_flops`; ``+`` controls keep the shapes."""
    base = encoder.split("+")[0]
    if "@" in base and base.split("@")[0] in (params.get("trained_encoders") or {}):
        from memlib.trained_encoders import recipes
        return trained_encoder_flops(recipes(params)[base.split("@")[0]], image_size)
    return vit_flops(base, image_size)


def hand_vit_flops(*, blocks: int, tokens: int, dim: int, mlp_hidden: int, patch_in: int,
                   n_patches: int) -> float:
    """The textbook count of a ViT forward pass (FLOPs, multiply-add = 2): per block the
    linear layers qkv (D→3D), proj (D→D), fc1 (D→H), fc2 (H→D) on every token,
    ``2·T·(4D² + 2DH)``, and attention ``4·T²·D`` (QKᵀ and AV); plus the patch embedding
    ``2·P·patch_in·D``. Biases, norms and activations are not counted."""
    per_block = 2 * tokens * (4 * dim * dim + 2 * dim * mlp_hidden) + 4 * tokens * tokens * dim
    return float(blocks * per_block + 2 * n_patches * patch_in * dim)


def _family(architecture: str, hparams: dict[str, Any]):
    from memlib.zoo import FAMILIES
    return FAMILIES[architecture](dict(hparams), torch.device("cpu"))


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *IMAGE_SHAPE), dtype=np.uint8)


def zoo_train_step_flops(architecture: str, hparams: dict[str, Any], n_train: int) -> dict[str, float]:
    """FLOPs of one training step of a torch zoo architecture at its recipe ``hparams``:
    ``fit`` run for one step (``steps: 1``) on random uint8 images of :data:`IMAGE_SHAPE` under
    the counter. The batch is ``min(batch, n_train)`` as in training (a model of the
    memorization gradient trained on 16 images steps on batches of 16). Returns ``matmul`` and
    ``elementwise`` (forward and backward, optimiser included in the element ops)."""
    from memlib.zoo.families.base import seeded
    hp = dict(hparams, steps=1)
    model = _family(architecture, hp)
    images = _images(min(int(hp["batch"]), int(n_train)))
    with seeded(0), counting() as c:
        model.fit(images, False)
    return {"matmul": c["matmul"], "elementwise": c["elementwise"]}


def zoo_sample_flops(architecture: str, hparams: dict[str, Any], n: int, probe: int = 8) -> dict[str, float]:
    """FLOPs of drawing ``n`` samples: ``probe`` samples drawn under the counter from a model
    fitted for one step, times ``n / probe`` (every sampler's work is linear in the number of
    samples: DDIM runs ``sample_steps`` UNet passes per sample, PixelCNN one net step per pixel
    per sample, VAE/GAN one decoder pass)."""
    from memlib.zoo.families.base import seeded
    hp = dict(hparams, steps=1)
    model = _family(architecture, hp)
    with seeded(0):
        model.fit(_images(min(int(hp["batch"]), 64)), False)
    with seeded(1), counting() as c:
        model.sample(int(probe))
    scale = n / probe
    return {"matmul": c["matmul"] * scale, "elementwise": c["elementwise"] * scale}


def kde_fit_flops(n_train: int, pixels: int = 784, grid: int = 31) -> float:
    """``sigma: ml`` (memlib/zoo/families/kde.py): the distances of the 10 % held-out images to
    the other 90 % as one float64 GEMM, ``2·n_val·n_fit·pixels``, and per bandwidth of the grid
    about 4 operations per distance (scale, exp, sum, max). A fixed σ: 0."""
    n_val = max(1, n_train // 10)
    n_fit = n_train - n_val
    return float(2 * n_val * n_fit * pixels + grid * 4 * n_val * n_fit)


def gmm_fit_flops(n_train: int, hp: dict[str, Any], pixels: int = 784) -> float:
    """An upper bound for the GMM (memlib/zoo/families/gmm.py, sklearn, float64): the PCA as a
    full Gram matrix, ``2·N·pixels²``, and ``max_iter`` EM iterations (sklearn stops earlier
    at tol 1e-3, so the bound), each ``4·N·K·d²`` for full covariances (the Cholesky solve of
    every point against every component's factor, and the weighted covariance update) or
    ``8·N·K·d`` for diagonal ones."""
    d, k, iters = int(hp["pca_dim"]), int(hp["n_components"]), int(hp["max_iter"])
    per_iter = 4 * n_train * k * d * d if hp["covariance"] == "full" else 8 * n_train * k * d
    return float(2 * n_train * pixels * pixels + iters * per_iter)
