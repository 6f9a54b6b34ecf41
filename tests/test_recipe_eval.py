"""memlib.recipe_eval: cross-recipe folds (no query shares a training run, data window or seed
with its references), the fine-grained recipe task, query_predictions on those folds, and the
claim-3-recipe separation statistic with its training-run bootstrap."""
import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import recipe_eval as re_
from memlib.errors import InputError
from fake_study import FakeStudy   # tests/fake_study.py


def table(archs=("a", "b", "c"), recipes=("default", "fast"), seeds=(0, 1, 2), no_recipe=("c",)):
    """One row per set: architecture, recipe, seed, train_data (seed s -> window s, every recipe)."""
    rows = [(a, r, s, f"train[{100 * s}:{100 * (s + 1)}]") for a in archs for r in recipes for s in seeds
            if not (a in no_recipe and r != "default")]
    return pd.DataFrame(rows, columns=["arch", "recipe", "seed", "data"])


def test_cross_recipe_folds_both_directions_and_no_leaks():
    t = table()
    pairs = re_.recipe_pairs(t.recipe)
    assert pairs == [("default", "fast"), ("fast", "default")]
    for ref, query in pairs:
        folds = re_.cross_recipe_folds(t.arch, t.recipe, t.seed, ref, query)
        assert [f.held_out for f in folds] == [f"{ref}->{query}/s{s}" for s in (0, 1, 2)]
        for f in folds:
            q, r = t.iloc[f.queries], t.iloc[f.refs]
            assert set(q.recipe) == {query} and set(q.arch) == {"a", "b"}   # c has no 'fast': never queried
            assert len(set(q.seed)) == 1 and q.seed.iloc[0] not in set(r.seed)
            # a and b are represented by the reference recipe only; c (no 'fast') by its default
            assert set(r[r.arch != "c"].recipe) == {ref} and set(r[r.arch == "c"].recipe) == {"default"}
            assert set(r.arch) == {"a", "b", "c"} and len(r) == (3 * 2 if ref == "default" else 2 * 2 + 2)
            assert re_.recipe_fold_leaks(f, t.arch, t.recipe, t.seed, t.data) == []


def test_leak_check_finds_a_shared_run_window_and_seed():
    from memlib.fingerprint import Fold
    t = table()
    same_seed = Fold("bad", np.array([0, 4]), np.array([3]), np.array([], int))   # a/default/s0 vs a/fast/s0
    leaks = re_.recipe_fold_leaks(same_seed, t.arch, t.recipe, t.seed, t.data)
    assert t.iloc[0].seed == t.iloc[3].seed == 0 and t.iloc[4].seed == 1
    assert len(leaks) == 2 and "trains on train[0:100]" in leaks[0] and "seed 0" in leaks[1]
    same_run = Fold("bad", np.array([3]), np.array([3]), np.array([], int))
    assert any("is model a/fast/s0/train[0:100]" in x for x in re_.recipe_fold_leaks(same_run, t.arch, t.recipe, t.seed, t.data))


def test_cross_recipe_fold_errors():
    t = table()
    with pytest.raises(InputError, match="both 'fast'"):
        re_.cross_recipe_folds(t.arch, t.recipe, t.seed, "fast", "fast")
    one_seed = table(seeds=(0, 1))
    keep = ~((one_seed.recipe == "fast") & (one_seed.seed == 1) & (one_seed.arch == "a"))
    u = one_seed[keep]
    with pytest.raises(InputError, match="no 'fast' set besides seed 0"):
        re_.cross_recipe_folds(u.arch, u.recipe, u.seed, "fast", "default")


def test_recipe_task_folds_stay_inside_one_architecture():
    t = table(recipes=("default", "fast", "slow"))
    folds = re_.recipe_task_folds(t.arch, t.recipe, t.seed, "a")
    assert len(folds) == 3
    for f in folds:
        assert set(t.arch.iloc[np.r_[f.refs, f.queries]]) == {"a"}
        assert sorted(t.recipe.iloc[f.queries]) == ["default", "fast", "slow"]
        assert len(t.iloc[f.refs]) == 6 and not re_.recipe_fold_leaks(f, t.arch, t.recipe, t.seed, t.data)
    with pytest.raises(InputError, match="1 recipe"):
        re_.recipe_task_folds(t.arch, t.recipe, t.seed, "c")


