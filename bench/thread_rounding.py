"""What the torch thread count changes in the ViT's features: ``python -m bench.thread_rounding``.

Embeds the same Fashion-MNIST test images with the default encoder at 1 thread and at every
other count up to the available cores, in float32 and in bf16 autocast, and prints per
precision and count the largest and median relative difference ‖Δ‖/‖x‖ of the CLS features
(per image, over all 12 layers) against 1 thread, and whether they are bit-identical. The
numbers go to docs/reproducibility.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from memlib.data import load_images
from memlib.encoders import build_encoder
from memlib.machine import available_cores


def layer_features(images: np.ndarray, precision: str, threads: int) -> np.ndarray:
    """(L, N, D) CLS features of ``images`` computed with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    encoder = build_encoder("dinov2-s-offline", 112, "cpu", precision=precision)
    return np.stack(encoder.layer_tokens(images)["cls"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.thread_rounding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="images (default 256)")
    args = parser.parse_args(argv)
    images = load_images(f"fashion-mnist:test[:{args.n}]").images
    counts = list(range(2, available_cores() + 1)) or [1]
    for precision in ("float32", "bfloat16"):
        base = layer_features(images, precision, 1)
        for threads in counts:
            other = layer_features(images, precision, threads)
            rel = np.linalg.norm(other - base, axis=2) / np.linalg.norm(base, axis=2)
            print(f"{precision:9s} {threads} vs 1 thread: identical={np.array_equal(other, base)} "
                  f"max ‖Δ‖/‖x‖={rel.max():.2e} median={np.median(rel):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
