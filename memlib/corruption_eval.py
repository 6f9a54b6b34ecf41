"""Attribution under corruption, explained (issue 31 point 6; notebook 04).

Study v2 saved accuracies under corruption but no confusions, so its reading of the
half-resolution collapse ("a 28 → 14 → 28 px round trip shifts every set toward the blurriest
architectures") could not be checked. Here:

- :func:`corruption_confusions`: the confusion table of every method under every corruption,
  with a ``corruption`` column and a ``references`` column (clean references, or references
  corrupted the same way as the queries) (``fingerprint_confusion.csv``);
- :func:`image_sharpness`: a pixel-space sharpness score of a set (higher = sharper), to rank
  architectures from blurriest to sharpest (:func:`sharpness_by_label` per architecture);
- :func:`blurriest_share`: the share of (corrupted) queries attributed to the k blurriest
  architectures, beside chance; compare its ``corruption == "none"`` row at the same query size;
  :func:`blur_table` puts it beside each architecture's sharpness (``fingerprint_blur.csv``).

Inputs are rows of :func:`memlib.attribution_eval.query_predictions` (columns method, true, pred,
set, plus grouping keys such as grain, corruption, level, references, query_size). Docs: docs/design.md,
"Study v3 groundwork: claims 3–4".
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

CONFUSION_KEYS = ("grain", "corruption", "level", "references", "query_size")


def corruption_confusions(predictions: pd.DataFrame, keys: Sequence[str] = CONFUSION_KEYS) -> pd.DataFrame:
    """Confusion counts of every method in every group of ``keys`` (e.g. every corruption).

    predictions: rows with columns method, true, pred and ``keys`` (keys missing from the
    table are left out of the grouping). Within a group, every method gets the same label set:
    every label that is a true or predicted label of that group, so zero cells are rows too.
    Returns keys…, method, true, predicted, count (query subsets), share (count / queries of
    that true label for that method; rows sum to 1 per (keys, method, true)).
    """
    missing = {"method", "true", "pred"} - set(predictions.columns)
    if missing:
        raise InputError(f"corruption_confusions: predictions lack columns {sorted(missing)}")
    key_cols = [k for k in keys if k in predictions.columns]
    groups = predictions.groupby(key_cols, sort=False) if key_cols else [((), predictions)]
    out = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        labels = sorted(set(g.true.tolist()) | set(g.pred.tolist()), key=str)
        full = pd.MultiIndex.from_product([labels, labels], names=["true", "predicted"])
        for method, m in g.groupby("method", sort=False):
            counts = m.groupby(["true", "pred"]).size().rename_axis(["true", "predicted"]).reindex(full, fill_value=0)
            t = counts.rename("count").reset_index()
            totals = t.groupby("true")["count"].transform("sum")
            t["share"] = np.where(totals > 0, t["count"] / totals.where(totals > 0, 1), np.nan)
            for col, value in zip(key_cols, key):
                t[col] = value
            t["method"] = method
            out.append(t)
    cols = key_cols + ["method", "true", "predicted", "count", "share"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def image_sharpness(images) -> float:
    """Mean over images of the variance of the 4-neighbour Laplacian of the pixel values, in
    ([0, 1] pixel units)²; blur lowers it, noise raises it.

    images: uint8 (n, H, W) or (n, H, W, C) (colour: the channel mean), H, W >= 3.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or min(x.shape[1:3]) < 3 or len(x) == 0:
        raise InputError(f"image_sharpness: need uint8 (n, H, W[, C]) images with H, W >= 3; got "
                         f"{x.dtype} {x.shape}")
    x = x.astype(np.float64) / 255.0
    if x.ndim == 4:
        x = x.mean(axis=-1)
    lap = (x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4 * x[:, 1:-1, 1:-1])
    return float(lap.reshape(len(x), -1).var(axis=1).mean())


