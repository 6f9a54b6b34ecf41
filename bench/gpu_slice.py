"""A 1-model slice of the ``full`` profile on synthetic images, on the GPU (issue 34; run by
bench/gpu_check.sh).

``python -m bench.gpu_slice --out FILE [--n-train 10000 --n-test 5000 --n-gen 5000]``: makes
synthetic 32×32 colour images (smooth random blobs; the generated set is half noisy copies of
T, half fresh), embeds T, P and the generated set with the ``full`` profile's encoder
(DINOv2 ViT-L/14 at 224 px; its weights download from the hub, or pass --encoder NAME@FILE),
device and precision (``auto``: bf16 autocast on CUDA), scores the C_T-layer curve from the
full features and from the projected store (float16), and writes one JSON with images/s per
set, seconds per phase, peak GPU memory, bytes per image of both stores and the curves'
largest difference.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def synthetic_images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """uint8 (n, size, size, 3): sums of a few random Gaussian blobs per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((n, size, size, 3), np.float32)
    for _ in range(4):
        cy, cx = rng.uniform(0, size, (2, n, 1, 1))
        width = rng.uniform(3, 10, (n, 1, 1))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        out += blob[..., None] * rng.uniform(0, 1, (n, 1, 1, 3))
    out = out / out.max(axis=(1, 2, 3), keepdims=True)
    return (out * 255).astype(np.uint8)


def main(argv=None) -> int:
    import torch

    from memlib.ct import fit_reference
    from memlib.data import ImageSet
    from memlib.features import embed
    from memlib.params import load_params
    from memlib.projected import bytes_per_image, embed_projected, fit_basis, project

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_slice")
    parser.add_argument("--out", required=True)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=5_000)
    parser.add_argument("--n-gen", type=int, default=5_000)
    parser.add_argument("--encoder", help="default: the full profile's")
    parser.add_argument("--cache", default=".cache/gpu-slice")
    args = parser.parse_args(argv)
    p = load_params("full")
    encoder = args.encoder or p["encoder"]
    train = synthetic_images(args.n_train, 0)
    test = synthetic_images(args.n_test, 1)
    gen = synthetic_images(args.n_gen, 2)
    half = args.n_gen // 2
    noisy = train[:half].astype(np.int16) + np.random.default_rng(3).integers(-4, 5, train[:half].shape)
    gen[:half] = np.clip(noisy, 0, 255).astype(np.uint8)
    sets = {name: ImageSet(x, np.arange(len(x)).astype(str), name=name)
            for name, x in (("T", train), ("P", test), ("Q", gen))}
    kw = dict(image_size=p["image_size"], batch_size=p["batch_size"], device=p["device"],
              precision=p["precision"], cache_dir=args.cache)
    result = dict(encoder=encoder, **{k: v for k, v in kw.items() if k != "cache_dir"},
                  cuda=torch.cuda.is_available(),
                  gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    feats = {}
    for name, images in sets.items():
        t0 = time.perf_counter()
        feats[name] = embed(images, encoder, **kw)
        secs = time.perf_counter() - t0
        result[f"embed_{name}_s"] = secs
        result[f"embed_{name}_img_per_s"] = len(images) / secs
    t0 = time.perf_counter()
    ref = fit_reference(feats["T"], feats["P"], pca_dim=p["pca_dim"], n_cells=p["n_cells"])
    full_curve = ref.curve(feats["Q"])
    result["ct_full_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    basis = fit_basis(feats["T"], pca_dim=p["pca_dim"], cache_dir=args.cache)
    tp = project(feats["T"], basis, cache_dir=args.cache)
    pp = embed_projected(sets["P"], encoder, basis, **{**kw, "cache_dir": Path(args.cache) / "proj-only"})
    qp = embed_projected(sets["Q"], encoder, basis, **{**kw, "cache_dir": Path(args.cache) / "proj-only"})
    result["projected_store_s"] = time.perf_counter() - t0
    proj_curve = fit_reference(tp, pp, pca_dim=p["pca_dim"], n_cells=p["n_cells"]).curve(qp)
    n_layers, dim = len(feats["T"]), feats["T"].dim
    result.update(n_layers=n_layers, dim=dim, ct_full=full_curve.tolist(),
                  ct_projected_float16=proj_curve.tolist(),
                  max_abs_ct_difference=float(np.nanmax(np.abs(full_curve - proj_curve))),
                  bytes_per_image_full=bytes_per_image(n_layers, dim),
                  bytes_per_image_projected=bytes_per_image(n_layers, dim, pca_dim=p["pca_dim"]),
                  peak_gpu_memory_bytes=(torch.cuda.max_memory_allocated()
                                         if torch.cuda.is_available() else None))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
