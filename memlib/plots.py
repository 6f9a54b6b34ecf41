"""Plot helpers shared by the notebooks: one look, readable at a glance."""
from __future__ import annotations

import contextlib

import matplotlib.pyplot as plt
import numpy as np

from .claims import FLAG_THRESHOLD
from .errors import InputError

SIGN_NOTE = "C_T < 0: copying · ≈ 0: neither · > 0: under-fitting"


@contextlib.contextmanager
def seeded_global_rng(seed: int):
    """Seed numpy's global RNG inside the block and restore its state afterwards.

    For plotting calls that draw from it with no way to pass a generator — seaborn's
    ``stripplot`` jitter — so a figure's PNG is the same on every run.
    """
    saved = np.random.get_state()
    np.random.seed(int(seed))
    try:
        yield
    finally:
        np.random.set_state(saved)


def style() -> None:
    """The study's matplotlib style (white grid, readable fonts, no chart junk)."""
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
                         "savefig.facecolor": "white"})


def curve(ax, ct, lo=None, hi=None, *, label=None, color=None, x=None, **kwargs):
    """A C_T-layer curve with an optional CI band; x = layers 1..L unless given."""
    ct = np.asarray(ct, float)
    if x is None:
        from matplotlib.ticker import MaxNLocator
        x = np.arange(1, len(ct) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    x = np.asarray(x)
    line, = ax.plot(x, ct, marker="o", ms=3, label=label, color=color, **kwargs)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
    return line


def toy_footer() -> str:
    """The footer of a figure that used no encoder and no image (notebook 00's 2-D toy), for
    :meth:`memlib.study.Study.save`: what it did use, in place of the ViT footer."""
    from .machine import cpu_model
    return (f"2-D toy points, no encoder and no images: numpy and scikit-learn "
            f"(float32 points, float64 k-means) on cpu ({cpu_model()})")


def zero_line(ax, flag: float | None = FLAG_THRESHOLD) -> None:
    """Mark C_T = 0 and (dashed) the copying flag threshold (:data:`memlib.claims.FLAG_THRESHOLD`;
    ``None``: no flag line)."""
    ax.axhline(0, color="0.3", lw=0.8)
    if flag is not None:
        ax.axhline(flag, color="crimson", lw=0.8, ls="--", alpha=0.7)


def grid_array(images: np.ndarray, ncol: int = 10, pad: int = 1, value: int = 255) -> np.ndarray:
    """Tile uint8 images (n, H, W[, C]) row by row into one uint8 array
    (nrow·(H+pad)+pad, ncol·(W+pad)+pad[, C]), nrow = ⌈n / ncol⌉, on a ``value`` background;
    single-channel images (n, H, W, 1) give a 2-D grid."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or ncol < 1:
        raise InputError(f"grid_array: expected uint8 images (n, H, W[, C]) and ncol >= 1, "
                         f"got {images.dtype} {images.shape}, ncol={ncol}")
    n, h, w = images.shape[:3]
    nrow = -(-n // ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad) + images.shape[3:], value, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return grid


def image_grid(ax, images: np.ndarray, ncol: int = 10, title: str | None = None) -> None:
    """Show uint8 images (n, H, W[, C]) as one grid (:func:`grid_array`) without axes."""
    canvas = grid_array(images, ncol)
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=255)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