def _inputs(curves_per_set):
    return ae.SizeInputs([np.asarray(c, float) for c in curves_per_set],
                         [[np.arange(3)] * len(c) for c in curves_per_set])


def test_query_predictions_on_cross_recipe_folds():
    """The architecture sets the curve's level, the recipe only a small shift: every cross-recipe
    query is attributed to its architecture; if the recipe set the level, none would be."""
    t = table()
    level = {"a": 0.0, "b": 5.0, "c": 10.0}
    rng = np.random.default_rng(0)
    by_arch = [level[a] + (0.5 if r == "fast" else 0.0) + rng.normal(0, 0.05, (2, 4))
               for a, r in zip(t.arch, t.recipe)]
    folds = [f for ref, q in re_.recipe_pairs(t.recipe) for f in re_.cross_recipe_folds(t.arch, t.recipe, t.seed, ref, q)]
    pred = ae.query_predictions(t.arch.to_numpy(), t.seed.to_numpy(), _inputs(by_arch), folds=folds)
    curve = pred[pred.method == ae.CURVE_METHOD]
    assert len(curve) == 2 * 3 * 2 * 2           # directions x seeds x queried archs x draws
    assert (curve.true == curve.pred).all() and set(curve.fold.str[:12]) == {"default->fas", "fast->defaul"}
    # recipe dominates: fast a looks like b's level, so a/fast queries against default refs go to b
    by_recipe = [level[a] + (5.0 if (r == "fast" and a == "a") else 0.0) + rng.normal(0, 0.05, (2, 4))
                 for a, r in zip(t.arch, t.recipe)]
    pred = ae.query_predictions(t.arch.to_numpy(), t.seed.to_numpy(), _inputs(by_recipe), folds=folds)
    c = pred[(pred.method == ae.CURVE_METHOD) & pred.fold.str.startswith("default->") & (pred.true == "a")]
    assert len(c) == 6 and (c.pred == "b").all()


def _curves(spread_recipe, spread_run, archs=("a", "b", "c"), recipes=("default", "fast", "slow"),
            seeds=(0, 1, 2), seed=0):
    """Synthetic full-set curves: architecture level 0 / 1 / 2 on 6 layers, + a per-recipe
    offset of size spread_recipe, + per-run noise of size spread_run."""
    rng = np.random.default_rng(seed)
    t = table(archs=archs, recipes=recipes, seeds=seeds, no_recipe=())
    shape = np.linspace(-1, 1, 6)
    offsets = {(a, r): rng.normal(0, spread_recipe, 6) for a in archs for r in recipes}
    curves = np.stack([archs.index(a) * 1.0 + shape * archs.index(a) + offsets[a, r] + rng.normal(0, spread_run, 6)
                       for a, r in zip(t.arch, t.recipe)])
    return t, curves


def test_separation_when_recipes_cluster_by_architecture():
    t, curves = _curves(0.02, 0.02)
    sep = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=300, seed=1)
    assert list(sep.table.label) == ["a", "b", "c"] and (sep.table.n_recipes == 3).all()
    assert (sep.table.n_runs == 9).all() and sep.table.separated.all()
    assert sep.worst < 0.1 and sep.worst_hi < 1 and sep.worst_lo <= sep.worst <= sep.worst_hi
    assert sep.boot.shape == (300, 3)


def test_no_separation_when_recipes_scatter():
    t, curves = _curves(3.0, 0.02)
    sep = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=300, seed=1)
    assert sep.worst > 1 and sep.worst_hi > 1 and not sep.table.separated.all()


def test_ci_widens_with_between_run_spread():
    widths = []
    for spread in (0.05, 0.3):
        t, curves = _curves(0.05, spread, seeds=(0, 1, 2, 3))
        sep = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=400, seed=2)
        widths.append(float((sep.table.ratio_hi - sep.table.ratio_lo).mean()))
    assert widths[1] > 2 * widths[0] > 0


