"""memlib.depth_signal: the claim-1 mixtures (exact share, the named training images) and the
scoring of a set (C_T, effect size, CIs, late-minus-early draws)."""
from __future__ import annotations

import numpy as np
import pytest

from memlib import copies, depth_signal
from memlib.bootstrap import late_minus_early
from memlib.ct import fit_reference
from memlib.errors import InputError
from memlib.features import LayerFeatures


def _layers(*arrays):
    return LayerFeatures([np.asarray(a, np.float32) for a in arrays], {})


def test_mixture_sources_are_distinct_seeded_training_rows():
    src = depth_signal.mixture_sources(1000, 200, [0.1, 0.5, 0.25], seed=3)
    assert src.dtype == np.int64 and len(src) == 100 and len(np.unique(src)) == 100
    assert src.min() >= 0 and src.max() < 1000
    np.testing.assert_array_equal(src, depth_signal.mixture_sources(1000, 200, [0.5], seed=3))
    with pytest.raises(InputError):
        depth_signal.mixture_sources(50, 200, [0.5], seed=0)


@pytest.mark.parametrize("rho,k", [(0.1, 20), (0.25, 50), (0.5, 100), (0.0025, 1), (0.0, 0)])
def test_mixture_features_hold_exactly_round_rho_m_named_copies(rho, k):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(1000, 6, 6), dtype=np.uint8)
    samples = rng.integers(0, 256, size=(200, 6, 6), dtype=np.uint8)
    src = depth_signal.mixture_sources(len(train), 200, [0.1, 0.25, 0.5], seed=1)
    made = copies.make_copies("exact", train[src])
    flat = lambda x: x.reshape(len(x), 36) / 255.0
    mix = depth_signal.mixture_features(_layers(flat(samples), -flat(samples)),
                                        _layers(flat(made), -flat(made)), rho)
    assert mix.n == 200 and len(mix) == 2
    # the first k rows are the training images src[:k], the rest the model's own samples k..m-1
    np.testing.assert_array_equal(mix[0][:k], flat(train[src[:k]]).astype(np.float32))
    np.testing.assert_array_equal(mix[1][k:], -flat(samples[k:]).astype(np.float32))
    # the same set as memlib.copies.mix builds from images
    images, is_copy, source = copies.mix(made[:200] if len(made) >= 200 else
                                         np.concatenate([made, samples[len(made):]]), samples, rho,
                                         source_index=np.pad(src, (0, max(0, 200 - len(src)))))
    assert is_copy.sum() == k and np.array_equal(source[:k], src[:k])
    np.testing.assert_array_equal(mix[0], flat(images).astype(np.float32))


def test_mixture_features_need_enough_copies():
    f = _layers(np.zeros((10, 2)))
    with pytest.raises(InputError, match="5 copies needed, 2 given"):
        depth_signal.mixture_features(f, _layers(np.zeros((2, 2))), 0.5)


def test_score_set_rows_and_contrast_draws():
    rng = np.random.default_rng(5)
    train = [rng.normal(size=(300, 5)) for _ in range(4)]
    test = [rng.normal(size=(300, 5)) for _ in range(4)]
    ref = fit_reference(train, test, n_cells=2, pca_dim=None)
    exact = [t[:120] for t in train]
    curve, contrast = depth_signal.score_set(ref, exact, n_boot=30, seed=0, level=0.9,
                                             group="mixture", set="exact", rho=1.0)
    assert len(curve) == 4 and [r["layer"] for r in curve] == [1, 2, 3, 4]
    assert all(r["effect"] == -1.0 and r["effect_lo"] == -1.0 and r["ct"] < -10 for r in curve)
    assert all(r["rho"] == 1.0 and r["n_gen"] == 120 for r in curve)
    assert [r["draw"] for r in contrast] == list(range(-1, 30))
    assert all(r["contrast"] == 0.0 and r["set"] == "exact" for r in contrast)   # floor everywhere
    # a set that copies in the first layers only: the contrast is positive (signal weakens)
    half = [t[:120] if l < 2 else rng.normal(size=(120, 5)) for l, t in enumerate(train)]
    curve, contrast = depth_signal.score_set(ref, half, n_boot=30, seed=0, level=0.9,
                                             group="gradient", set="half")
    eff = np.array([r["effect"] for r in curve])
    assert contrast[0]["contrast"] == pytest.approx(late_minus_early(eff)) and contrast[0]["contrast"] > 0.8
    with pytest.raises(InputError, match="'set' label"):
        depth_signal.score_set(ref, exact, n_boot=3, seed=0, level=0.9, group="kde")
