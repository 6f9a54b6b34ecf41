"""How many images each notebook pushes through a ViT in a cold ``make figures``: an
**estimate** derived from the profile and the notebooks' image specs, until a cold run's work
ledger (:mod:`memlib.ledger`, ``<cache>/ledger/embed.jsonl``) gives the exact counts
(docs/performance.md#the-compute-floor).

The rule the notebooks follow (memlib/study.py): a feature entry is computed once per distinct
image content, encoder, image size and precision; ``first=n`` with the profile's encoder cuts
rows of the whole set's entry (nothing new), with another encoder or ``whole_set_used=False`` it
embeds those n images as a new entry. Every row below names the sets it counts; a set already
embedded by an earlier notebook is not counted again. Both tokens share one entry, and the
final LayerNorm is applied to cached features, so neither costs a pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from memlib import copy_sensitivity, depth_signal, zoo
from memlib.claims import COPY_RATE_MIN
from memlib.data import spec_window

REPO = Path(__file__).resolve().parent.parent


def _size(spec: str) -> int:
    _, _, start, stop = spec_window(spec)
    return stop - start


def copying_kde_sigmas(params: dict[str, Any], figures: Path = REPO / "figures") -> int:
    """How many of ``kde_sigmas`` give a KDE set that copies (pixel copy rate ≥
    ``COPY_RATE_MIN`` against T): read from the committed ``memorization_gradient.csv`` (the
    KDE rows of notebook 03); all of them when the table is absent (an upper bound)."""
    path = figures / "memorization_gradient.csv"
    if not path.exists():
        return len(params["kde_sigmas"])
    t = pd.read_csv(path)
    kde = t[(t.group == "kde") & (t.layer == 1)]
    return int((kde.copy_rate >= COPY_RATE_MIN).sum())


def estimate(params: dict[str, Any], figures: Path = REPO / "figures") -> list[dict[str, Any]]:
    """Rows (notebook, encoder, image_size, n_images, how): images embedded by each notebook of
    a cold run of ``params`` (an estimate; see the module docstring)."""
    P = params
    enc, size = P["encoder"], int(P["image_size"])
    shuffled, random_ = enc + "+shuffled", enc + "+random"
    n_t, n_test, m = _size(P["reference_train"]), _size(P["test"]), int(P["copy_m"])
    n_sigma = len(P["kde_sigmas"])
    n_cond = len(copy_sensitivity.conditions(P))        # exact + low + high strengths
    models = zoo.zoo_models(P)
    standard = [k for k in models if k[1] == "standard"]
    memorize = [k for k in models if k[1] == "memorize"]
    gradient = zoo.gradient_models(P)
    n_own = min(int(P["own_reference_n"]), _size(P["zoo_train"]))
    first_seed = [k for k in models if k[2] == P["zoo_seeds"][0]]
    control = int(P["control_n_train"]) + int(P["control_n_test"]) + len(first_seed) * int(P["control_m"])
    mix_src = depth_signal.n_copies(int(P["mixture_m"]), max(P["mixture_rhos"]))
    n_mix_kinds = sum(1 for k in P["mixture_kinds"] if k != "exact")
    corruptions = sum(len(v) for v in P["robust_levels"].values())
    pool = min(int(P["robust_n"]), int(P["zoo_n_samples"]))
    sub, large = P["sensitivity_subset"], P["sensitivity_large_subset"]
    fp_sets = len({a for a, _, _ in standard}) * int(sub["fingerprint_seeds"])
    m_sens = int(P["sensitivity_m"])
    k_copy = copying_kde_sigmas(P, figures)
    grid = P["sensitivity_grid"]
    other_t = [int(n) for n in grid.get("reference_n", []) if int(n) != n_t]
    other_split = [s for s in grid.get("reference_split", []) if s != "default"]
    other_sizes = [int(s) for s in grid.get("image_size", []) if int(s) != size]
    large_size = int(P["sensitivity_large_image_size"])

    own_specs = sorted({zoo.train_spec(v, P, s) for _, v, s in standard + memorize})
    n_own_refs = sum(min(n_own, _size(spec)) for spec in own_specs)   # one entry per distinct window
    grad_sizes = sorted({int(v[1:]) for _, v, _ in gradient})
    n03 = ((len(standard) + len(memorize)) * int(P["zoo_n_samples"]) + len(gradient) * int(P["gradient_n_samples"])
           + _size(P["zoo_train"]) + sum(grad_sizes) + n_mix_kinds * mix_src + n_own_refs)
    rows = [
        ("01_ct_sanity", enc, size, n_t + n_test + 2 * m + n_sigma * m,
         f"T {n_t} + P_n {n_test} + fresh {m} + exact copies {m} + {n_sigma} KDE sets × {m}"),
        ("02_memorization_levels", enc, size, 2 * (n_cond - 1) * m,
         f"{n_cond - 1} transformed conditions × (copies + fresh) × {m} (exact copies are rows of T; "
         "exact fresh = notebook 01's fresh)"),
        ("02_memorization_levels", shuffled, size, n_t + n_test + (2 * n_cond - 1) * m,
         f"T {n_t} + P_n {n_test} + ({n_cond} fresh + {n_cond - 1} copy sets) × {m}"),
        ("03_layer_trends", enc, size, n03,
         f"{len(standard) + len(memorize)} zoo sets × {P['zoo_n_samples']} + {len(gradient)} gradient sets × "
         f"{P['gradient_n_samples']} + own T of claim 1: zoo_train {_size(P['zoo_train'])} and the gradient's "
         f"first {grad_sizes} + {n_mix_kinds} mixture copy kinds × {mix_src} + "
         f"own-training references: first {n_own} of each of {len(own_specs)} distinct training windows ({n_own_refs})"),
        ("03_layer_trends", shuffled, size, control,
         f"controls: T {P['control_n_train']} + P_n {P['control_n_test']} + {len(first_seed)} first-seed sets × {P['control_m']}"),
        ("03_layer_trends", random_, size, control, "the same for random weights"),
        ("04_fingerprinting", enc, size, len(standard) * corruptions * pool,
         f"{len(standard)} sets × {corruptions} corruptions × first {pool} samples"),
        ("05_sensitivity", enc, size, sum(other_t) + len(other_split) * n_t + (len(other_t) + len(other_split)) * k_copy * m_sens,
         f"another T: reference_n {other_t} and {len(other_split)} other split × {n_t}, each + {k_copy} copying "
         f"KDE sets × first {m_sens} (drawn around that T)"),
    ]
    for s in other_sizes:
        if s == large_size:
            n = int(large["reference_n"]) + int(large["n_test"]) + fp_sets * min(m_sens, int(large["m"]))
            how = (f"claims 3-4 at {s} px: T {large['reference_n']} + P_n {large['n_test']} + {fp_sets} sets × "
                   f"{min(m_sens, int(large['m']))}")
        else:
            n = n_t + n_test + fp_sets * m_sens
            how = f"claims 3-4 at {s} px: T {n_t} + P_n {n_test} + {fp_sets} sets × {m_sens}"
        rows.append(("05_sensitivity", enc, s, n, how))
    return [dict(notebook=nb, encoder=e, image_size=int(s), n_images=int(n), how=how, source="estimate")
            for nb, e, s, n, how in rows]
