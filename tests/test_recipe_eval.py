"""memlib.recipe_eval: cross-recipe folds (no query shares a training run, data window or seed
with its references), the fine-grained recipe task, query_predictions on those folds, and the
claim-3-recipe separation statistic with its training-run bootstrap."""
import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import recipe_eval as re_
from memlib.errors import InputError


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
