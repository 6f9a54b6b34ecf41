"""Tests of memlib.fingerprint on synthetic curves and features (no encoder, no ct)."""
import numpy as np
import pytest
from scipy.cluster import hierarchy

from memlib import fingerprint as fp
from memlib.errors import InputError

L = 12
FAMILIES = np.array(["dcgan", "ddpm", "kde", "vae"])


def synthetic_curves(noise, n_per_family=5, seed=0, identical=False):
    """(F * n, L) curves: one smooth prototype per family plus iid Gaussian noise."""
    rng = np.random.default_rng(seed)
    depth = np.linspace(0, 1, L)
    protos = np.stack([10 * np.sin(2 * np.pi * (depth + f / 4)) + 5 * f for f in range(4)])
    if identical:
        protos[:] = protos[0]
    curves = np.repeat(protos, n_per_family, axis=0)
    labels = np.repeat(FAMILIES, n_per_family)
    return curves + rng.normal(0, noise, curves.shape), labels


# --------------------------------------------------------------------------- attribution


@pytest.mark.parametrize("distance", fp.DISTANCES)
@pytest.mark.parametrize("rule", fp.RULES)
def test_attribution_perfect_with_small_noise(distance, rule):
    refs, y = synthetic_curves(0.1, seed=0)
    queries, truth = synthetic_curves(0.1, seed=1)
    res = fp.attribute(queries, refs, y, distance=distance, rule=rule)
    assert (res.labels == truth).all()
    assert res.distances.shape == (len(queries), 4)
    assert list(res.families) == list(FAMILIES)


def test_attribution_at_chance_when_families_identical():
    refs, y = synthetic_curves(1.0, n_per_family=5, seed=0, identical=True)
    queries, truth = synthetic_curves(1.0, n_per_family=100, seed=1, identical=True)
    acc = np.mean(fp.attribute(queries, refs, y).labels == truth)
    assert 0.15 < acc < 0.35  # chance = 0.25 over 400 queries


def test_final_layer_subset_uses_only_that_layer():
    refs, y = synthetic_curves(0.1)
    queries, truth = synthetic_curves(0.1, seed=1)
    queries[:, :-1] = 1e6 * np.random.default_rng(2).normal(size=(len(queries), L - 1))
    assert (fp.attribute(queries, refs, y, layers=[-1]).labels == truth).all()
    assert not (fp.attribute(queries, refs, y).labels == truth).all()


def test_distance_invariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, L)), rng.normal(size=(4, L))
    base = {d: fp.curve_distances(a, b, d) for d in fp.DISTANCES}
    shifted_scaled = 3.0 * a + 7.0
    for d in ("znorm", "correlation"):
        np.testing.assert_allclose(fp.curve_distances(shifted_scaled, b, d), base[d], atol=1e-10)
    np.testing.assert_allclose(fp.curve_distances(3.0 * a, b, "cosine"), base["cosine"],
                               atol=1e-10)
    # cosine keeps the offset and the sign; raw Euclidean keeps everything
    assert not np.allclose(fp.curve_distances(a + 7.0, b, "cosine"), base["cosine"])
    assert not np.allclose(fp.curve_distances(-a, b, "cosine"), base["cosine"])
    assert not np.allclose(fp.curve_distances(3.0 * a, b, "euclidean"), base["euclidean"])
    np.testing.assert_allclose(base["euclidean"][0, 0], np.linalg.norm(a[0] - b[0]))
    # z-normalised Euclidean and correlation distance are the same thing: d^2 = 2 L (1 - r)
    np.testing.assert_allclose(base["znorm"] ** 2, 2 * L * base["correlation"], atol=1e-10)
    r = np.corrcoef(a[1], b[2])[0, 1]
    np.testing.assert_allclose(base["correlation"][1, 2], 1 - r, atol=1e-12)


def test_bad_inputs_fail_clearly():
    refs, y = synthetic_curves(0.1)
    with pytest.raises(InputError, match="NaN"):
        fp.attribute(np.full((1, L), np.nan), refs, y)
    with pytest.raises(InputError, match="layers"):
        fp.attribute(refs[:, :5], refs, y)
    with pytest.raises(InputError, match="unknown distance"):
        fp.attribute(refs, refs, y, distance="manhattan")
    with pytest.raises(InputError, match="at least 2 layers"):
        fp.attribute(refs, refs, y, distance="znorm", layers=[0])


