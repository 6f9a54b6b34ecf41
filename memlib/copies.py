"""Controlled memorization sets: "generated" sets built from data with a known copy fraction.

A copy set is built in two index-based steps, so notebooks can embed the ρ = 1 copy set and the
fresh set once and mix at feature level:

1. :func:`make_copies` turns m source (training) images into m copies of a given ``kind`` and
   ``strength``; :func:`pick_sources` chooses the m training rows.
2. :func:`mix_plan` marks the first round(ρ·m) of the m output positions as copies, and
   :func:`mix_rows` / :func:`mix` take row k from the copies where ``is_copy[k]`` and from the
   fresh (held-out, never-trained-on) images otherwise. The copies of a smaller ρ are a subset
   of those of a larger ρ; sources drawn in random order make every prefix a random subset.

Copy kinds (images uint8 (m, H, W) or (m, H, W, C); all randomness from ``seed``; strength 0
always returns the sources unchanged):

=================== ======================================================= ==================================
kind                keeps                                                   destroys (more as strength grows)
=================== ======================================================= ==================================
exact               everything (verbatim copy; strength ignored)            nothing
low-level           the exact pixel multiset (intensity histogram) and the  layout and semantics: a fraction
                    pixel patterns inside each tile × tile block            ``strength`` of the blocks trade
                                                                            places (see :func:`tile_shuffle`)
low-level-phase     the exact pixel multiset; the amplitude spectrum        layout and semantics: Fourier
                    (second-order, texture-like statistics) before the      phases get uniform noise of
                    histogram match                                         ±strength·π (:func:`phase_scramble`)
high-level          shape, pose, class (a small geometric + photometric     the exact pixels: affine jitter,
                    change of the same object)                              gamma, contrast and blur, each
                                                                            range × strength
high-level-affine   as high-level, geometric part only                      pixel positions
high-level-photo    as high-level, gamma + contrast only                    grey levels
high-level-blur     as high-level, blur only                                fine detail
kde                 the source, plus N(0, σ²) pixel noise, σ = strength     (KDE sample around the source)
                    in [0, 1] pixel units; Meehan et al.'s bandwidth knob
=================== ======================================================= ==================================

High-level ranges at strength s (s = 1 is the probe set (iv) of docs/design.md): rotation
U(−10s, 10s)°, translation U(−2s, 2s) px per axis, isotropic scale U(1 − 0.1s, 1 + 0.1s) (bilinear,
zero fill, about the image centre); gamma exp(U(−s, s)·ln(1/0.7)); contrast about the image mean
U(1 − 0.25s, 1 + 0.25s); Gaussian blur σ U(0.3s, 0.6s) px. Strengths above 1 extrapolate.
The random draws do not depend on the kind, so ``high-level-affine`` at seed 0 applies exactly the
affine part of ``high-level`` at seed 0.

:func:`corrupt` degrades any image set (JPEG, resizing, noise) without copying anything.

Low-level kinds are built so they do NOT align with a ViT's token grid (at 112 px a 28-px image is
upscaled 4×, so one 14-px token covers 3.5 source px): tile shuffles use a random, non-zero grid
offset per image (the tiles wrap around the border) and default 4-px tiles (16 px at 112 px);
phase scrambling has no grid at all.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError, ParameterError

KINDS = ("exact", "low-level", "low-level-phase", "high-level", "high-level-affine",
         "high-level-photo", "high-level-blur", "kde")
DEFAULT_TILE = 4


def _as_stack(images: np.ndarray, what: str) -> tuple[np.ndarray, bool]:
    """uint8 (m, H, W) or (m, H, W, C) -> (m, H, W, C) and whether a channel axis was added."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4):
        raise InputError(f"{what}: expected uint8 images (m, H, W) or (m, H, W, C), got {arr.dtype} {arr.shape}")
    return (arr[..., None], True) if arr.ndim == 3 else (arr, False)


def _check_strength(strength: float) -> float:
    if not np.isfinite(strength) or strength < 0:
        raise ParameterError(f"copy strength must be a finite number ≥ 0, got {strength!r}")
    return float(strength)


