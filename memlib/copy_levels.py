"""Claim 2, one path: the copies, their copy sensitivity in three spaces, and the claims row.

Notebook 02, the sensitivity grid (:mod:`memlib.sensitivity_eval`) and notebook 06
(:mod:`memlib.embedding_spaces`) all call these three steps, so claim 2 is computed once:

1. :func:`make_conditions` — ``copy_m`` training images of T (``reference_train``) and as many
   fresh held-out images (``fresh``), each transformed at every condition of
   :func:`memlib.copy_sensitivity.conditions` with the same seed (row k of both gets the same
   transform);
2. :func:`measure` — the copy sensitivity E(t(copies)) − E(t(fresh)) of the study's encoder, its
   ``+shuffled`` control and raw pixels on one set of paired bootstrap draws
   (:func:`memlib.copy_sensitivity.measure_spaces`), optionally on the first rows only;
3. :func:`claim_tables` — the tables the rule reads (contrasts, half-sensitivity crossings), the
   two intervals reported beside it (learned-vs-structural difference-in-differences,
   beyond-references margins) and the ``claims.csv`` row (:func:`memlib.claims.copy_levels_claim`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import claims, copies, copy_sensitivity
from .bootstrap import resample_indices
from .data import ImageSet

MARGIN_COUNTS = ["n_strengths", "n_draws", "n_nan", "n_partial"]
MARGIN_COLUMNS = ["quantity", "kind", "layers", "value", "ci_low", "ci_high", "trained", "shuffled",
                  "pixels"] + MARGIN_COUNTS


@dataclass
class CopyConditions:
    """The copies of claim 2. train: T; source_index: (m,) int rows of T that are copied;
    conditions: (kind, strength) pairs; made / made_fresh: (kind, strength) -> uint8 (m, H, W[, C])
    transformed copies / transformed fresh images (row k of both transformed alike)."""

    train: ImageSet
    source_index: np.ndarray
    conditions: list
    made: dict
    made_fresh: dict

    @property
    def m(self) -> int:
        return len(self.source_index)


@dataclass
class ClaimTwo:
    """What :func:`claim_tables` returns: table (:func:`memlib.copy_sensitivity.summary_table`),
    contrasts, crossings, learned, margins (the copy_sensitivity tables of those names),
    margin_table (``memorization_levels_margins.csv``, :data:`MARGIN_COLUMNS`) and row (the
    ``claims.csv`` row)."""

    table: pd.DataFrame
    contrasts: pd.DataFrame
    crossings: pd.DataFrame
    learned: pd.DataFrame
    margins: pd.DataFrame
    margin_table: pd.DataFrame
    row: dict


def make_conditions(study: Any, params: dict | None = None) -> CopyConditions:
    """The copies and fresh images of every condition (``params`` default: the study's; a
    smaller strength grid may be passed, e.g. :func:`memlib.sensitivity_eval.strength_subset`)."""
    P = study.params if params is None else params
    m, seed = P["copy_m"], P["seed"]
    train = study.images("reference_train")
    source_index = copies.pick_sources(len(train), m, seed)
    sources, fresh = train.images[source_index], study.images("fresh").images[:m]
    conditions = copy_sensitivity.conditions(P)
    made = {c: copies.make_copies(c[0], sources, strength=c[1], seed=seed) for c in conditions}
    made_fresh = {c: copies.make_copies(c[0], fresh, strength=c[1], seed=seed) for c in conditions}
    return CopyConditions(train, source_index, conditions, made, made_fresh)


def measure(study: Any, cond: CopyConditions, *, n_boot: int, rows: int | None = None,
            whole: bool = True, progress: bool = False) -> dict:
    """Copy sensitivity in the study's encoder, its ``+shuffled`` control and pixels.

    rows: score the first ``rows`` copies and fresh images of each condition (default all m);
    whole: their features are rows of the whole sets' (cached, as notebook 02 embeds them) —
    False embeds only those rows (:meth:`memlib.study.Study.features`, ``whole_set_used``).
    In the study's encoder, whole sets are only scored against its public reference, so they
    come from :meth:`memlib.study.Study.ct_features` (projected entries with
    ``feature_store: projected``).
    n_boot: paired draws (:func:`memlib.bootstrap.resample_indices`, seed ``seed``), the same for
    every condition and space. Returns :func:`memlib.copy_sensitivity.measure_spaces`' dict.
    """
    P = study.params
    first = np.arange(cond.m if rows is None else min(rows, cond.m))
    cut = len(first) < cond.m

    def rows_of(images, encoder, name):
        if not whole:
            return study.features(images, encoder=encoder, name=name, first=len(first), whole_set_used=False)
        if encoder == P["encoder"]:   # scored only against the public reference: C_T's store
            feats = study.ct_features(images, name=name)
        else:
            feats = study.features(images, encoder=encoder, name=name)
        return feats.subset(first) if cut else feats

    def copies_features(encoder, kind, s):
        if kind == "exact":   # rows of T: cut from T's features instead of embedding again
            return study.features(cond.train, encoder=encoder).subset(cond.source_index[first])
        return rows_of(cond.made[kind, s], encoder, f"copies-{kind}-{s:g}")

    def fresh_features(encoder, kind, s):
        return rows_of(cond.made_fresh[kind, s], encoder, f"fresh-{kind}-{s:g}")

    spaces = [P["encoder"], P["encoder"] + "+shuffled", "pixels"]
    return copy_sensitivity.measure_spaces(spaces, cond.conditions, lambda e: study.reference(encoder=e),
                                           copies_features, fresh_features,
                                           resample_indices(len(first), n_boot, P["seed"]), progress=progress)


def claim_tables(sens: dict, *, encoder: str, n_layers: int, level: float) -> ClaimTwo:
    """The tables of claim 2 and its ``claims.csv`` row, from :func:`measure`'s sensitivities."""
    contrasts = copy_sensitivity.contrast_table(sens, encoder, level)
    crossings = copy_sensitivity.crossing_table(sens)
    learned = copy_sensitivity.learned_contrast_table(sens, encoder, level)
    margins = copy_sensitivity.beyond_margin_table(sens, encoder, n_layers, level)
    margin_table = pd.concat([learned.assign(quantity="learned_did"), margins.assign(quantity="beyond_margin")],
                             ignore_index=True).astype({c: "Int64" for c in MARGIN_COUNTS})
    row = claims.copy_levels_claim(contrasts, crossings, encoder=encoder, n_layers=n_layers, level=level,
                                   learned=learned, margins=margins)
    return ClaimTwo(copy_sensitivity.summary_table(sens, level), contrasts, crossings, learned, margins,
                    margin_table[MARGIN_COLUMNS], row)