def test_best_layer_is_chosen_on_references_only():
    rng = np.random.default_rng(0)
    y = np.repeat(FAMILIES, 6)
    code = np.repeat(np.arange(4.0), 6)
    refs = rng.normal(0, 1, (24, L))
    refs[:, 3] += 20 * code            # layer 3 separates families in the references
    queries = rng.normal(0, 1, (24, L))
    queries[:, 8] += 20 * code         # ... but layer 8 would separate the queries
    layer, loo_acc = fp.select_layer(refs, y)
    assert layer == 3 and loo_acc[3] == 1.0 and loo_acc.shape == (L,)
    res, chosen = fp.best_layer_attribute(queries, refs, y)
    assert chosen == 3
    assert np.mean(res.labels == y) < 0.6   # queries cannot pull the choice to layer 8
    res2, chosen2 = fp.best_layer_attribute(queries[::-1], refs, y)
    assert chosen2 == 3


def test_select_layer_groups_stop_sibling_subsets_vouching():
    # two near-identical subset curves per set: without groups, each vouches for its sibling
    rng = np.random.default_rng(0)
    sets = rng.normal(0, 1, (8, L))
    refs = np.repeat(sets, 2, axis=0) + rng.normal(0, 1e-6, (16, L))
    y = np.repeat(np.array(["a", "b"] * 4), 2)
    groups = np.repeat(np.arange(8), 2)
    _, acc_plain = fp.select_layer(refs, y)
    _, acc_grouped = fp.select_layer(refs, y, groups=groups)
    assert acc_plain.min() == 1.0
    assert acc_grouped.mean() < 0.7   # labels are random: honest LOO is near chance


# --------------------------------------------------------------------------- protocol


def test_subsample_indices_deterministic_and_valid():
    a = fp.subsample_indices(1000, 100, 5, seed=3)
    b = fp.subsample_indices(1000, 100, 5, seed=3)
    c = fp.subsample_indices(1000, 100, 5, seed=4)
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], a[1])
    for idx in a:
        assert idx.shape == (100,) and len(np.unique(idx)) == 100 and idx.max() < 1000
    assert np.array_equal(fp.subsample_indices(10, 10, 1, seed=0)[0], np.arange(10))
    with pytest.raises(InputError):
        fp.subsample_indices(10, 11, 1, seed=0)


def test_seed_folds_hold_out_one_seed_of_every_family():
    fams = np.array(["a", "a", "a", "b", "b", "b"])
    seeds = np.array([0, 1, 2, 0, 1, 2])
    folds = fp.seed_folds(fams, seeds)
    assert [f.held_out for f in folds] == [0, 1, 2]
    for f in folds:
        assert set(seeds[f.queries]) == {f.held_out}
        assert f.held_out not in set(seeds[f.refs])
        assert set(fams[f.queries]) == set(fams[f.refs]) == {"a", "b"}
        assert len(np.intersect1d(f.refs, f.queries)) == 0
    with pytest.raises(InputError, match="seeds per family"):
        fp.seed_folds(["a", "a", "b"], [0, 1, 0])


def test_open_set_folds():
    fams = np.repeat(["a", "b", "c"], 3)
    seeds = np.tile([0, 1, 2], 3)
    folds = fp.open_set_folds(fams, seeds)
    assert len(folds) == 9
    for f in folds:
        unseen, s = f.held_out
        assert unseen not in set(fams[f.refs]) and unseen not in set(fams[f.queries])
        assert set(fams[f.unknown]) == {unseen} and len(f.unknown) == 3
        assert set(seeds[f.queries]) == {s} and s not in set(seeds[f.refs])


# --------------------------------------------------------------------------- accuracy


def test_wilson_matches_hand_computation():
    acc, lo, hi = fp.accuracy_ci(np.array([True] * 8 + [False] * 2))
    assert acc == 0.8
    # (p + z^2/2n) / (1 + z^2/n) -+ z/(1 + z^2/n) sqrt(p(1-p)/n + z^2/4n^2), z = 1.959964
    assert lo == pytest.approx(0.49016, abs=1e-4) and hi == pytest.approx(0.94332, abs=1e-4)