def make_copies(kind: str, sources: np.ndarray, *, strength: float = 1.0, seed: int = 0,
                tile: int = DEFAULT_TILE) -> np.ndarray:
    """Copies of ``sources`` (uint8 (m, H, W) or (m, H, W, C)); same shape and dtype.

    Args:
        kind: one of :data:`KINDS` (see the module docstring for what each keeps and destroys).
        strength: ≥ 0; 0 returns the sources. ``low-level``: fraction (0..1) of tiles moved;
            ``low-level-phase``: phase noise amplitude in units of π (0..1); ``high-level*``:
            scale of every jitter range (1 = docs/design.md's set (iv)); ``kde``: σ in [0, 1] pixel units.
        seed: all randomness; the same seed gives the same copies.
        tile: ``low-level`` tile size in source pixels; must divide H and W.
    """
    if kind not in KINDS:
        raise ParameterError(f"unknown copy kind {kind!r}; known: {', '.join(KINDS)}")
    x, squeeze = _as_stack(sources, "sources")
    s = _check_strength(strength)
    if kind == "exact" or s == 0:
        out = x.copy()
    elif kind == "low-level":
        out = tile_shuffle(x, fraction=s, tile=tile, seed=seed)
    elif kind == "low-level-phase":
        out = phase_scramble(x, amount=s, seed=seed)
    elif kind == "kde":
        rng = np.random.default_rng(seed)
        noisy = x.astype(np.float64) / 255.0 + s * rng.standard_normal(x.shape)
        out = _to_uint8(noisy)
    else:
        parts = {"high-level": ("affine", "photo", "blur"), "high-level-affine": ("affine",),
                 "high-level-photo": ("photo",), "high-level-blur": ("blur",)}[kind]
        out = jitter(x, strength=s, parts=parts, seed=seed)
    return out[..., 0] if squeeze else out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# --- low-level ---------------------------------------------------------------------------------------

def tile_shuffle(x: np.ndarray, *, fraction: float, tile: int, seed: int) -> np.ndarray:
    """Move a fraction of each image's tile × tile blocks to other blocks' places.

    x: uint8 (m, H, W, C). Per image: roll by a random offset (dy, dx) in 1..tile−1 (so the grid
    never sits on the image border or on the token grid), cut into (H/tile)·(W/tile) tiles, pick
    round(fraction · n_tiles) of them and move them along one random cycle (so every picked tile
    lands somewhere else; fewer than 2 picked tiles means no change), roll back. The pixel
    multiset is kept exactly; tile-internal patterns are kept; the layout is not.
    """
    m, h, w, c = x.shape
    if tile < 1 or h % tile or w % tile:
        valid = [t for t in range(2, min(h, w)) if h % t == 0 and w % t == 0]
        raise ParameterError(f"low-level tile {tile} must divide the image size {h}×{w}; valid: {valid}")
    if fraction > 1:
        raise ParameterError(f"low-level strength is a fraction of tiles, at most 1, got {fraction}")
    gh, gw = h // tile, w // tile
    n_tiles = gh * gw
    k = int(np.floor(fraction * n_tiles + 0.5))
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    for i in range(m):
        dy, dx = (rng.integers(1, tile, size=2) if tile > 1 else (0, 0))
        img = np.roll(x[i], (-dy, -dx), axis=(0, 1))
        tiles = img.reshape(gh, tile, gw, tile, c).transpose(0, 2, 1, 3, 4).reshape(n_tiles, tile, tile, c)
        order = np.arange(n_tiles)
        picked = rng.permutation(n_tiles)[:k]
        if k >= 2:
            order[picked] = np.roll(picked, 1)  # place picked[j] receives tile picked[j-1]
        moved = tiles[order].reshape(gh, gw, tile, tile, c).transpose(0, 2, 1, 3, 4).reshape(h, w, c)
        out[i] = np.roll(moved, (dy, dx), axis=(0, 1))
    return out


def phase_scramble(x: np.ndarray, *, amount: float, seed: int) -> np.ndarray:
    """Texture-like resynthesis: add uniform noise of ±amount·π to every Fourier phase, then
    match the source's histogram exactly (rank order).

    x: uint8 (m, H, W, C). The phase noise is the phase of a white-noise image (so the result is
    real), scaled by ``amount`` (1 = fully random phases: only the amplitude spectrum, i.e. the
    source's second-order statistics, survives). The same noise is used for every channel.
    Output pixel multiset == source pixel multiset, per channel.
    """
    m, h, w, c = x.shape
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    for i in range(m):
        noise_phase = np.angle(np.fft.fft2(rng.standard_normal((h, w))))
        for ch in range(c):
            src = x[i, :, :, ch]
            f = np.fft.fft2(src.astype(np.float64))
            synth = np.real(np.fft.ifft2(f * np.exp(1j * amount * noise_phase)))
            out[i, :, :, ch] = _match_histogram(synth, src)
    return out


