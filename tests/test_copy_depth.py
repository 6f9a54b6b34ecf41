"""memlib.copy_depth: claim 1 (Study v3) from scored sets — parts, reference draws, 1a / 1b rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib import claims, copy_depth as cd
from memlib import hierarchical as hb
from memlib.errors import InputError
from memlib.features import LayerFeatures
from memlib.row_effects import split_table

L, D = 6, 8


def _layers(x):
    return LayerFeatures([np.ascontiguousarray(a) for a in x], {})


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(L, 600, D)).astype(np.float32)
    test = rng.normal(size=(L, 600, D)).astype(np.float32)
    refs, _ = hb.reference_draws(train, test, n_test=200, n_draws=3, seed=0, n_cells=2, pca_dim=None)
    return rng, train, test, refs


def _set_whose_effect_rises(rng, slope, m=200, jitter=0.0):
    """Rows of training points plus noise whose scale grows with depth: the effect rises with
    depth for slope > 0 (nearer to T early, farther late)."""
    base = np.random.default_rng(int(rng.integers(1 << 30))).normal(size=(m, D)).astype(np.float32)
    return np.stack([base * (0.6 + slope * l / (L - 1) + jitter) for l in range(L)])


def test_stacked_distances_equal_a_search_of_the_stacked_features(world):
    rng, train, _, refs = world
    a, b = train[:, :50] + 0.01, rng.normal(size=(L, 70, D)).astype(np.float32)
    da, db = cd.distances(refs, a), cd.distances(refs, b)
    stacked = cd.stack_distances((da, np.arange(10, 50)), (db, np.arange(30)))
    direct = cd.distances(refs, np.concatenate([a[:, 10:50], b[:, :30]], axis=1))
    for s, d in zip(stacked, direct):
        np.testing.assert_array_equal(s.dist, d.dist)
        np.testing.assert_array_equal(s.cells, d.cells)
    with pytest.raises(InputError, match="different numbers of reference draws"):
        cd.stack_distances((da, np.arange(3)), (db[:2], np.arange(3)))


def test_parts_are_the_engines_subset_curves_and_contributions_add_up(world):
    rng, train, test, refs = world
    copies = train[:, :60]                               # exact copies: the floor on every layer
    under = 1.6 * rng.normal(size=(L, 140, D)).astype(np.float32)
    gen = np.concatenate([copies, under], axis=1)
    flags = np.arange(200) < 60
    s = cd.score_set("mix", "mixture", cd.distances(refs, gen), reference="T",
                     parts={"copies": flags, "non-copies": ~flags}, copy_rate=0.3)
    t = cd.decomposition_table([s], {"T": refs}, n_boot=30, seed=0, level=0.95)
    assert list(t.columns) == cd.DECOMPOSITION_COLUMNS and len(t) == 3 * L
    by = t.set_index(["part", "layer"])
    for l in range(1, L + 1):
        expect = np.mean([split_table(r, d, {"c": flags})["effect"][l - 1] for r, d in zip(refs, s.dists)])
        assert by.loc[("copies", l), "effect"] == pytest.approx(expect, abs=1e-12)
        assert by.loc[("copies", l), "effect"] == -1.0 and by.loc[("copies", l), "ci_low"] == -1.0
        assert (by.loc[("copies", l), "contribution"] + by.loc[("non-copies", l), "contribution"]
                == pytest.approx(by.loc[("all", l), "effect"], abs=1e-12))
        assert by.loc[("non-copies", l), "effect"] > by.loc[("all", l), "effect"] > -1
    assert by.loc[("copies", 1), "share"] == pytest.approx(0.3)


def test_transform_seen_tells_copies_from_fresh_images(world):
    rng, train, test, refs = world
    copies = _layers(train[:, :300] + 0.01)               # nearer to T than any held-out image
    fresh = _layers(rng.normal(size=(L, 300, D)).astype(np.float32))
    seen, sens, hi = cd.transform_seen(refs[0], copies, fresh, n_boot=40, seed=0, level=0.95)
    assert seen and (sens < -0.5).all() and (hi < 0).all()
    other = _layers(rng.normal(size=(L, 300, D)).astype(np.float32))
    assert not cd.transform_seen(refs[0], other, fresh, n_boot=40, seed=0, level=0.95)[0]


def test_copy_rows_are_the_manifests_flags():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    test = rng.integers(0, 256, size=(60, 6, 6), dtype=np.uint8)
    samples = np.concatenate([train[:5], np.clip(train[5:8].astype(int) + 1, 0, 255).astype(np.uint8),
                              rng.integers(0, 256, size=(12, 6, 6), dtype=np.uint8)])
    kind = cd.copy_rows(samples, train, test, quantile=0.05)
    assert list(kind[:5]) == ["exact"] * 5 and list(kind[5:8]) == ["near"] * 3 and (kind[8:] == "none").all()
    cd.copy_rows(samples, train, test, quantile=0.05, copy_rate=8 / 20)
    with pytest.raises(InputError, match="manifest says"):
        cd.copy_rows(samples, train, test, quantile=0.05, copy_rate=0.5)


def test_resample_levels_fall_back_where_a_group_has_one_cluster_or_one_set():
    st = lambda name, cluster: hb.rows_stat(name, np.zeros((5, 1)), cluster=cluster)
    assert cd.resample_levels({"a": [st("x", "A"), st("y", "B")]}) == hb.LEVELS
    assert cd.resample_levels({"a": [st("x", "A"), st("y", "A")]}) == ("reference", "sets", "points")
    assert cd.resample_levels({"a": [st("x", "A")]}) == ("reference", "points")


def _claim_world(world, slopes, copy_slope):
    rng, _, _, refs = world
    zoo = [cd.score_set(f"z{i}", "zoo", cd.distances(refs, _set_whose_effect_rises(rng, s)),
                        reference="T", cluster=f"arch{i % 3}") for i, s in enumerate(slopes)]
    copy_sets = []
    for i in range(4):
        gen = _set_whose_effect_rises(rng, copy_slope)
        copy_sets.append((cd.score_set(f"g{i}", "gradient", cd.distances(refs, gen), reference="T",
                                       cluster=f"arch{i % 2}", parts={"near copies": np.arange(150)}),
                          "near copies"))
    return zoo, copy_sets, {"T": refs}


def test_claim_1a_and_1b_known_answers(world):
    zoo, copy_sets, refs = _claim_world(world, slopes=[1.5] * 6, copy_slope=1.5)
    run = cd.run_claim_1(zoo, copy_sets, zoo, refs, n_boot=60, seed=0, level=0.95, n_layers=L)
    rows = {r["claim"]: r for r in run.rows}
    assert set(rows) == {claims.CLAIM_1A, claims.CLAIM_1B}
    assert rows[claims.CLAIM_1A]["verdict"] == "reproduced" and rows[claims.CLAIM_1A]["ci_low"] > 0
    assert rows[claims.CLAIM_1B]["verdict"] == "reproduced"
    assert "reference+clusters+sets+points" in rows[claims.CLAIM_1A]["metric"]
    # the effect falls with depth: neither rises
    zoo, copy_sets, refs = _claim_world(world, slopes=[-0.5] * 6, copy_slope=-0.5)
    run = cd.run_claim_1(zoo, copy_sets, zoo, refs, n_boot=60, seed=0, level=0.95, n_layers=L)
    assert {r["claim"]: r["verdict"] for r in run.rows} == {claims.CLAIM_1A: "not reproduced",
                                                             claims.CLAIM_1B: "not reproduced"}
    assert set(run.per_set.side) == {"below 0"}


def test_hierarchical_interval_is_wider_than_the_points_only_one(world):
    zoo, copy_sets, refs = _claim_world(world, slopes=[0.2, 1.2, 0.4, 1.6, 0.0, 1.0], copy_slope=1.0)
    run = cd.run_claim_1(zoo, copy_sets, zoo, refs, n_boot=80, seed=0, level=0.95, n_layers=L)
    w = run.widths[(run.widths.claim == claims.CLAIM_1A) & (run.widths.label == "all")].set_index("resample")
    assert w.loc["reference+clusters+sets+points", "width"] > 2 * w.loc["points", "width"]
    assert w.loc["points", "value"] == pytest.approx(w.loc["reference+clusters+sets+points", "value"])
    # the deciding interval in the widths table is the one in the contrasts (computed once, reused)
    deciding = run.contrasts[(run.contrasts.claim == claims.CLAIM_1A) & (run.contrasts.label == "all")].iloc[0]
    assert (w.loc["reference+clusters+sets+points", ["ci_low", "ci_high"]].tolist()
            == [deciding.ci_low, deciding.ci_high])
    again = cd.ci_widths(claims.CLAIM_1A, {"zoo": [cd.part_stat(s, refs[s.reference]) for s in zoo]}, n_boot=80,
                         seed=0, level=0.95, resample=("reference", "clusters", "sets", "points"))
    assert again.equals(run.widths[run.widths.claim == claims.CLAIM_1A].reset_index(drop=True))


def test_no_eligible_set_is_untestable_and_undefined_parts_are_excluded(world):
    rng, _, _, refs = world
    tiny = cd.score_set("few", "gradient", cd.distances(refs, _set_whose_effect_rises(rng, 1.0)),
                        reference="T", parts={"near copies": np.arange(12)})
    run = cd.run_claim_1([], [(tiny, "near copies")], [tiny], {"T": refs}, n_boot=10, seed=0,
                         level=0.95, n_layers=L, excluded=[dict(set="x", part="all", reason="exact")])
    assert [r["verdict"] for r in run.rows] == ["untestable here", "untestable here"]
    assert list(run.excluded.set) == ["x", "few"] and "undefined" in run.excluded.reason.iloc[1]
    with pytest.raises(InputError, match="empty"):
        cd.part_stat(cd.score_set("e", "g", tiny.dists, reference="T", parts={"p": np.zeros(0, int)}),
                     refs, "p")


def test_run_is_deterministic(world):
    zoo, copy_sets, refs = _claim_world(world, slopes=[0.5] * 3, copy_slope=0.5)
    a = cd.run_claim_1(zoo, copy_sets, zoo, refs, n_boot=20, seed=3, level=0.9, n_layers=L)
    b = cd.run_claim_1(zoo, copy_sets, zoo, refs, n_boot=20, seed=3, level=0.9, n_layers=L)
    pd.testing.assert_frame_equal(a.decomposition, b.decomposition)
    pd.testing.assert_frame_equal(a.contrasts, b.contrasts)
    assert a.rows == b.rows


# --------------------------------------------------------------------------- ClaimOneSets, group_numbers


def test_claim_one_sets_decide_which_rows_enter_1b(world):
    """The builder notebook 03 and the sensitivity grid share: near copies of a copying gradient
    set enter 1b, a set below COPY_RATE_MIN or with exact copies only does not; fresh-padded sets
    are the first round(rho m) copies then fresh rows, and enter unless exact or unseen."""
    rng, train, _, refs = world
    d = lambda x: cd.distances(refs, x)
    sets = cd.ClaimOneSets()
    gen = _set_whose_effect_rises(rng, 1.0)
    kind = np.array(["exact"] * 20 + ["near"] * 60 + ["none"] * 120)
    g = sets.add_gradient("copies", d(gen), kind, reference="T", cluster="a", copy_rate=0.4)
    sets.add_gradient("rare", d(gen), kind, reference="T", cluster="a", copy_rate=claims.COPY_RATE_MIN / 2)
    sets.add_gradient("exact", d(gen), np.where(kind == "near", "exact", kind), reference="T", cluster="b", copy_rate=0.4)
    np.testing.assert_array_equal(g.parts["near copies"], np.arange(20, 80))
    np.testing.assert_array_equal(g.parts["copies"], np.arange(80))
    copies_d = {k: d(train[:, :100] + 0.01 * i) for i, k in enumerate(["exact", "low-level", "high-level"])}
    fresh_d = d(rng.normal(size=(L, 150, D)).astype(np.float32))
    padded = sets.add_fresh_padded(copies_d, fresh_d, [0.25, 0.5], 200, {"low-level": True, "high-level": False},
                                   reference="T")
    assert [s.name for s in padded] == ["fresh+exact@0.25", "fresh+exact@0.5", "fresh+low-level@0.25",
                                        "fresh+low-level@0.5", "fresh+high-level@0.25", "fresh+high-level@0.5"]
    low = padded[3]
    np.testing.assert_array_equal(low.dists[1].dist, np.concatenate([copies_d["low-level"][1].dist[:, :100],
                                                                     fresh_d[1].dist[:, :100]], axis=1))
    assert low.cluster == "low-level" and low.copy_rate == 0.5 and list(low.parts) == ["fresh-padded", "copies"]
    assert [(s.name, p) for s, p in sets.copy_sets] == [("copies", "near copies"), ("fresh+low-level@0.25", "fresh-padded"),
                                                        ("fresh+low-level@0.5", "fresh-padded")]
    reasons = dict(zip(pd.DataFrame(sets.excluded).set, pd.DataFrame(sets.excluded).reason))
    assert "copy rate below" in reasons["rare"] and "only exact" in reasons["exact"]
    assert "exact copies" in reasons["fresh+exact@0.5"] and "no layer sees" in reasons["fresh+high-level@0.5"]
    with pytest.raises(InputError, match="fresh images needed"):
        sets.add_fresh_padded(copies_d, fresh_d, [0.1], 200, {}, reference="T")
    with pytest.raises(InputError, match="copies needed"):
        sets.add_mixtures("base", d(gen), {"low-level": d(train[:, :10])}, [0.5], reference="T", cluster="a")


def test_claim_one_sets_run_is_run_claim_1_and_group_numbers_are_its_contrasts(world):
    rng, train, _, refs = world
    d = lambda x: cd.distances(refs, x)
    sets = cd.ClaimOneSets()
    for i in range(4):
        sets.add_zoo(f"z{i}", d(_set_whose_effect_rises(rng, 1.0)), reference="T", cluster=f"arch{i % 2}")
    kind = np.array(["near"] * 150 + ["none"] * 50)
    for i in range(2):
        sets.add_gradient(f"g{i}", d(_set_whose_effect_rises(rng, 1.0)), kind, reference="T", cluster=f"g{i}", copy_rate=0.75)
    sets.add_mixtures("base", d(_set_whose_effect_rises(rng, 0.5)), {"low-level": d(train[:, :100])}, [0.5],
                      reference="T", cluster="arch0")
    boot = dict(n_boot=20, seed=1, level=0.9, n_layers=L)
    run = sets.run({"T": refs}, **boot)
    direct = cd.run_claim_1(sets.zoo, sets.copy_sets, sets.zoo + sets.parts, {"T": refs}, excluded=sets.excluded, **boot)
    assert run.rows == direct.rows
    pd.testing.assert_frame_equal(run.decomposition, direct.decomposition)
    assert set(run.decomposition.set) == {"z0", "z1", "z2", "z3", "g0", "g1", "base", "base+low-level@0.5"}
    quick = sets.run({"T": refs}, decompose=False, **boot)
    assert quick.rows == run.rows and len(quick.decomposition) == 0
    groups = cd.group_numbers(run)
    assert list(groups.columns) == cd.GROUP_COLUMNS
    assert list(zip(groups.claim, groups.group, groups.n_sets)) == [
        (claims.CLAIM_1A, "zoo", 4), (claims.CLAIM_1A, "all", 4), (claims.CLAIM_1B, "gradient", 2), (claims.CLAIM_1B, "all", 2)]
    for r, c in zip(groups.itertuples(), run.contrasts.itertuples()):
        assert (r.value, r.ci_low, r.ci_high) == (c.value, c.ci_low, c.ci_high)
    rows = {r["claim"]: r for r in run.rows}
    pooled = groups[groups.group == "all"].set_index("claim")
    for claim in rows:
        assert (rows[claim]["value"], rows[claim]["ci_low"]) == (pooled.loc[claim, "value"], pooled.loc[claim, "ci_low"])
    assert len(cd.group_numbers(cd.ClaimOneSets().run({"T": refs}, **boot))) == 0