def test_across_pairs_skip_same_seed_pairs():
    """Two recipes of one seed share the data window: identical curves there must not count."""
    t = table(archs=("a", "b"), recipes=("default", "fast"), seeds=(0, 1), no_recipe=())
    base = {"a": 0.0, "b": 10.0}
    # same seed -> identical curves across recipes; different seed -> 1 apart
    curves = np.stack([np.full(3, base[a] + s) for a, s in zip(t.arch, t.seed)])
    sep = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=50)
    assert np.allclose(sep.table.across, np.sqrt(3))     # only seed-0 vs seed-1 pairs: |1| on 3 layers
    with pytest.raises(InputError, match=">= 2 labels"):
        re_.recipe_separation(curves[t.arch == "a"], t.arch[t.arch == "a"], t.recipe[t.arch == "a"], t.seed[t.arch == "a"])
    same_seed = (t.seed == 0).to_numpy()                  # two recipes, but only of one seed
    with pytest.raises(InputError, match="different recipe and different seed"):
        re_.recipe_separation(curves[same_seed], t.arch[same_seed], t.recipe[same_seed], t.seed[same_seed])
    with pytest.raises(InputError, match="two recipes"):
        re_.recipe_separation(curves[t.recipe == "default"], t.arch[t.recipe == "default"],
                              t.recipe[t.recipe == "default"], t.seed[t.recipe == "default"])


def test_folds_over_a_profiles_recipe_models_have_no_leaks():
    """The table a notebook will build: every training run of zoo.recipe_models (defaults
    included), its recipe and its seed window from zoo.train_spec; every fold of every
    direction and of the recipe task is leak-free, and a default model of seed s trains on the
    same window as its recipes of seed s (so the leak check must, and does, hold seeds apart)."""
    from memlib import zoo
    from memlib.params import load_params
    p = load_params("smoke", overrides={"zoo_recipes": {"vae": {"half-steps": {"steps": 150}, "lr-x2": {"lr": 0.004}},
                                                        "gmm": {"fewer-components": {"n_components": 5}}}})
    runs = zoo.recipe_models(p, include_default=True)
    t = pd.DataFrame([(a, zoo.recipe_of(v), s, zoo.train_spec(v, p, s)) for a, v, s in runs],
                     columns=["arch", "recipe", "seed", "data"])
    assert len(t) == (3 + 2) * 2 and t.groupby("seed").data.nunique().eq(1).all()
    folds = [f for ref, q in re_.recipe_pairs(t.recipe) for f in re_.cross_recipe_folds(t.arch, t.recipe, t.seed, ref, q)]
    folds += [f for a in ("vae", "gmm") for f in re_.recipe_task_folds(t.arch, t.recipe, t.seed, a)]
    assert len(folds) == 3 * 2 * 2 + 2 * 2
    assert all(f.queries.size and f.refs.size for f in folds)
    assert all(re_.recipe_fold_leaks(f, t.arch, t.recipe, t.seed, t.data) == [] for f in folds)


# --------------------------------------------------------------------------- the notebook's runner


def _set_images(level, seed, n=30):
    rng = np.random.default_rng(seed)
    return np.clip(level + rng.normal(0, 3, (n, 4, 4)), 0, 255).astype(np.uint8)


