"""Which batch sizes give the same features: ``python -m bench.batch_invariance``.

Embeds the same Fashion-MNIST test images with the tiny test ViT (32 px, random weights) and the
default encoder (DINOv2-S/14 offline weights, 112 px), in float32 and in bf16 autocast, at
several batch sizes, and prints per (encoder, precision, batch size) the largest difference of
the CLS features (all layers) from one pass in batches of 64, the share of float16-cached
values that differ, and whether the float32 outputs are bit-identical. The numbers behind
docs/reproducibility.md#batch-size-rule; run it on each CPU kind and keep its output in
``bench/<cpu-kind>/batch-invariance.txt``.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from memlib.data import load_images
from memlib.encoders import build_encoder
from memlib.machine import cpu_model

ENCODERS = (("timm:vit_tiny_patch16_224+random", 32), ("dinov2-s-offline", 112))
BATCH_SIZES = (1, 7, 8, 16, 32, 40, 63)


def cls_features(encoder, images: np.ndarray, batch_size: int) -> np.ndarray:
    """(L, N, D) float32 CLS features of ``images`` embedded ``batch_size`` at a time."""
    parts = [np.stack(encoder.layer_tokens(images[s:s + batch_size])["cls"])
             for s in range(0, len(images), batch_size)]
    return np.concatenate(parts, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_invariance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="images (default 64)")
    args = parser.parse_args(argv)
    images = load_images(f"fashion-mnist:test[:{args.n}]").images
    print(f"# {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.n} images; reference: batches of 64")
    for name, size in ENCODERS:
        for precision in ("float32", "bfloat16"):
            encoder = build_encoder(name, size, "cpu", precision=precision)
            base = cls_features(encoder, images, 64)
            for batch_size in BATCH_SIZES:
                other = cls_features(encoder, images, batch_size)
                diff = np.abs(other - base)
                f16 = np.mean(other.astype(np.float16) != base.astype(np.float16))
                print(f"{name:34s} {size:3d}px {encoder.precision:17s} batch {batch_size:2d}: "
                      f"max|Δ|={diff.max():.2e} (of max|x| {np.abs(base).max():.2f}) "
                      f"float16 values differing={f16:.2%} bit-identical={np.array_equal(other, base)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
