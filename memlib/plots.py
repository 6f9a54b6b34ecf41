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


def distinct_colors(n: int) -> list:
    """``n`` colours, no two alike, for figures with more lines than tab10 has colours: tab10,
    then black, then Dark2 (19 in all); more lines than that need another encoding."""
    colors = [plt.cm.tab10(i) for i in range(10)] + ["black"] + [plt.cm.Dark2(i) for i in range(8)]
    if n > len(colors):
        raise InputError(f"distinct_colors: {n} lines, at most {len(colors)} distinct colours; "
                         f"split the figure or add a line style")
    return colors[:n]


def ct_undefined_note(size_symbol: str = "m") -> str:
    """The line a figure carries where it leaves out C_T at small sets: a set of at most
    :data:`memlib.ct.MIN_CELL_POINTS` points keeps no cell, so its C_T is undefined."""
    from .ct import MIN_CELL_POINTS
    return (f"C_T-based methods not drawn at {size_symbol} ≤ {MIN_CELL_POINTS}: a cell is kept only with more than "
            f"{MIN_CELL_POINTS} generated points, so a set that small has no C_T (memlib.ct.MIN_CELL_POINTS)")


def ct_defined_rows(table, *, size: str = "query_size", method: str = "method"):
    """The rows of an attribution table (``fingerprint_accuracy.csv``'s columns) whose method is
    defined at its query size: the C_T-based methods (the curve and the C_T baselines of
    :data:`memlib.attribution_eval.BASELINE_GROUPS`, and the shape-only curve) only above :data:`memlib.ct.MIN_CELL_POINTS`
    points; the feature baselines at every size."""
    from .attribution_eval import BASELINE_GROUPS, CURVE_METHODS
    from .ct import MIN_CELL_POINTS
    ct_methods = (*CURVE_METHODS, *BASELINE_GROUPS["C_T"])
    return table[~table[method].isin(ct_methods) | (table[size] > MIN_CELL_POINTS)]


def subset_note(subset: dict, large_subset: dict | None = None, large_image_size: int | None = None) -> str:
    """One line stating notebook 05's subset (the profile's ``sensitivity_subset`` and, at the
    large image size, ``sensitivity_large_subset``), for a figure's foot."""
    def keys(d):
        return ", ".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in d.items())
    text = f"On a stated subset, not the full study (sensitivity_subset: {keys(subset)})"
    if large_subset:
        text += f"; at image_size {large_image_size}: {keys(large_subset)}"
    return text + ". The verdict at the defaults is the subset's and may differ from claims.csv."


SENSITIVITY_MARKERS = (  # (label, marker, edge colour, face colour) of sensitivity_figure's legend
    ("default setting", "o", "C0", "C0"),
    ("verdict kept", "o", "C0", "white"),
    ("verdict flipped", "o", "crimson", "white"),
    ("not run (images to embed again; sensitivity.csv: note)", "x", "0.6", "0.6"),
    ("C_T undefined (too few points per cell)", "x", "darkorange", "darkorange"),
)


def sensitivity_figure(d, choices, *, metric_label: str, thresholds=(), ci_level: float,
                       footnote: str):
    """One claim's rows of ``sensitivity.csv`` (notebook 05): its number with its CI at every value
    of every choice, grouped by choice, with a legend of what each marker means and ``footnote``
    (the subset, :func:`subset_note`) under the axes. ``thresholds``: (y, label) of the claim's
    rule. Returns the figure."""
    from matplotlib.lines import Line2D

    from .sensitivity_eval import NOT_RUN, UNDEFINED
    fig, ax = plt.subplots(figsize=(13, 4.2))
    x, ticks = 0, []
    for choice in choices:
        g = d[d.choice == choice]
        ax.text(x + (len(g) - 1) / 2, -0.16, choice, transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=8, fontweight="bold")
        for _, r in g.iterrows():
            if r.verdict not in (NOT_RUN, UNDEFINED):
                yerr = ([[max(r.metric - r.ci_low, 0)], [max(r.ci_high - r.metric, 0)]]
                        if np.isfinite(r.ci_low) else None)
                ax.errorbar(x, r.metric, yerr=yerr, fmt="o", capsize=3, color="crimson" if r.flips else "C0",
                            mfc="C0" if r.is_default else "white")
            else:
                ax.plot(x, 0, "x", color="0.6" if r.verdict == NOT_RUN else "darkorange")
            ticks.append((x, str(r.value).removeprefix("fashion-mnist:").replace("[", "\n[")))
            x += 1
        ax.axvline(x - 0.5, color="0.85", lw=0.8)
    for y, label in thresholds:
        ax.axhline(y, color="0.4", ls="--", lw=0.8)
        ax.text(x - 0.4, y, label, fontsize=7, va="bottom", ha="right", color="0.3")
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=7)
    ax.set_ylabel(metric_label)
    claim = d.claim.iloc[0]
    n_flips = int(d.flips.sum())
    ax.set_title(f"Claim {claim}, on the subset stated below: verdict at the defaults '{d[d.is_default].verdict.iloc[0]}'; "
                 f"{n_flips} flip{'s' if n_flips != 1 else ''}; {ci_level:.0%} CIs where the rule has one; "
                 f"crosses drawn at 0 have no number", fontsize=9)
    handles = [Line2D([], [], ls="", marker=mk, color=edge, mfc=face, mec=edge, label=label)
               for label, mk, edge, face in SENSITIVITY_MARKERS]
    handles += [Line2D([], [], color="0.4", ls="--", lw=0.8, label="the rule's thresholds")] if len(thresholds) else []
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False,
              title="marker", title_fontsize=7)
    fig.tight_layout()
    fig.text(0.01, -0.01, footnote, fontsize=7, color="0.25", ha="left", va="top", wrap=True)
    return fig