def test_run_recipe_attribution_gives_recipe_sets_the_run_inputs_and_no_leaks():
    """The recipe sets get exactly the inputs run_fingerprinting would give them as further sets
    of its table (same subsets, curves, features, final-norm C_T), the run's sets keep theirs,
    every fold is leak-free, and with architecture-set levels every cross-recipe query goes to its
    architecture."""
    from memlib import fingerprint_study as fs

    study, family_of = FakeStudy(), {"a": "f1", "a2": "f1", "b": "f2", "c": "f3"}.get
    level = {"a": 40, "a2": 90, "b": 140, "c": 190}
    shift = {"half-steps": 4, "lr-half": -4}
    base = {(a, s): _set_images(level[a], 10 * i + s) for i, a in enumerate(level) for s in (0, 1, 2)}
    recipe = {(a, r, s): _set_images(level[a] + shift[r], 100 + 10 * i + s + 3 * j)
              for i, a in enumerate(("a", "a2", "b")) for j, r in enumerate(shift) for s in (0, 1, 2)}
    data = {k: f"train[{k[-1]}]" for k in list(base) + list(recipe)}
    kw = dict(sizes=[10, 30], n_draws=3, progress=False)
    run = fs.run_fingerprinting(study, base, family_of, **kw)
    att = re_.run_recipe_attribution(study, run, recipe, data, family_of, n_draws=3, progress=False)
    assert att.leaks == [] and len(att.keys) == len(base) + len(recipe)
    assert set(att.folds) == {re_.ACROSS_TASK, *(f"{re_.RECIPE_TASK}/{a}" for a in ("a", "a2", "b"))}
    # the same table as one run: recipe sets as further 'architectures', in the same positions
    joined = fs.run_fingerprinting(study, {**base, **{(f"{a}~{r}", s): x for (a, r, s), x in recipe.items()}},
                                   lambda a: family_of(a.split("~")[0]), **kw)
    for n in run.sizes:
        for i in range(len(att.keys)):
            got, want = att.inputs[n], joined.clean[n]
            assert [s.tolist() for s in got.subsets[i]] == [s.tolist() for s in want.subsets[i]]
            np.testing.assert_allclose(got.curves[i], want.curves[i])
            np.testing.assert_allclose(got.features[i], want.features[i])
            np.testing.assert_allclose(got.final_norm[i], want.final_norm[i])
    np.testing.assert_allclose(att.full_curves()[:len(base)], run.full_curves())
    p = att.predictions
    across = p[(p.task == re_.ACROSS_TASK) & (p.method == ae.CURVE_METHOD)]
    assert (across.true == across.pred).all()
    assert set(across.split) == {"default->half-steps", "half-steps->default", "default->lr-half", "lr-half->default"}
    assert set(across.grain) == {"architecture", "family"}
    which = p[p.task == re_.RECIPE_TASK]
    assert set(which.split) == {"a", "a2", "b"} and (which.chance == 1 / 3).all()
    assert set(which.true) == {"default", "half-steps", "lr-half"}
    acc = att.accuracy
    assert list(acc.columns) == re_.RECIPE_KEYS + ["method", "accuracy", "acc_lo", "acc_hi", "n_queries", "chance"]
    pooled = acc[acc.split == re_.ALL_SPLITS]
    assert pooled.index.max() < acc[acc.split != re_.ALL_SPLITS].index.min()      # pooled rows first
    assert set(pooled.task) == {re_.ACROSS_TASK, re_.RECIPE_TASK}
    # every cross-recipe query: the query recipe differs from every same-architecture reference's
    for f in att.folds[re_.ACROSS_TASK]:
        same = att.architectures[f.refs][:, None] == att.architectures[f.queries][None, :]
        assert not (same & (att.recipes[f.refs][:, None] == att.recipes[f.queries][None, :])).any()
    with pytest.raises(InputError, match="no recipe sets"):
        re_.run_recipe_attribution(study, run, {}, data, family_of, n_draws=3)
    with pytest.raises(InputError, match="architecture of the run"):
        re_.run_recipe_attribution(study, run, {("zzz", "x", 0): base["a", 0]}, data, family_of, n_draws=3)

    rows, table = re_.recipe_claim_rows(att, family_of, n_boot=50)
    assert [r["claim"] for r in rows] == ["3-recipe", "3-recipe-family"]
    assert all(r["verdict"] == "reproduced" for r in rows)        # 3 architectures x 3 recipes x 3 seeds, 2 families
    assert set(table[table.grain == "family"].label) == {"f1", "f2"}   # f3 has no recipe sets
    assert set(table[table.grain == "architecture"].label) == {"a", "a2", "b"}