def _match_histogram(values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Give ``values`` the exact pixel multiset of ``source``, keeping the rank order of ``values``."""
    flat = np.empty(values.size, source.dtype)
    flat[np.argsort(values, axis=None, kind="stable")] = np.sort(source, axis=None)
    return flat.reshape(source.shape)


# --- high-level ---------------------------------------------------------------------------------------

def jitter_parameters(m: int, strength: float, seed: int) -> dict[str, np.ndarray]:
    """The per-image random draws of the high-level kinds (each (m,)), at a strength.

    Keys: ``angle`` (degrees), ``dy``, ``dx`` (px), ``scale``, ``gamma``, ``contrast``,
    ``blur`` (Gaussian σ in px). The draw order is fixed, so one seed gives the same images in
    every kind that uses a part."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1.0, 1.0, size=(6, m))
    b = rng.uniform(0.3, 0.6, size=m)
    s = strength
    return {"angle": 10.0 * s * u[0], "dy": 2.0 * s * u[1], "dx": 2.0 * s * u[2],
            "scale": 1.0 + 0.1 * s * u[3], "gamma": np.exp(s * np.log(1 / 0.7) * u[4]),
            "contrast": 1.0 + 0.25 * s * u[5], "blur": s * b}


def jitter(x: np.ndarray, *, strength: float, parts: tuple[str, ...], seed: int) -> np.ndarray:
    """Apply the high-level jitter ``parts`` ⊆ {affine, photo, blur} (in that order) to uint8
    (m, H, W, C) images; see :func:`jitter_parameters` for the ranges."""
    from scipy import ndimage

    m, h, w, c = x.shape
    p = jitter_parameters(m, strength, seed)
    out = np.empty_like(x)
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    for i in range(m):
        img = x[i].astype(np.float64) / 255.0
        if "affine" in parts:
            a = np.deg2rad(p["angle"][i])
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * p["scale"][i]
            inv = np.linalg.inv(rot)  # output coords -> input coords
            offset = centre - inv @ (centre + np.array([p["dy"][i], p["dx"][i]]))
            img = np.stack([ndimage.affine_transform(img[..., ch], inv, offset=offset, order=1,
                                                     mode="constant", cval=0.0) for ch in range(c)], -1)
        if "photo" in parts:
            img = np.clip(img, 0, 1) ** p["gamma"][i]
            mean = img.mean()
            img = np.clip(mean + p["contrast"][i] * (img - mean), 0, 1)
        if "blur" in parts and p["blur"][i] > 1e-3:
            img = ndimage.gaussian_filter(img, sigma=(p["blur"][i], p["blur"][i], 0), mode="constant")
        out[i] = _to_uint8(img)
    return out


# --- sets: sources, KDE, mixing -------------------------------------------------------------------------

def pick_sources(n_train: int, m: int, seed: int) -> np.ndarray:
    """m distinct training rows (int64 (m,), random order) to copy from."""
    if m > n_train:
        raise InputError(f"cannot pick {m} distinct sources from {n_train} training images")
    return np.random.default_rng(seed).choice(n_train, size=m, replace=False).astype(np.int64)


def kde_samples(train: np.ndarray, *, sigma: float, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """m samples of the pixel-space Gaussian KDE of ``train`` (uint8 (N, H, W[, C])) at bandwidth
    σ ([0, 1] pixel units): uniform random training rows (with replacement) plus N(0, σ²) noise,
    clipped and rounded. σ = 0 copies exactly; σ ≳ 0.3 under-fits (Meehan et al.'s sanity sweep).

    Returns (images uint8, same layout as ``train``, (m, ...), source_index int64 (m,))."""
    x, _ = _as_stack(train, "train")
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(x), size=m).astype(np.int64)
    images = make_copies("kde", np.asarray(train)[source], strength=sigma, seed=int(rng.integers(2**31)))
    return images, source


def n_copies(m: int, rho: float) -> int:
    """round(ρ·m), halves rounded up; ρ must lie in [0, 1]."""
    if not 0.0 <= rho <= 1.0:
        raise ParameterError(f"copy fraction ρ must be in [0, 1], got {rho!r}")
    return int(np.floor(rho * m + 0.5))


def mix_plan(m: int, rho: float) -> np.ndarray:
    """bool (m,): which output positions are copies — the first round(ρ·m).

    Prefix mixing keeps sets nested in ρ (a smaller ρ's copies are a subset of a larger one's)
    and needs no seed: draw the sources in random order (:func:`pick_sources`) and the fresh
    images in random order, and every prefix is a random subset. C_T is a set statistic, so
    the order of rows does not matter."""
    return np.arange(m) < n_copies(m, rho)


def mix_rows(copies: np.ndarray, fresh: np.ndarray, is_copy: np.ndarray) -> np.ndarray:
    """Row k = copies[k] if is_copy[k] else fresh[k]; works for images (m, ...) and features (m, D)."""
    copies, fresh, is_copy = np.asarray(copies), np.asarray(fresh), np.asarray(is_copy, bool)
    if copies.shape != fresh.shape or len(is_copy) != len(copies):
        raise InputError(f"mixing needs equal shapes: copies {copies.shape}, fresh {fresh.shape}, "
                         f"is_copy ({len(is_copy)},)")
    return np.where(is_copy.reshape((-1,) + (1,) * (copies.ndim - 1)), copies, fresh)


def mix(copies: np.ndarray, fresh: np.ndarray, rho: float, *,
        source_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A generated set of m = len(copies) images: the first round(ρ·m) copies, the rest fresh.

    Args:
        copies: the ρ = 1 copy set (m, ...), row k made from training row ``source_index[k]``.
        fresh: m held-out real images (the ideal non-copying generator), same shape.
        source_index: int (m,) training rows of the copies (default 0..m−1).
    Returns:
        images (m, ...), is_copy bool (m,), source_index int64 (m,) (−1 where fresh).
    """
    m = len(copies)
    src = np.arange(m, dtype=np.int64) if source_index is None else np.asarray(source_index, np.int64)
    if len(src) != m:
        raise InputError(f"source_index has {len(src)} entries for {m} copies")
    is_copy = mix_plan(m, rho)
    return mix_rows(copies, fresh, is_copy), is_copy, np.where(is_copy, src, -1)


mix_sets = mix  # the name used in the design notes


# --------------------------------------------------------------------------- corruptions
# Not copies: the degradations a published image set may have gone through (compression,
# resizing, noise), applied to a generated set to test what survives them.

CORRUPTIONS = ("jpeg", "resize", "noise")


def corrupt(images, kind: str, level, seed: int = 0) -> np.ndarray:
    """Corrupt images (e.g. attribution queries, notebook 04's robustness check); returns uint8
    of the same shape.

    images: uint8 (n, H, W) or (n, H, W, C) with C in {1, 3}.
    kind / level:
    - ``"jpeg"``: JPEG quality 1..100 (Pillow, default chroma subsampling); deterministic.
    - ``"resize"``: factor in (0, 1]: bicubic downscale to round(factor * size), then back up
      to (H, W) (Pillow; anti-aliased when downscaling); 1 = identity. Deterministic.
    - ``"noise"``: additive Gaussian noise, sigma in pixel units (0..255 scale), rounded and
      clipped; seeded by ``seed``.
    """
    import io

    from PIL import Image

    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
        raise InputError(f"corrupt: expected uint8 (n, H, W) or (n, H, W, 1|3) images, got "
                         f"{x.dtype} {x.shape}")
    if kind == "noise":
        if level < 0:
            raise InputError(f"corrupt: noise sigma must be >= 0, got {level}")
        noise = np.random.default_rng(seed).normal(0.0, float(level), size=x.shape)
        return np.clip(np.rint(x + noise), 0, 255).astype(np.uint8)
    if kind not in CORRUPTIONS:
        raise InputError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")
    if kind == "jpeg" and not (1 <= int(level) <= 100):
        raise InputError(f"corrupt: JPEG quality must be in 1..100, got {level}")
    if kind == "resize" and not (0 < float(level) <= 1):
        raise InputError(f"corrupt: resize factor must be in (0, 1], got {level}")
    squeeze = x.ndim == 4 and x.shape[3] == 1
    imgs = x[..., 0] if squeeze else x
    h, w = imgs.shape[1:3]
    out = np.empty_like(imgs)
    for i, img in enumerate(imgs):
        pil = Image.fromarray(img)
        if kind == "jpeg":
            buf = io.BytesIO()
            pil.save(buf, format="JPEG", quality=int(level))
            buf.seek(0)
            out[i] = np.asarray(Image.open(buf).convert(pil.mode))
        else:
            if float(level) == 1.0:
                out[i] = img
                continue
            small = (max(1, round(w * float(level))), max(1, round(h * float(level))))
            out[i] = np.asarray(pil.resize(small, Image.BICUBIC).resize((w, h), Image.BICUBIC))
    return out[..., None] if squeeze else out
