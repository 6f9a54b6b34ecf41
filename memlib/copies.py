"""Controlled memorization sets: generated sets built from data, where we know what is copied.

Every builder maps source training images ``uint8 (m, 28, 28)`` to copies of the same shape,
deterministically for a given ``seed``:

* ``exact`` — the sources verbatim;
* ``low-level`` — keeps a source's exact pixel values (its intensity histogram) and local
  patterns inside tiles, destroys its layout and meaning: the image is cut into square tiles
  that are randomly permuted. The tile grid starts at a random offset (circular shift), so it
  does not line up with a ViT's token grid (a ViT without position embeddings is permutation
  equivariant: token-aligned shuffles would test positional sensitivity, not low-level memory).
  ``strength`` sets the tile side: ≤0.25 → 14 px (2×2 tiles), ≤0.5 → 7 px, ≤0.75 → 4 px,
  else 2 px (14×14 tiles);
* ``high-level`` — keeps shape, pose and class, changes pixel-level detail: a random affine map
  (rotation ±10°·s, translation ±2 px·s, scale 1 ± 0.1·s), gamma in [0.7^s, 0.7^-s]
  (log-uniform), contrast about the image mean ×(1 ± 0.25·s), then Gaussian blur with σ in
  [0.3·s, 0.6·s] px. ``strength`` s = 1 is the probe's "full strength" (research notes §4);
  s = 0 is the identity.

:func:`kde_samples` is Meehan et al.'s kernel-density generator (a random training image plus
Gaussian pixel noise of bandwidth σ) and :func:`mix` builds a set with copy fraction ρ.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import InputError

KINDS = ("exact", "low-level", "high-level")


def _check(sources: np.ndarray) -> np.ndarray:
    x = np.asarray(sources)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.dtype != np.uint8 or x.ndim != 3:
        raise InputError(f"copies: sources must be uint8 (m, H, W), got {x.dtype} {x.shape}")
    return x


def tile_size(strength: float) -> int:
    """Tile side in px (28-px images) for a low-level strength in (0, 1]."""
    return 14 if strength <= 0.25 else 7 if strength <= 0.5 else 4 if strength <= 0.75 else 2


def tile_shuffle(image: np.ndarray, tile: int, rng: np.random.Generator) -> np.ndarray:
    """Permute the ``tile``×``tile`` tiles of one (H, W) image on a randomly offset grid."""
    h, w = image.shape
    if h % tile or w % tile:
        raise InputError(f"tile {tile} does not divide image size {h}×{w}")
    dy, dx = rng.integers(0, tile, size=2)
    x = np.roll(image, (-dy, -dx), axis=(0, 1))
    tiles = x.reshape(h // tile, tile, w // tile, tile).transpose(0, 2, 1, 3).reshape(-1, tile, tile)
    tiles = tiles[rng.permutation(len(tiles))]
    x = tiles.reshape(h // tile, w // tile, tile, tile).transpose(0, 2, 1, 3).reshape(h, w)
    return np.roll(x, (dy, dx), axis=(0, 1))


def jitter(image: np.ndarray, strength: float, rng: np.random.Generator,
           parts: tuple[str, ...] = ("affine", "photometric", "blur")) -> np.ndarray:
    """High-level copy of one (H, W) uint8 image (see module docstring for the ranges)."""
    s = float(strength)
    x = image.astype(np.float64) / 255.0
    h, w = x.shape
    if "affine" in parts:
        angle = np.deg2rad(rng.uniform(-10, 10) * s)
        scale = rng.uniform(1 - 0.1 * s, 1 + 0.1 * s)
        shift = rng.uniform(-2 * s, 2 * s, size=2)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        centre = np.array([(h - 1) / 2, (w - 1) / 2])
        offset = centre - rot @ (centre + shift)
        x = ndimage.affine_transform(x, rot, offset=offset, order=1, mode="constant", cval=0.0)
    if "photometric" in parts:
        gamma = np.exp(rng.uniform(np.log(0.7) * s, -np.log(0.7) * s))
        x = np.clip(x, 0, 1) ** gamma
        mean = x.mean()
        x = mean + (x - mean) * rng.uniform(1 - 0.25 * s, 1 + 0.25 * s)
    if "blur" in parts and s > 0:
        x = ndimage.gaussian_filter(x, sigma=rng.uniform(0.3 * s, 0.6 * s), mode="constant")
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def make_copies(kind: str, sources: np.ndarray, *, strength: float = 1.0, seed: int = 0,
                parts: tuple[str, ...] = ("affine", "photometric", "blur")) -> np.ndarray:
    """Copies of ``sources`` (uint8 (m, H, W)) of one kind; returns uint8 (m, H, W).

    ``parts`` selects single components of the high-level transformation (e.g. ``("blur",)``).
    """
    x = _check(sources)
    if kind not in KINDS:
        raise InputError(f"unknown copy kind {kind!r}; known: {', '.join(KINDS)}")
    if kind != "exact" and not 0 <= strength <= 2:
        raise InputError(f"copy strength must be in [0, 2], got {strength}")
    rng = np.random.default_rng(seed)
    if kind == "exact":
        return x.copy()
    if kind == "low-level":
        tile = tile_size(strength)
        return np.stack([tile_shuffle(im, tile, rng) for im in x])
    return np.stack([jitter(im, strength, rng, parts) for im in x])


def kde_samples(train: np.ndarray, *, sigma: float, m: int, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Meehan's KDE generator: ``m`` samples, each a random training image + N(0, σ²) noise.

    Args:
        train: uint8 (N, H, W) or (N, H, W, 1) training images.
        sigma: bandwidth in [0, 1] pixel units (0 = exact copies).
        m: number of samples.

    Returns:
        images uint8 (m, H, W) (clipped, rounded) and source_index int64 (m,) into ``train``.
    """
    x = _check(train)
    if sigma < 0:
        raise InputError(f"KDE bandwidth must be ≥ 0, got {sigma}")
    rng = np.random.default_rng(seed)
    source_index = rng.integers(0, len(x), size=m)
    noisy = x[source_index] / 255.0 + rng.normal(0.0, sigma, size=(m,) + x.shape[1:])
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8), source_index.astype(np.int64)


def mix(copies: np.ndarray, fresh: np.ndarray, rho: float, *, source_index: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A generated set of size m with copy fraction ρ: the first round(ρm) copies, then fresh.

    Returns images (m, …), is_copy bool (m,), source index int64 (m,) (−1 for fresh images;
    ``source_index`` maps copies to training rows, default 0..m−1).
    """
    if len(copies) != len(fresh):
        raise InputError(f"mix: {len(copies)} copies but {len(fresh)} fresh images")
    if not 0 <= rho <= 1:
        raise InputError(f"copy fraction ρ must be in [0, 1], got {rho}")
    m = len(copies)
    k = int(round(rho * m))
    src = np.arange(m) if source_index is None else np.asarray(source_index)
    is_copy = np.arange(m) < k
    images = np.concatenate([copies[:k], fresh[k:]])
    return images, is_copy, np.where(is_copy, src, -1).astype(np.int64)