def test_separation_targets_pick_labels():
    t, curves = _curves(0.02, 0.02)
    sep = re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=20, targets=["b"])
    assert sep.table.label.tolist() == ["b"]
    with pytest.raises(InputError, match="targets"):
        re_.recipe_separation(curves, t.arch, t.recipe, t.seed, n_boot=20, targets=["zzz"])


# --------------------------------------------------------------------------- the open set across recipes


def _open_table(recipe_curve, archs=("a", "a2", "b", "c"), recipes=("default", "twin", "far"), seeds=(0, 1, 2),
                draws=4, seed=0):
    """Sets of 4 architectures in 3 families (a, a2: f1), c with the default recipe only; a
    default set's subset curves are its architecture's level + noise; recipe_curve(arch, recipe,
    seed, default_curves) gives a recipe set's curves."""
    rng = np.random.default_rng(seed)
    family = {"a": "f1", "a2": "f1", "b": "f2", "c": "f3"}
    level = {"a": 0.0, "a2": 3.0, "b": 6.0, "c": 9.0}
    t = table(archs=archs, recipes=recipes, seeds=seeds, no_recipe=("c",))
    base = {(a, s): level[a] + np.linspace(0, 1, 5) + rng.normal(0, 0.2, (draws, 5)) for a in archs for s in seeds}
    curves = [base[a, s] if r == "default" else recipe_curve(a, r, s, base)
              for a, r, s in zip(t.arch, t.recipe, t.seed)]
    return t, curves, t.arch.map(family).to_numpy()


def _twin_or_far(a, r, s, base):
    # twin: the architecture's own default curves of the next seed (a reference: distance 0);
    # far: 50 curve units away from everything
    return base[a, (s + 1) % 3] if r == "twin" else base[a, s] + 50.0


def test_recipe_open_set_known_answer():
    t, curves, families = _open_table(_twin_or_far)
    res = re_.recipe_open_set(curves, t.arch, t.recipe, t.seed, families, n_boot=200, seed=3)
    s = res.shares.set_index(["kind", "architecture", "recipe"])
    twin, far = s.loc["recipe", "all", "twin"], s.loc["recipe", "all", "far"]
    assert twin.right == 1 and twin.rejected == 0 and twin.wrong == 0 and twin.right_lo == 1
    assert far.rejected == 1 and far.rejected_lo == 1 and far.right == 0
    assert far.auc == 1 and twin.auc < 0.5                       # twin scores 0: nearer than any known query
    pooled = s.loc["recipe", "all", "all"]
    assert pooled.rejected == pytest.approx(0.5) and pooled.n_runs == 3 * 2 * 3 and pooled.n_queries == 3 * 2 * 3 * 4
    assert s.loc["recipe", "a2", "far"].n_runs == 3
    # the threshold rule: about false_alarm of the known queries of each fold above it (3 folds x 4 arch x 4 draws)
    assert (res.thresholds.n_known == 16).all() and (res.thresholds.known_rejected == 1 / 16).all()
    known = s.loc["known", "all", "default"]
    assert known.rejected == pytest.approx(1 / 16) and known.right == pytest.approx(15 / 16) and np.isnan(known.auc)
    q = res.queries
    assert set(q.outcome) <= set(re_.OUTCOMES) and (q[q.recipe == "far"].outcome == "rejected").all()
    assert (q[q.recipe == "twin"].outcome == "accepted, right architecture").all()
    for col in ("rejected", "right", "wrong"):
        sh = res.shares
        assert ((sh[f"{col}_lo"] <= sh[col] + 1e-12) & (sh[col] <= sh[f"{col}_hi"] + 1e-12)).all()
    # the contrast: a left-out family is 6 units from the nearest other: always rejected, and its AUC is
    # today's open-set ROC AUC on the default sets
    u = res.unknown_family.set_index("left_out")
    assert list(u.index) == ["all", "f1", "f2", "f3"] and (u.rejected == 1).all()
    d = t.recipe == "default"
    o = ae.open_set_scores([c for c, k in zip(curves, d) if k], t.arch[d].to_numpy(), t.seed[d].to_numpy(), families[d])
    assert u.loc["all"].auc == pytest.approx(ae.open_set_roc(o.score, o.unknown).attrs["auc"])
    tab = res.table()
    assert set(tab.what) == {"recipe open set", "unknown family"} and len(tab) == len(res.shares) + len(u)


