"""memlib.copy_report: per-sample nearest training images, flags and kinds.

Known answers on hand-made features (parity with a brute-force search), the kind rules on
hand-made flag patterns, a memory bound that rules out an N×N matrix, and planted copies
embedded by the offline DINOv2-S: exact copies flagged at every layer, fresh images (almost)
nowhere, tile-shuffled (low-level) copies at early layers and not at late ones.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from memlib import copy_report as cr
from memlib.errors import InputError, ParameterError
from memlib.fingerprint import accuracy_ci


def _brute(queries, base):
    d = cdist(queries.astype(np.float64), base.astype(np.float64))
    return d.min(axis=1), d.argmin(axis=1)


@pytest.fixture
def planted(rng):
    """Two layers of train (200), test (150) and gen = 10 exact train rows + 20 fresh rows."""
    layers = [rng.normal(size=(350, 8)).astype(np.float32),
              rng.normal(size=(350, 16)).astype(np.float32)]
    train = [x[:200] for x in layers]
    test = [x[200:350] for x in layers]
    fresh = [rng.normal(size=(20, x.shape[1])).astype(np.float32) for x in layers]
    gen = [np.concatenate([t[[5, 17, 33, 40, 41, 99, 120, 150, 170, 199]], f])
           for t, f in zip(train, fresh)]
    return train, test, gen


def test_distances_indices_and_thresholds_match_brute_force(planted):
    train, test, gen = planted
    rep = cr.find_copies(train, test, gen, quantile=0.05, layers=[0, 1], progress=False)
    assert rep.distances.shape == (2, 30) and rep.nearest.shape == (2, 30)
    for k in range(2):
        d, i = _brute(gen[k], train[k])
        np.testing.assert_allclose(rep.distances[k], d, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rep.nearest[k], i)
        td, _ = _brute(test[k], train[k])
        assert rep.thresholds[k] == pytest.approx(np.quantile(td, 0.05), rel=1e-5)
    np.testing.assert_array_equal(rep.nearest[:, :10], [[5, 17, 33, 40, 41, 99, 120, 150, 170,
                                                         199]] * 2)
    assert (rep.distances[:, :10] == 0).all()
    assert rep.flagged[:, :10].all()
    assert (rep.kinds()[:10] == "exact").all()
    assert rep.n_train == 200 and rep.n_test == 150 and rep.n_samples == 30


def test_table_is_tidy_and_complete(planted):
    train, test, gen = planted
    rep = cr.find_copies(train, test, gen, quantile=0.05, layers=[0, 1], progress=False)
    ids = np.array([f"g{i}" for i in range(30)])
    train_ids = np.array([f"t{i}" for i in range(200)])
    table = rep.table(ids, train_ids)
    assert list(table.columns) == cr.COPY_COLUMNS
    assert len(table) == 60
    assert list(table["sample"][:4]) == [0, 0, 1, 1] and list(table["layer"][:4]) == [0, 1, 0, 1]
    row = table[(table["sample"] == 1) & (table["layer"] == 1)].iloc[0]
    assert row["nearest_train"] == 17 and row["train_id"] == "t17" and row["sample_id"] == "g1"
    assert row["distance"] == 0 and row["flagged"]
    assert table["flagged"].sum() == rep.flagged.sum()


def test_share_flagged_uses_the_wilson_interval(planted):
    train, test, gen = planted
    rep = cr.find_copies(train, test, gen, quantile=0.05, layers=[0, 1], progress=False)
    shares = rep.share_flagged()
    for k, row in shares.iterrows():
        acc, lo, hi = accuracy_ci(rep.flagged[k], method="wilson")
        assert (row.share_flagged, row.share_lo, row.share_hi) == pytest.approx((acc, lo, hi))
        assert row.n_flagged == rep.flagged[k].sum() >= 10
        assert row.expected_if_no_copying == 0.05


def test_summary_joins_ct_rows_by_layer(planted):
    train, test, gen = planted
    rep = cr.find_copies(train, test, gen, quantile=0.05, layers=[0, 1], progress=False)
    summary = cr.summary_table(rep, [dict(layer=1, ct=-3.0, ct_lo=-4.0, ct_hi=-2.0),
                                     dict(layer=0, ct=-5.0, ct_lo=-6.0, ct_hi=-4.0)])
    assert list(summary["layer"]) == [0, 1] and list(summary["space"]) == ["pixels",
                                                                           "encoder block"]
    assert list(summary["ct"]) == [-5.0, -3.0]
    assert (summary["n_gen"] == 30).all() and (summary["n_train"] == 200).all()


def test_kinds_follow_the_layers_that_flag():
    layers = np.arange(13)                 # pixels + 12 blocks: early 0-4, late 9-12
    f = np.zeros((13, 6), bool)
    f[:, 0] = True                          # every layer
    f[[0, 2], 1] = True                     # early only
    f[[10, 12], 2] = True                   # late only
    f[[3, 11], 3] = True                    # early and late, not all
    f[[6], 4] = True                        # middle only
    kinds = cr.copy_kinds(f, layers)
    assert list(kinds) == ["exact", "low-level", "semantic", "mixed", "mixed", "none"]
    # raw pixels alone: flagged there means flagged everywhere
    assert list(cr.copy_kinds(np.array([[True, False]]), np.array([0]))) == ["exact", "none"]
    with pytest.raises(InputError, match="flagged must be"):
        cr.copy_kinds(f[:5], layers)


def test_gallery_picks_show_every_flagged_kind_first():
    rep = cr.CopyReport(np.arange(13), np.ones((13, 8), np.float32), np.zeros((13, 8), int),
                        np.full(13, 0.5), 0.01, 10, 10)
    rep.distances[:, [0, 1, 2, 3]] = 0.0                    # four exact copies
    rep.distances[:3, 4] = 0.1                              # one low-level copy
    rep.distances[11:, 5] = 0.1                             # one semantic copy
    picks = rep.gallery_picks(5)
    kinds = rep.kinds()
    assert list(kinds[picks]) == ["exact", "exact", "exact", "low-level", "semantic"]
    assert len(rep.gallery_picks(20)) == 8


def test_layer_ranges():
    assert cr.layer_ranges([0, 1, 2, 3, 4, 9, 11, 12]) == "px–4, 9, 11–12"
    assert cr.layer_ranges([]) == "no layer"


def test_bad_inputs(planted):
    train, test, gen = planted
    for q in (0.0, 1.0, -0.1, 2):
        with pytest.raises(ParameterError, match="quantile"):
            cr.find_copies(train, test, gen, quantile=q, progress=False)
    with pytest.raises(InputError, match="same layers"):
        cr.find_copies(train, test[:1], gen, quantile=0.01, progress=False)
    with pytest.raises(InputError, match="dimension"):
        cr.find_copies(train, test, [gen[1], gen[0]], quantile=0.01, progress=False)


def test_no_n_by_n_matrix(rng):
    """10,000 generated × 10,000 training points: peak memory stays far below one N×N
    float32 matrix (400 MB), i.e. the search streams."""
    train = [rng.normal(size=(10_000, 32)).astype(np.float32)]
    test = [rng.normal(size=(2_000, 32)).astype(np.float32)]
    gen = [rng.normal(size=(10_000, 32)).astype(np.float32)]
    tracemalloc.start()
    try:
        rep = cr.find_copies(train, test, gen, quantile=0.01, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.distances.shape == (1, 10_000)
    assert peak < 0.1 * 10_000 * 10_000 * 4, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.slow
def test_planted_copies_with_the_offline_encoder(cache_dir):
    """DINOv2-S (offline) at 112 px. The smoke profile's random-init ViT cannot tell early
    from late layers (its blocks all see the same thing), so the low-level case needs a
    trained encoder. 30 training images copied exactly, 30 tile-shuffled (6 % of the 4-px
    tiles moved: the pixel multiset and local patterns kept, the layout not) and 60 fresh
    images, against 400 training and 300 test images."""
    from memlib.copies import make_copies
    from memlib.data import ImageSet, load_images
    from memlib.features import embed, pixel_features

    train = load_images("fashion-mnist:train[30000:30400]")
    test = load_images("fashion-mnist:test[:300]")
    src = train.images[:30, ..., 0]
    low = make_copies("low-level", src, strength=0.06, seed=0)
    fresh = load_images("fashion-mnist:train[50000:50060]").images[..., 0]
    gen = np.concatenate([src, low, fresh])
    gen_set = ImageSet(gen, np.arange(len(gen)).astype(str), name="planted")

    def layers(images):
        return cr.with_pixels(pixel_features(images),
                              embed(images, "dinov2-s-offline", image_size=112, device="cpu",
                                    precision="float32", progress=False))

    rep = cr.find_copies(layers(train), layers(test), layers(gen_set), quantile=0.01,
                         layers=range(13), progress=False)
    kinds = rep.kinds()
    exact, shuffled, new = slice(0, 30), slice(30, 60), slice(60, 120)

    assert rep.flagged[:, exact].all() and (rep.nearest[:, exact] == np.arange(30)).all()
    assert (kinds[exact] == "exact").all()

    assert rep.flagged[:, new].mean(axis=1).max() <= 0.05, rep.flagged[:, new].mean(axis=1)
    assert (kinds[new] == "none").mean() >= 0.9

    share = rep.flagged[:, shuffled].mean(axis=1)            # (13,) per layer
    assert share[:5].max() >= 0.5 and share[-1] <= 0.5 * share[:5].max(), share
    assert share[9:].mean() < share[:5].mean(), share
    k = kinds[shuffled]
    assert (k == "low-level").sum() >= 6 and (k == "low-level").sum() >= 4 * (k == "semantic").sum()
    # a low-level copy is flagged because of its own source, at the early layers that flag it
    low_rows = np.flatnonzero(k == "low-level")
    for i in low_rows:
        flag_layers = np.flatnonzero(rep.flagged[:5, 30 + i])
        assert (rep.nearest[flag_layers, 30 + i] == i).all()
