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
from memlib.copies import n_copies
from memlib.data import spec_window

REPO = Path(__file__).resolve().parent.parent


def _size(spec: str) -> int:
    _, _, start, stop = spec_window(spec)
    return stop - start


def copying_gradient_sizes(params: dict[str, Any], figures: Path = REPO / "figures") -> list[int]:
    """The training-set size n of every gradient model (:func:`memlib.zoo.gradient_models`) that
    copies (pixel copy rate ≥ ``COPY_RATE_MIN``), one entry per model: read from the committed
    ``zoo_quality.csv``; every gradient model when the table or a model is absent (an upper
    bound). The sensitivity grid embeds only these (``sensitivity_eval.claim_1_sets``)."""
    models = zoo.gradient_models(params)
    path = figures / "zoo_quality.csv"
    if not path.exists():
        return [zoo.gradient_size(v) for _, v, _ in models]
    t = pd.read_csv(path).set_index(["architecture", "variant", "seed"])
    return [zoo.gradient_size(v) for a, v, s in models
            if (a, v, s) not in t.index or t.loc[(a, v, s), "copy_rate"] >= COPY_RATE_MIN]


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
    grid = P["sensitivity_grid"]
    other_t = [int(n) for n in grid.get("reference_n", []) if int(n) != n_t]
    other_split = [s for s in grid.get("reference_split", []) if s != "default"]
    other_sizes = [int(s) for s in grid.get("image_size", []) if int(s) != size]
    large_size = int(P["sensitivity_large_image_size"])
    rho = float(sub["mixture_rho"])
    ms = sorted({m_sens} | {int(x) for x in grid.get("m", [])})

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
        ("05_sensitivity", enc, size, sum(other_t) + len(other_split) * n_t + sum(2 * n_mix_kinds * n_copies(mm, rho) for mm in ms),
         f"another T: reference_n {other_t} and {len(other_split)} other split × {n_t}; claim 1's fresh-padded "
         f"copies: {n_mix_kinds} kinds × (copies + fresh images transformed alike) × round({rho}·m) for m in {ms}"),
    ]
    for s in other_sizes:
        if s == large_size:
            t_l, m_l, m1 = int(large["reference_n"]), min(m_sens, int(large["m"])), min(m_sens, int(large["m_claim1"]))
            n = t_l + int(large["n_test"]) + fp_sets * m_l
            how = (f"claims 3-4 at {s} px: T {t_l} + P_n {large['n_test']} + {fp_sets} sets × {m_l}")
            # claim 1: 1a sets and their own T, the copying gradient sets and their T, fresh-padded sets
            n_1a = len({a for a, _, _ in standard}) * int(sub["claim1_seeds"])
            own_t = min(n_own, t_l) * int(sub["claim1_seeds"])
            k1 = n_copies(m1, rho)
            grad = copying_gradient_sizes(P, figures)
            n += n_1a * m1 + own_t + len(grad) * m1 + sum(set(grad)) + 2 * n_mix_kinds * k1 + (m1 - k1)
            how += (f"; claim 1: {n_1a} zoo sets × {m1} + own T {own_t} + {len(grad)} copying gradient sets × {m1} + "
                    f"their T {sum(set(grad))} + {n_mix_kinds} kinds × 2 × {k1} copies + {m1 - k1} fresh")
            # claim 2: claim2_strengths strengths per kind, m_l copies and fresh images per condition
            k2 = int(large.get("claim2_strengths") or max(len(P["low_strengths"]), len(P["high_strengths"])))
            n_c = 1 + min(k2, len(P["low_strengths"])) + min(k2, len(P["high_strengths"]))
            n += (2 * n_c - 1) * m_l
            how += f"; claim 2: ({n_c} fresh + {n_c - 1} copy sets) × {m_l}"
            rows.append(("05_sensitivity", shuffled, s, t_l + int(large["n_test"]) + (2 * n_c - 1) * m_l,
                         f"claim 2 at {s} px: T {t_l} + P_n {large['n_test']} + ({n_c} fresh + {n_c - 1} copy sets) × {m_l}"))
        else:
            n = n_t + n_test + fp_sets * m_sens
            how = f"claims 3-4 at {s} px: T {n_t} + P_n {n_test} + {fp_sets} sets × {m_sens}"
        rows.append(("05_sensitivity", enc, s, n, how))
    return [dict(notebook=nb, encoder=e, image_size=int(s), n_images=int(n), how=how, source="estimate")
            for nb, e, s, n, how in rows]