def test_recipe_open_set_same_score_as_known_gives_known_shares():
    """A recipe whose curves equal the default curves of its own run's seed scores exactly as the
    known queries do: the same shares, AUC 0.5."""
    t, curves, families = _open_table(lambda a, r, s, base: base[a, s], recipes=("default", "same"))
    res = re_.recipe_open_set(curves, t.arch, t.recipe, t.seed, families, n_boot=100)
    same = res.shares.set_index(["kind", "architecture", "recipe"]).loc["recipe", "all", "same"]
    known_on_those = res.queries[(res.queries.kind == "known") & res.queries.architecture.isin(["a", "a2", "b"])]
    assert same.rejected == pytest.approx((known_on_those.outcome == "rejected").mean())
    assert same.auc == pytest.approx(0.5, abs=0.1)


def test_recipe_open_set_queries_share_no_run_with_references():
    t, curves, families = _open_table(_twin_or_far)
    res = re_.recipe_open_set(curves, t.arch, t.recipe, t.seed, families, n_boot=20)
    from memlib.fingerprint import Fold
    assert [f.held_out for f in res.folds] == [0, 1, 2]
    for f in res.folds:
        assert set(t.recipe.iloc[f.refs]) == {"default"} and set(t.recipe.iloc[f.queries]) == {"default"}
        assert set(t.recipe.iloc[f.unknown]) == {"twin", "far"}
        both = Fold(f.held_out, f.refs, np.r_[f.queries, f.unknown], np.array([], int))
        assert re_.recipe_fold_leaks(both, t.arch, t.recipe, t.seed, t.data) == []
        assert set(t.seed.iloc[np.r_[f.queries, f.unknown]]) == {f.held_out}
        assert f.held_out not in set(t.seed.iloc[f.refs])
    runs = res.queries.groupby("seed").run.unique()
    for f in res.folds:
        ref_runs = {f"{a}/{r}/s{s}" for a, r, s in zip(t.arch.iloc[f.refs], t.recipe.iloc[f.refs], t.seed.iloc[f.refs])}
        assert not ref_runs & set(runs[f.held_out])


def test_recipe_open_set_bad_input():
    t, curves, families = _open_table(_twin_or_far)
    args = (t.arch, t.recipe, t.seed)
    with pytest.raises(InputError, match="equally long"):
        re_.recipe_open_set(curves, t.arch[:-1], t.recipe, t.seed, families)
    with pytest.raises(InputError, match="families"):
        re_.recipe_open_set(curves, *args, families[:-1])
    with pytest.raises(InputError, match="sets but"):
        re_.recipe_open_set(curves[:-1], *args, families)
    d = (t.recipe == "default").to_numpy()
    with pytest.raises(InputError, match="no set of a recipe"):
        re_.recipe_open_set([c for c, k in zip(curves, d) if k], t.arch[d], t.recipe[d], t.seed[d], families[d])
    with pytest.raises(InputError, match="false_alarm"):
        re_.recipe_open_set(curves, *args, families, false_alarm=0)
    no_ref = ~((t.arch == "b") & (t.recipe == "default") & (t.seed != 0)).to_numpy()
    with pytest.raises(InputError, match=r"\['b'\] have no default-recipe reference"):
        re_.recipe_open_set([c for c, k in zip(curves, no_ref) if k], t.arch[no_ref], t.recipe[no_ref],
                            t.seed[no_ref], families[no_ref])
    bad = list(curves)
    bad[0] = bad[0].copy()
    bad[0][0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        re_.recipe_open_set(bad, *args, families)
    # (N, L) full-set curves work as one subset per set
    res = re_.recipe_open_set(np.stack([c[0] for c in curves]), *args, families, n_boot=20)
    assert res.shares.n_queries.iloc[0] == 12
