"""Which generated samples copy which training images, and at which encoder layer.

The per-sample form of the copy rate. For every generated sample and every feature space —
raw pixels and each encoder block — the distance to its nearest training image, that image,
and a flag:

- *feature spaces* are numbered like the ``layer`` column of ``memlib ct``: encoder blocks
  1..L, and **layer 0 = raw pixels** (values in [0, 1], H·W·C dimensions, as
  :func:`memlib.features.pixel_features`). Distances are Euclidean in that space's own
  features (no PCA; pixel units for layer 0, the encoder's units for blocks), found by the
  exact streamed search of :class:`memlib.knn.NNIndex` (no N×N matrix at any size);
- a sample is **flagged** at a layer when its distance is below the ``quantile`` (the
  profile's ``zoo_copy_quantile``, 1 %) of the held-out test images' nearest-training
  distances at that layer. A generator that never copies (fresh draws from the data
  distribution) therefore flags about a share ``quantile`` of its samples at every layer;
  far more than that is copying, as seen by that layer;
- the **kind** of a flagged sample comes from the layers that flag it (:func:`copy_kinds`):
  all of them = ``exact``; some of the early ones (pixels and the first third of the
  blocks) but none of the late ones (the last third) = ``low-level``; late but not early =
  ``semantic``; anything else = ``mixed``; none = ``none``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import InputError, ParameterError
from .features import LayerFeatures
from .knn import NNIndex

COPY_COLUMNS = ["sample", "layer", "distance", "nearest_train", "flagged", "sample_id",
                "train_id"]
KINDS = ("exact", "low-level", "semantic", "mixed", "none")
LEVEL_SHARE = 1 / 3          # early = pixels + the first third of the blocks; late = last third
GALLERY_PAIRS = 12           # samples shown in the gallery (each beside its training image)
GALLERY_PAIRS_PER_ROW = 4


@dataclass
class CopyReport:
    """Nearest training image of every generated sample in every feature space.

    Attributes:
        layers: (K,) int layer numbers (0 = pixels, 1..L = encoder blocks), ascending.
        distances: (K, m) float32 distance of each sample to its nearest training image.
        nearest: (K, m) int64 row of that training image in the training set.
        thresholds: (K,) the ``quantile`` of the test set's nearest-training distances.
        quantile: the flag's quantile (a share in (0, 1)).
        n_train, n_test: sizes of the training and test sets.
    """

    layers: np.ndarray
    distances: np.ndarray
    nearest: np.ndarray
    thresholds: np.ndarray
    quantile: float
    n_train: int
    n_test: int

    @property
    def n_samples(self) -> int:
        return int(self.distances.shape[1])

    @property
    def flagged(self) -> np.ndarray:
        """(K, m) bool: distance strictly below the layer's threshold."""
        return self.distances < self.thresholds[:, None]

    def kinds(self) -> np.ndarray:
        """(m,) kind of each sample (:data:`KINDS`; see :func:`copy_kinds`)."""
        return copy_kinds(self.flagged, self.layers)

    def table(self, sample_ids: Sequence[str] | None = None,
              train_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Tidy rows (:data:`COPY_COLUMNS`), one per sample and layer, by sample then layer.

        ``sample``/``nearest_train`` are 0-based rows of the generated and training sets in
        the order memlib loads them; ``sample_id``/``train_id`` are the loaders' image ids
        (file names for folders, ``fashion-mnist:train/123`` for dataset specs); empty when
        not given.
        """
        k, m = self.distances.shape
        sample = np.tile(np.arange(m), k)
        nearest = self.nearest.ravel()
        table = pd.DataFrame({
            "sample": sample, "layer": np.repeat(self.layers, m),
            "distance": self.distances.ravel(), "nearest_train": nearest,
            "flagged": self.flagged.ravel(),
            "sample_id": np.asarray(sample_ids)[sample] if sample_ids is not None else "",
            "train_id": np.asarray(train_ids)[nearest] if train_ids is not None else ""})
        return table.sort_values(["sample", "layer"], kind="stable").reset_index(drop=True)

    def share_flagged(self) -> pd.DataFrame:
        """Per layer: threshold, n_flagged, share_flagged and its Wilson 95 % interval."""
        from .fingerprint import accuracy_ci

        rows = []
        for i, layer in enumerate(self.layers):
            flags = self.flagged[i]
            share, lo, hi = accuracy_ci(flags, method="wilson")
            rows.append(dict(layer=int(layer), threshold=float(self.thresholds[i]),
                             n_flagged=int(flags.sum()), share_flagged=share, share_lo=lo,
                             share_hi=hi, expected_if_no_copying=self.quantile,
                             median_distance=float(np.median(self.distances[i]))))
        return pd.DataFrame(rows)

    def most_copied(self, n: int) -> np.ndarray:
        """Indices of the ``n`` most-copied samples: most flagging layers first, then the
        smallest mean of distance / threshold over layers."""
        score = (self.distances / np.maximum(self.thresholds[:, None], 1e-12)).mean(axis=0)
        order = np.lexsort((score, -self.flagged.sum(axis=0)))
        return order[:n]

    def gallery_picks(self, n: int) -> np.ndarray:
        """Up to ``n`` samples for the gallery: the most-copied of each flagged kind in turn
        (so low-level and semantic copies show even beside many exact ones), then the nearest
        unflagged ones; grouped by kind in :data:`KINDS` order."""
        kinds = self.kinds()
        order = self.most_copied(self.n_samples)
        queues = {k: [int(i) for i in order if kinds[i] == k] for k in KINDS}
        picks: list[int] = []
        while len(picks) < n and any(queues[k] for k in KINDS[:-1]):
            for k in KINDS[:-1]:
                if queues[k] and len(picks) < n:
                    picks.append(queues[k].pop(0))
        picks += queues["none"][:n - len(picks)]
        rank = {k: i for i, k in enumerate(KINDS)}
        return np.array(sorted(picks, key=lambda i: rank[kinds[i]]), dtype=int)


def find_copies(train_layers: Any, test_layers: Any, gen_layers: Any, *, quantile: float,
                layers: Sequence[int] | None = None, progress: bool = True) -> CopyReport:
    """Nearest training image of every generated and every test sample, per layer.

    Args:
        train_layers, test_layers, gen_layers: K layers of (l, D_k), (n, D_k) and (m, D_k)
            features (a :class:`memlib.features.LayerFeatures`, a list of arrays, ...); layer
            k may have its own D_k (pixels and blocks together, :func:`with_pixels`).
        quantile: the flag's quantile of test→train distances, in (0, 1).
        layers: the K layer numbers (default 1..K).
        progress: a progress bar over layers.

    Returns:
        A :class:`CopyReport`. Each layer is read once per set and searched exactly; memory
        is one layer of the training set plus one query block at a time.
    """
    quantile = check_quantile(quantile)
    counts = {name: len(x) for name, x in
              (("train", train_layers), ("test", test_layers), ("gen", gen_layers))}
    if len(set(counts.values())) != 1:
        raise InputError(f"train, test and gen must have the same layers, got {counts}")
    k = counts["gen"]
    numbers = np.arange(1, k + 1) if layers is None else np.asarray(layers, dtype=int)
    if numbers.shape != (k,):
        raise InputError(f"{len(numbers)} layer numbers for {k} layers")
    dist, near, thr = [], [], np.empty(k)
    n_train = n_test = 0
    for i in tqdm(range(k), desc="nearest training images", unit="layer", disable=not progress):
        index = NNIndex(np.asarray(train_layers[i], np.float32), name="train")
        test_d, _ = index.search(np.asarray(test_layers[i], np.float32))
        d, j = index.search(np.asarray(gen_layers[i], np.float32))
        if i and len(d) != len(dist[0]):
            raise InputError(f"gen: layer {numbers[i]} has {len(d)} samples, layer "
                             f"{numbers[0]} {len(dist[0])}; every layer must hold the same images")
        thr[i] = np.quantile(test_d.astype(np.float64), quantile)
        dist.append(d)
        near.append(j)
        n_train, n_test = len(index), len(test_d)
    return CopyReport(numbers, np.stack(dist), np.stack(near), thr, float(quantile),
                      n_train, n_test)


def check_quantile(quantile: float) -> float:
    """The flag's quantile as a float in (0, 1), or a ParameterError."""
    if not 0.0 < float(quantile) < 1.0:
        raise ParameterError(f"copy quantile must be in (0, 1) (e.g. 0.01 for 1 %), "
                             f"got {quantile!r}")
    return float(quantile)


def with_pixels(pixels: LayerFeatures, feats: LayerFeatures | None) -> LayerFeatures:
    """Raw pixels as layer 0 followed by the encoder's blocks (still read one at a time)."""
    layers = [pixels.layers[0]] + ([] if feats is None else list(feats.layers))
    return LayerFeatures(layers, {**(feats.meta if feats is not None else pixels.meta),
                                  "layer0": "pixels"})


def copy_kinds(flagged: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """Kind of each sample from the layers that flag it.

    Args:
        flagged: (K, m) bool, one row per layer.
        layers: (K,) layer numbers, 0 = pixels, 1..L = blocks.

    Returns:
        (m,) str: ``exact`` (flagged at every layer), ``low-level`` (at an early layer —
        pixels or a block ≤ ⌈L/3⌉ — and at no late one, a block > L − ⌈L/3⌉), ``semantic``
        (late but not early), ``mixed`` (any other flagged pattern) or ``none``.
    """
    flagged = np.asarray(flagged, bool)
    layers = np.asarray(layers, int)
    if flagged.ndim != 2 or flagged.shape[0] != len(layers):
        raise InputError(f"flagged must be (K, m) with K = {len(layers)} layers, "
                         f"got {flagged.shape}")
    n_blocks = int(layers.max(initial=0))
    third = int(np.ceil(n_blocks * LEVEL_SHARE))
    early = flagged[layers <= third].any(axis=0)
    late = flagged[layers > n_blocks - third].any(axis=0) if n_blocks else early
    out = np.full(flagged.shape[1], "mixed", dtype=object)
    out[early & ~late] = "low-level"
    out[late & ~early] = "semantic"
    out[flagged.all(axis=0)] = "exact"
    out[~flagged.any(axis=0)] = "none"
    return out.astype(str)


def summary_table(report: CopyReport, ct_rows: Sequence[dict]) -> pd.DataFrame:
    """Per layer: the share flagged (Wilson 95 % CI) beside the whole set's C_T and its CI.

    ``ct_rows``: rows with ``layer``, ``ct``, ``ct_lo``, ``ct_hi`` numbered as the report's
    layers (e.g. :meth:`memlib.study.Study.curve_rows`, renumbered).
    """
    ct = pd.DataFrame(list(ct_rows))[["layer", "ct", "ct_lo", "ct_hi"]]
    out = report.share_flagged().merge(ct, on="layer", how="left", validate="one_to_one")
    out.insert(1, "space", np.where(out["layer"] == 0, "pixels", "encoder block"))
    return out.assign(n_train=report.n_train, n_test=report.n_test, n_gen=report.n_samples)


def layer_ranges(layers: Sequence[int]) -> str:
    """'0–4, 9, 11–12' for layer numbers (0 shown as 'px')."""
    layers = sorted(int(x) for x in layers)
    parts, start = [], None
    for i, x in enumerate(layers):
        start = x if start is None else start
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            name = lambda v: "px" if v == 0 else str(v)  # noqa: E731
            parts.append(name(start) if start == x else f"{name(start)}–{name(x)}")
            start = None
    return ", ".join(parts) if parts else "no layer"


def plot_gallery(report: CopyReport, gen_images: np.ndarray, train_images: np.ndarray, *,
                 encoder: str, n_pairs: int = GALLERY_PAIRS):
    """The most-copied samples, each beside its nearest training image; returns the figure.

    Samples as :meth:`CopyReport.gallery_picks`. Each pair shows the generated sample (left)
    and the training image nearest to it at the layer where it is most clearly flagged (smallest distance / threshold; right), labelled
    with its kind and the layers that flag it.
    """
    import matplotlib.pyplot as plt

    picks = report.gallery_picks(n_pairs)
    kinds = report.kinds()
    ncol = min(GALLERY_PAIRS_PER_ROW, len(picks))
    nrow = int(np.ceil(len(picks) / ncol))
    fig, axes = plt.subplots(nrow, 2 * ncol, figsize=(2.5 * ncol * 1.25, 2.1 * nrow + 0.8),
                             squeeze=False)
    ratio = report.distances / np.maximum(report.thresholds[:, None], 1e-12)
    show = lambda ax, img: ax.imshow(np.asarray(img).squeeze(), cmap="gray", vmin=0,  # noqa: E731
                                     vmax=255)
    for ax in axes.ravel():
        ax.set_axis_off()
    for p, s in enumerate(picks):
        r, c = divmod(p, ncol)
        best = int(ratio[:, s].argmin())
        layer, t = int(report.layers[best]), int(report.nearest[best, s])
        where = "pixels" if layer == 0 else f"layer {layer}"
        flagged_at = report.layers[report.flagged[:, s]]
        a, b = axes[r, 2 * c], axes[r, 2 * c + 1]
        show(a, gen_images[s])
        show(b, train_images[t])
        a.set_title(f"sample {s}\n{kinds[s]}", fontsize=8,
                    color="crimson" if kinds[s] != "none" else "0.3")
        b.set_title(f"train {t}\n{where}: d/thr {ratio[best, s]:.2f}", fontsize=8)
        a.text(1.0, -0.08, f"flagged at: {layer_ranges(flagged_at)}", transform=a.transAxes,
               ha="center", va="top", fontsize=7)
    fig.suptitle(f"Most-copied generated samples (left) and their nearest training image "
                 f"(right), encoder {encoder}\nflagged at a layer = distance below the "
                 f"{report.quantile:g}-quantile of test→train distances there (d/thr < 1; "
                 f"d in that layer's feature units); px = raw pixels; early only = low-level, "
                 f"late only = semantic, all = exact", fontsize=8.5)
    fig.tight_layout()
    return fig