@pytest.mark.parametrize("method", ["wilson", "bootstrap"])
def test_ci_contains_estimate_and_narrows(method):
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        correct = rng.random(n) < 0.7
        acc, lo, hi = fp.accuracy_ci(correct, method=method)
        assert lo <= acc <= hi and 0 <= lo and hi <= 1
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    acc, lo, hi = fp.accuracy_ci(np.ones(30, bool), method=method)
    assert acc == hi == 1.0 and lo <= 1.0


def test_cluster_bootstrap_is_wider_for_clustered_queries():
    # 10 held-out sets x 20 subsets each; a set's subsets are all right or all wrong
    set_ok = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 0], bool)
    correct, groups = np.repeat(set_ok, 20), np.repeat(np.arange(10), 20)
    _, lo_i, hi_i = fp.accuracy_ci(correct, method="bootstrap")
    _, lo_c, hi_c = fp.accuracy_ci(correct, method="bootstrap", groups=groups)
    assert hi_c - lo_c > 2 * (hi_i - lo_i)


def test_confusion_matrix():
    cm = fp.confusion_matrix(["a", "b", "b", "c"], ["a", "a", "b", "unknown"],
                             ["a", "b", "c", "unknown"])
    assert cm.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    with pytest.raises(InputError, match="not in the given label order"):
        fp.confusion_matrix(["a"], ["z"], ["a", "b"])


# --------------------------------------------------------------------------- Fréchet / probe


def gaussian_sets(n_sets_per_family, n, seed, sep=4.0, dim=8):
    rng = np.random.default_rng(seed)
    means = sep * np.eye(dim)[:3]
    feats, labels = [], []
    for f, mu in enumerate(means):
        for _ in range(n_sets_per_family):
            feats.append(mu + rng.normal(size=(n, dim)))
            labels.append(FAMILIES[f])
    return feats, np.array(labels)


def test_fd_attribute_recovers_families():
    refs, y = gaussian_sets(2, 300, seed=0)
    queries, truth = gaussian_sets(3, 100, seed=1)
    res = fp.fd_attribute(queries, refs, y)
    assert (res.labels == truth).all() and res.distances.shape == (9, 3)


def test_probe_recovers_labels_on_separable_gaussians():
    refs, y = gaussian_sets(2, 200, seed=0)
    queries, truth = gaussian_sets(3, 50, seed=1)
    for q, family in zip(queries, truth):
        labels = fp.probe_sample_labels(q, refs, y)
        assert labels.shape == (50,) and np.mean(labels == family) > 0.9   # ~unanimous samples
        assert fp.vote(labels, [np.arange(50), np.arange(10)]).tolist() == [family, family]


def test_probe_near_chance_when_families_identical():
    refs, y = gaussian_sets(2, 200, seed=0, sep=0.0)
    queries, truth = gaussian_sets(30, 50, seed=1, sep=0.0)
    votes = [fp.vote(fp.probe_sample_labels(q, refs, y), [np.arange(len(q))])[0] for q in queries]
    assert 0.1 < np.mean(np.array(votes) == truth) < 0.6   # chance = 1/3 over 90 queries


def test_probe_uses_k_nearest_reference_samples():
    """1-D references: family "a" at 0, 1, 2 and "b" at 10, 11."""
    refs = [np.array([[0.0], [1.0], [2.0]]), np.array([[10.0], [11.0]])]
    samples = np.array([[1.4], [9.0], [6.1], [5.9]])
    assert fp.probe_sample_labels(samples, refs, ["a", "b"], k=1).tolist() == ["a", "b", "b", "a"]
    # k = 5 takes every reference sample's vote: 3 "a" against 2 "b", whatever the sample
    assert fp.probe_sample_labels(samples, refs, ["a", "b"], k=5).tolist() == ["a"] * 4


def test_vote_majority_and_ties_to_the_first_family():
    labels = np.array(["b", "a", "b", "c"])
    assert fp.vote(labels, [[0, 1, 2], [1, 3], [0, 1], [3]]).tolist() == ["b", "a", "a", "c"]


# --------------------------------------------------------------------------- open set


def open_set_case(unknown_offset, identical_to_known=False):
    refs, y = synthetic_curves(1.0, n_per_family=5, seed=0)
    known = y != "vae"
    queries, truth = synthetic_curves(1.0, n_per_family=50, seed=1)
    unknown = truth == "vae"
    if identical_to_known:   # the unseen family has exactly dcgan's curve
        queries[unknown] = queries[truth == "dcgan"] + np.random.default_rng(3).normal(
            0, 1e-9, (50, L))
    queries[unknown] += unknown_offset
    return fp.open_set(queries, unknown, refs[known], y[known])