def blurriest_share(confusion: pd.DataFrame, sharpness: Mapping[str, float], k: int,
                    keys: Sequence[str] = CONFUSION_KEYS) -> pd.DataFrame:
    """Do queries go to the blurriest architectures? Per group of ``keys`` and method.

    confusion: :func:`corruption_confusions` rows; sharpness: {label: score} (higher = sharper,
    e.g. :func:`image_sharpness` of each architecture's clean samples); k: how many of the
    blurriest labels (lowest score; ties by name) count as "blurriest".
    Returns keys…, method, blurriest (the k labels, comma-joined), share (of all queries, those
    attributed to one of them), share_others (the same among queries whose true label is not
    one of them: misattributions toward blur, 0 when clean attribution is perfect), chance
    (k / number of labels: a uniform guess), n_queries, n_others.
    """
    unknown = (set(confusion.true) | set(confusion.predicted)) - set(sharpness)
    if unknown:
        raise InputError(f"blurriest_share: no sharpness for {sorted(unknown, key=str)}")
    labels = sorted(set(confusion.true) | set(confusion.predicted), key=str)
    if not 1 <= k < len(labels):
        raise InputError(f"blurriest_share: k must be in 1..{len(labels) - 1}, got {k}")
    blurriest = sorted(labels, key=lambda lab: (float(sharpness[lab]), str(lab)))[:k]
    key_cols = [c for c in keys if c in confusion.columns]
    rows = []
    for key, g in confusion.groupby(key_cols + ["method"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        to_blur = g.predicted.isin(blurriest)
        others = ~g.true.isin(blurriest)
        n, n_o = int(g["count"].sum()), int(g.loc[others, "count"].sum())
        rows.append(dict(zip(key_cols + ["method"], key), blurriest=", ".join(map(str, blurriest)),
                         share=float(g.loc[to_blur, "count"].sum() / n) if n else float("nan"),
                         share_others=float(g.loc[to_blur & others, "count"].sum() / n_o) if n_o else float("nan"),
                         chance=k / len(labels), n_queries=n, n_others=n_o))
    return pd.DataFrame(rows)


BLURRIEST_FRACTION = 1 / 3   # "the blurriest": this share of the labels (at least one), e.g. 3 of 9 architectures


def blurriest_k(n_labels: int) -> int:
    """How many labels count as the blurriest: round(n_labels · :data:`BLURRIEST_FRACTION`),
    at least 1 and at most n_labels - 1 (n_labels >= 2)."""
    if n_labels < 2:
        raise InputError(f"blurriest_k: need >= 2 labels, got {n_labels}")
    return int(min(max(1, round(n_labels * BLURRIEST_FRACTION)), n_labels - 1))


def sharpness_by_label(images: Mapping, label_of) -> dict:
    """{label: mean :func:`image_sharpness` of its sets} ([0, 1] pixel units)²; images: {key:
    uint8 (n, H, W[, C]) clean samples}, label_of: key -> label (e.g. ``lambda k: k[0]``, the
    architecture of an (architecture, seed) key)."""
    per = {}
    for key, x in images.items():
        per.setdefault(label_of(key), []).append(image_sharpness(x))
    return {label: float(np.mean(v)) for label, v in per.items()}


def blur_table(confusion: pd.DataFrame, sharpness: Mapping[str, float], k: int | None = None,
               keys: Sequence[str] = CONFUSION_KEYS) -> pd.DataFrame:
    """``fingerprint_blur.csv``: where the queries of every group and method go, beside each
    label's sharpness, and the :func:`blurriest_share` summary of that group.

    confusion: :func:`corruption_confusions` rows of one grain; sharpness: {label: score}
    (:func:`sharpness_by_label`); k: the number of blurriest labels (default
    :func:`blurriest_k` of the labels present).
    One row per (keys…, method, label): label, sharpness, sharpness_rank (1 = blurriest),
    blurriest (bool), attributed (share of the group's queries attributed to the label), and
    the group's share, share_others, chance, n_queries, n_others (:func:`blurriest_share`).
    """
    labels = sorted(set(confusion.true) | set(confusion.predicted), key=str)
    k = blurriest_k(len(labels)) if k is None else k
    summary = blurriest_share(confusion, sharpness, k, keys)
    key_cols = [c for c in keys if c in confusion.columns]
    order = sorted(labels, key=lambda lab: (float(sharpness[lab]), str(lab)))
    rank = {lab: i + 1 for i, lab in enumerate(order)}
    to = confusion.groupby(key_cols + ["method", "predicted"], sort=False)["count"].sum().rename("n_to").reset_index()
    to["attributed"] = to.n_to / to.groupby(key_cols + ["method"], sort=False).n_to.transform("sum")
    to = to.rename(columns={"predicted": "label"}).drop(columns="n_to")
    to["sharpness"] = to.label.map(lambda lab: float(sharpness[lab]))
    to["sharpness_rank"] = to.label.map(rank)
    to["blurriest"] = to.sharpness_rank <= k
    out = to.merge(summary.drop(columns="blurriest"), on=key_cols + ["method"], how="left")
    return out.sort_values(key_cols + ["method", "sharpness_rank"], kind="stable").reset_index(drop=True)[
        key_cols + ["method", "label", "sharpness", "sharpness_rank", "blurriest", "attributed", "share",
                    "share_others", "chance", "n_queries", "n_others"]]
