"""The training-run interval of claims 3-4a (memlib.attribution_eval.run_bootstrap_accuracy):
parity of its point value with the attribution protocol, an exact enumeration of its replicates,
known answers, determinism and bad inputs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from memlib import attribution_eval as ae
from memlib import fingerprint as fp
from memlib.errors import InputError


def _table(n_labels=4, n_seeds=3, n_layers=6, spread=1.0, draws=1, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_labels, n_layers))
    labels = np.repeat([f"a{k}" for k in range(n_labels)], n_seeds)
    seeds = np.tile(np.arange(n_seeds), n_labels)
    runs = centres[np.repeat(np.arange(n_labels), n_seeds)] + rng.normal(0, spread, (len(labels), n_layers))
    curves = [r + rng.normal(0, 0.2 * spread, (draws, n_layers)) for r in runs]
    return curves, labels, seeds


@pytest.mark.parametrize("draws", [1, 3])
@pytest.mark.parametrize("method,distance", [(ae.CURVE_METHOD, "euclidean"), (ae.SHAPE_METHOD, "znorm")])
def test_point_accuracy_is_the_protocols(draws, method, distance):
    """Its point value is the accuracy of query_predictions / accuracy_table for that method."""
    curves, labels, seeds = _table(spread=1.2, draws=draws, seed=3)
    refs = ae.SizeInputs(curves, [[np.arange(10)] * draws for _ in curves])
    preds = ae.query_predictions(labels, seeds, refs)
    want = ae.accuracy_table(preds, seed=0).set_index("method").loc[method, "accuracy"]
    got = ae.run_bootstrap_accuracy(curves if draws > 1 else np.concatenate(curves), labels, seeds,
                                    distance=distance, n_boot=50)
    assert 0 < want < 1 and got.accuracy == pytest.approx(want, abs=1e-12)
    assert got.lo <= got.accuracy <= got.hi and got.boot.shape == (50,)


def _enumerate(curves, labels, seeds):
    """Every replicate of 2 labels x 3 runs (27 x 27 equally likely ordered draws), scored with
    memlib.fingerprint.attribute: {accuracy: probability} given that some run is scored."""
    idx = {lab: np.flatnonzero(labels == lab) for lab in np.unique(labels)}
    out: dict[float, float] = {}
    draws = [list(itertools.product(idx[lab], repeat=3)) for lab in sorted(idx)]
    for pick_a, pick_b in itertools.product(*draws):
        pick = list(pick_a) + list(pick_b)
        present = sorted(set(pick))
        hits = total = 0
        for i in pick:
            refs = [j for j in present if seeds[j] != seeds[i]]
            if not any(labels[j] == labels[i] for j in refs):
                continue            # nothing of its own left: unscored
            pred = fp.attribute(curves[i], curves[refs], labels[refs]).labels[0]
            hits, total = hits + (pred == labels[i]), total + 1
        if total:
            out[hits / total] = out.get(hits / total, 0) + 1
    n = sum(out.values())
    return {k: v / n for k, v in out.items()}


def test_replicates_match_an_exact_enumeration():
    """Two labels x three runs on a line: the replicates' distribution is the enumerated one."""
    curves = np.array([[0.0], [1.0], [4.2], [5.5], [6.0], [7.0]])   # a-s2 at 4.2 is nearer b than a
    labels = np.array(["a"] * 3 + ["b"] * 3)
    seeds = np.array([0, 1, 2, 0, 1, 2])
    exact = _enumerate(curves, labels, seeds)
    res = ae.run_bootstrap_accuracy(curves, labels, seeds, n_boot=20000, seed=1)
    assert res.accuracy == pytest.approx(5 / 6)               # a-s2 goes to b (b-s0 at 1.3), the rest right
    assert set(np.unique(res.boot)) <= set(exact)
    mean = sum(k * v for k, v in exact.items())
    assert res.boot.mean() == pytest.approx(mean, abs=0.005)
    for value, prob in exact.items():
        assert (res.boot == value).mean() == pytest.approx(prob, abs=0.015)
    assert 0 < res.unscored < 0.5 and res.redrawn / (res.redrawn + 20000) == pytest.approx(1 / 81, abs=0.004)   # both drew one run


def test_separated_labels_give_a_sure_interval_and_noisy_ones_a_wide_one():
    far = ae.run_bootstrap_accuracy(*_stack(_table(spread=0.01)), n_boot=200)
    assert (far.accuracy, far.lo, far.hi) == (1.0, 1.0, 1.0)
    near = ae.run_bootstrap_accuracy(*_stack(_table(n_labels=6, spread=1.5, seed=2)), n_boot=500)
    assert near.hi - near.lo > 0.2 and near.lo <= near.accuracy <= near.hi


def _stack(table):
    curves, labels, seeds = table
    return np.concatenate(curves), labels, seeds


def test_two_runs_per_label_still_give_an_interval():
    """With two seeds a label that draws one run is left out as a query (the sensitivity grid's
    2-seed subset); replicates with no query at all are drawn again."""
    res = ae.run_bootstrap_accuracy(*_stack(_table(n_labels=3, n_seeds=2, spread=1.0, seed=5)), n_boot=300)
    assert res.unscored > 0.2 and np.isfinite(res.boot).all() and res.redrawn >= 0


def test_deterministic_per_seed():
    args = _stack(_table(spread=1.2))
    a, b = (ae.run_bootstrap_accuracy(*args, n_boot=100, seed=7) for _ in range(2))
    assert np.array_equal(a.boot, b.boot) and (a.lo, a.hi) == (b.lo, b.hi)
    assert not np.array_equal(a.boot, ae.run_bootstrap_accuracy(*args, n_boot=100, seed=8).boot)


def test_bad_inputs_are_refused():
    curves, labels, seeds = _stack(_table())
    with pytest.raises(InputError, match="finite"):
        ae.run_bootstrap_accuracy(np.where(np.arange(curves.size).reshape(curves.shape) == 3, np.nan, curves),
                                  labels, seeds)
    with pytest.raises(InputError, match="one seed"):
        ae.run_bootstrap_accuracy(curves, labels, np.zeros_like(seeds))
    with pytest.raises(InputError, match="one \\(S_i, L\\) block"):
        ae.run_bootstrap_accuracy(curves[:-1], labels, seeds)


def test_interval_table_puts_both_intervals_side_by_side():
    from types import SimpleNamespace

    from memlib import fingerprint_study as fs
    curves, labels, seeds = _table(spread=1.2, seed=3)
    refs = ae.SizeInputs(curves, [[np.arange(10)] for _ in curves])
    preds = ae.query_predictions(labels, seeds, refs).assign(grain="architecture", corruption="none", query_size=10)
    acc = ae.accuracy_table(preds, ["grain", "corruption", "query_size"], seed=0)
    run = SimpleNamespace(accuracy=acc, sizes=[10])
    run_ci = {ae.CURVE_METHOD: ae.run_bootstrap_accuracy(np.concatenate(curves), labels, seeds, n_boot=200)}
    t = fs.interval_table(run, run_ci).iloc[0]
    q = acc.set_index("method").loc[ae.CURVE_METHOD]
    assert (t.query_lo, t.query_hi) == (q.acc_lo, q.acc_hi) and t.accuracy == pytest.approx(q.accuracy)
    assert t.run_width == pytest.approx(t.run_hi - t.run_lo) and t.width_ratio == pytest.approx(t.run_width / t.query_width)