def test_open_set_far_unknown_is_rejected():
    res = open_set_case(unknown_offset=100.0)
    assert res.auroc == pytest.approx(1.0)
    assert res.reject_unknown == 1.0 and res.reject_known < 0.3
    assert res.scores.shape == (200,)


def test_open_set_unknown_identical_to_known_is_chance():
    res = open_set_case(unknown_offset=0.0, identical_to_known=True)
    assert 0.35 < res.auroc < 0.65


# --------------------------------------------------------------------------- dendrogram


def test_linkage_groups_nearly_identical_families_first():
    curves, y = synthetic_curves(0.1, n_per_family=3)
    twin = curves[y == "kde"] + 0.01
    curves, y = np.concatenate([curves, twin]), np.concatenate([y, ["kde2"] * 3])
    z, fams = fp.family_linkage(curves, y)
    assert fams == ["dcgan", "ddpm", "kde", "kde2", "vae"] and z.shape == (4, 4)
    first = {fams[int(z[0, 0])], fams[int(z[0, 1])]}
    assert first == {"kde", "kde2"}
    assert hierarchy.is_valid_linkage(z)


def test_open_set_threshold_is_the_quantile_of_leave_one_out_nearest_distances():
    # 1-D curves 0, 1, 3 (two layers, the second constant): leaving each out, its nearest other
    # reference is 1, 1 and 2 away
    curves = np.array([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])
    labels = np.array(["a", "a", "b"])
    groups = np.array([0, 1, 2])
    assert fp.open_set_threshold(curves, labels, groups=groups, quantile=1.0) == pytest.approx(2.0)
    assert fp.open_set_threshold(curves, labels, groups=groups, quantile=0.0) == pytest.approx(1.0)
    assert fp.open_set_threshold(curves, labels, groups=groups, quantile=0.75) == pytest.approx(1.5)


def _classifier_labels(query, refs, labels, k):
    """The k-NN probe as scikit-learn's classifier on the labels themselves (the implementation
    the label-free counts replaced), as an independent reference."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate(refs)
    y = np.concatenate([np.full(len(f), lab) for f, lab in zip(refs, labels)])
    return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k)).fit(x, y).predict(query)


@pytest.mark.parametrize("k", [1, 4, 5])
def test_probe_counts_give_the_classifier_labels_at_every_grain(k):
    """One neighbour count serves two labellings of the same sets (family, architecture) and
    gives, label for label, what a classifier fitted on each labelling predicts, including
    tied votes (k = 4, and rounded features with duplicated points)."""
    rng = np.random.default_rng(3)
    refs = [np.round(rng.normal(loc=i % 3, size=(40, 4)), 1) for i in range(6)]
    query = np.concatenate([np.round(rng.normal(loc=1, size=(200, 4)), 1), refs[2][:10]])
    families = np.array(["b", "a", "c", "a", "b", "c"])
    architectures = np.array(["b1", "a1", "c1", "a2", "b2", "c1"])
    counts = fp.probe_neighbour_counts(query, refs, k=k)
    assert counts.shape == (len(query), 6) and (counts.sum(axis=1) == k).all()
    for labels in (families, architectures):
        got = fp.probe_labels_from_counts(counts, labels)
        assert got.tolist() == _classifier_labels(query, refs, labels, k).tolist()
        assert got.tolist() == fp.probe_sample_labels(query, refs, labels, k=k).tolist()


def test_fd_matrix_serves_every_grain():
    refs, y = gaussian_sets(2, 300, seed=0)
    queries, _ = gaussian_sets(2, 100, seed=1)
    d = fp.fd_matrix(queries, refs)
    assert d.shape == (6, 6) and (d >= 0).all()
    finer = np.array([f"{lab}{i % 2}" for i, lab in enumerate(y)])
    for labels in (y, finer):
        direct = fp.fd_attribute(queries, refs, labels)
        shared = fp.nearest_label(d, labels)
        assert shared.labels.tolist() == direct.labels.tolist()
        np.testing.assert_array_equal(shared.distances, direct.distances)
    with pytest.raises(InputError, match="ref_labels"):
        fp.nearest_label(d, y[:3])
