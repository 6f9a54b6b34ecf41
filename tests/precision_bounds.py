"""How far bf16-autocast features may lie from another computation of the same features.

bfloat16 keeps 8 significant bits (7 stored + 1 implicit), so one rounding that lands on the
other neighbour moves a value by one unit in the last place: at most 2**-7 of its magnitude.
Under autocast a ViT rounds to bf16 at every matmul; fp32 accumulation order (which the CPU's
GEMM kernels choose by batch size, e.g. AMX tiles on the Intel Xeon) or float32 arithmetic
instead of bf16 decides which neighbour a value lands on. To first order, each rounding point
on the residual stream adds one such step: the patch embedding, then two branches (attention,
MLP) per block. The features after block ``l`` (0-based) therefore stay within

    (1 + 2 (l + 1)) * 2**-7 * max |h_l|

of each other, ``max |h_l|`` the layer's largest magnitude (first-order: amplification by later
blocks is neglected). Measured on the AMD EPYC (docs/reproducibility.md#batch-size-rule): bf16
against float32 uses at most 0.32 of this bound (block 1 of DINOv2-S/14), batches of 7 against
40 under bf16 on the AMD EPYC 0 of it, and the Intel Xeon's 2.6e-3 across batch sizes is
below it at every layer of the tiny test ViT (bound 7.3e-3 at block 1, 0.25 at block 12).
The bound comes from the format and the depth, not from one machine's run.
"""
from __future__ import annotations

import numpy as np

BF16_ULP = 2.0 ** -7


def bf16_bound(layer: int, reference: np.ndarray) -> float:
    """Largest difference allowed between two computations of block ``layer``'s features
    (0-based) when at least one is bf16 autocast; ``reference`` (N, D) sets the magnitude."""
    return (1 + 2 * (layer + 1)) * BF16_ULP * float(np.abs(reference).max())


def assert_within_bf16_bound(got: np.ndarray, reference: np.ndarray, layer: int) -> float:
    """Assert ``|got - reference| <= bf16_bound`` element-wise; returns the used fraction."""
    bound = bf16_bound(layer, reference)
    worst = float(np.abs(np.asarray(got, np.float32) - np.asarray(reference, np.float32)).max())
    assert worst <= bound, f"block {layer + 1}: max |diff| {worst:.3g} > bf16 bound {bound:.3g}"
    return worst / bound
