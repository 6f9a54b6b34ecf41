"""memlib.fingerprint_study.run_fingerprinting under corruption: every corrupted query is scored
against clean references and against references corrupted the same way (the ``references``
column), leave one seed out; the clean-reference rows and everything a claim reads are unchanged.
A fake study without an encoder: 3 'layers' of 4 pixel features, a subset's curve = their mean."""
import numpy as np
import pandas as pd
import pytest

from memlib import attribution_eval as ae
from memlib import copies
from memlib import fingerprint_study as fs
from memlib.claims import fingerprint_claims
from fake_study import FakeStudy   # tests/fake_study.py

OLD_KEYS = ["grain", "corruption", "level", "query_size"]      # TABLE_KEYS before the references column
FAMILY = {"a": "f1", "b": "f2", "c": "f3"}.get
# seed 2 of architecture a looks like b; inverted (the fake corruption) a -> 215, a-s2 -> 120, b -> 115, c -> 65
LEVEL = {("a", 0): 40, ("a", 1): 40, ("a", 2): 135, ("b", 0): 140, ("b", 1): 140, ("b", 2): 140,
         ("c", 0): 190, ("c", 1): 190, ("c", 2): 190}
CORRUPTIONS = [("invert", 1.0), ("noise", 8.0)]


def _images():
    out = {}
    for i, (key, level) in enumerate(LEVEL.items()):
        rng = np.random.default_rng(i)
        out[key] = np.clip(level + rng.normal(0, 3, (30, 4, 4)), 0, 255).astype(np.uint8)
    return out


def _corrupt(x, kind, level, seed=0):
    return (255 - np.asarray(x)).astype(np.uint8) if kind == "invert" else copies.corrupt(x, kind, level, seed=seed)


@pytest.fixture(scope="module")
def runs():
    """(run with corruptions, run without, every query_predictions_by_grain call of the first run,
    one entry per grain)."""
    mp = pytest.MonkeyPatch()
    calls = []
    real = ae.query_predictions_by_grain

    def spy(labels, seeds, refs, queries=None, **kw):
        calls.extend(dict(labels=np.asarray(y), seeds=np.asarray(seeds), refs=refs, queries=queries, kw=kw)
                     for y in labels.values())
        return real(labels, seeds, refs, queries, **kw)

    mp.setattr(fs, "corrupt", _corrupt)
    mp.setattr(ae, "query_predictions_by_grain", spy)
    kw = dict(sizes=[10, 30], n_draws=3, progress=False)
    try:
        run = fs.run_fingerprinting(FakeStudy(), _images(), FAMILY, corruptions=CORRUPTIONS, robust_n=30,
                                    robust_query_size=10, **kw)
        got = list(calls)
        plain = fs.run_fingerprinting(FakeStudy(), _images(), FAMILY, **kw)
    finally:
        mp.undo()
    return run, plain, got


def test_matched_rows_exist_for_every_corruption_and_grain(runs):
    run, _, _ = runs
    p = run.predictions
    assert set(p.references) == {fs.CLEAN_REFERENCES, fs.CORRUPTED_REFERENCES}
    assert (p[p.corruption == "none"].references == fs.CLEAN_REFERENCES).all()
    for kind, lev in CORRUPTIONS:
        for grain in ae.GRAINS:
            d = p[(p.corruption == kind) & (p.level == lev) & (p.grain == grain)]
            clean, matched = (d[d.references == r] for r in (fs.CLEAN_REFERENCES, fs.CORRUPTED_REFERENCES))
            assert len(matched) == len(clean) > 0 and (matched.query_size == 10).all()
            # the same queries (fold, set, draw, method), attributed twice
            cols = ["fold", "set", "draw", "method", "true"]
            pd.testing.assert_frame_equal(clean[cols].reset_index(drop=True), matched[cols].reset_index(drop=True))
    assert fs.TABLE_KEYS == ["grain", "corruption", "level", "references", "query_size"]
    acc = run.accuracy
    assert list(acc.columns[:len(fs.TABLE_KEYS)]) == fs.TABLE_KEYS
    assert not acc.duplicated(fs.TABLE_KEYS + ["method"]).any()
    assert set(acc[acc.corruption != "none"].references) == {fs.CLEAN_REFERENCES, fs.CORRUPTED_REFERENCES}
    assert set(run.gaps[run.gaps.corruption != "none"].references) == {fs.CLEAN_REFERENCES, fs.CORRUPTED_REFERENCES}


def test_matched_references_are_the_other_seeds_corrupted_sets(runs):
    run, _, calls = runs
    matched = [c for c in calls if c["queries"] is None and all(c["refs"] is not x for x in run.clean.values())]
    vs_clean = [c for c in calls if c["queries"] is not None]
    assert len(matched) == len(vs_clean) == len(CORRUPTIONS) * len(ae.GRAINS)
    for m, c in zip(matched, vs_clean):
        # matched: references = the very corrupted inputs that the clean-reference call queried, leave one seed out
        assert m["refs"] is c["queries"] and c["refs"] is run.clean[10] and not m["kw"] and not c["kw"]
        for fold in ae.leave_one_seed_out(m["labels"], m["seeds"]):
            assert not np.isin(m["seeds"][fold.refs], fold.held_out).any()
            assert (m["seeds"][fold.queries] == fold.held_out).all()
    p = run.predictions
    assert (p.fold == run.seeds[p.set]).all()                                   # a query's fold is its own seed
    curve = p[(p.method == ae.CURVE_METHOD) & (p.grain == "architecture") & (p.corruption == "invert")]
    key = curve.set.map(lambda i: run.keys[i])
    clean = curve[(curve.references == fs.CLEAN_REFERENCES) & key.isin([("a", 0), ("a", 1), ("c", 0), ("c", 1), ("c", 2)])]
    # inverted queries against clean references: a (-> 215) goes to c (190), c (-> 65) to a (40)
    assert (clean.pred == clean.true.map({"a": "c", "c": "a"})).all() and len(clean)
    # matched: right, except a-s2 (-> 120), whose nearest corrupted set of another seed is b (-> 115);
    # with its own seed's corrupted set among the references it would go to a
    m = curve[curve.references == fs.CORRUPTED_REFERENCES]
    a2 = key[m.index] == ("a", 2)
    assert (m[~a2].pred == m[~a2].true).all() and (m[a2].pred == "b").all() and a2.sum() == 3


def test_clean_reference_rows_are_unchanged(runs):
    run, plain, calls = runs
    p, q = run.predictions, plain.predictions
    # clean queries: the same rows as a run without corruptions
    clean_q = p[p.corruption == "none"].reset_index(drop=True)
    pd.testing.assert_frame_equal(clean_q, q.reset_index(drop=True))
    # corrupted queries against clean references: what query_predictions(labels, seeds, clean refs, corrupted) gives
    vs_clean = [c for c in calls if c["queries"] is not None]
    want = pd.concat([ae.query_predictions(c["labels"], c["seeds"], c["refs"], c["queries"]) for c in vs_clean],
                     ignore_index=True)
    got = p[(p.corruption != "none") & (p.references == fs.CLEAN_REFERENCES)]
    pd.testing.assert_frame_equal(got[list(want.columns)].reset_index(drop=True), want)
    # the tables of the clean-reference rows: as before the references column, row for row
    old = p[p.references == fs.CLEAN_REFERENCES].drop(columns="references")
    acc_old = ae.accuracy_table(old, OLD_KEYS, seed=0)
    acc_new = run.accuracy[run.accuracy.references == fs.CLEAN_REFERENCES].drop(columns="references")
    pd.testing.assert_frame_equal(acc_new.reset_index(drop=True), acc_old[list(acc_new.columns)])
    gap_old = ae.baseline_gap_table(old, OLD_KEYS, seed=0)
    gap_new = run.gaps[run.gaps.references == fs.CLEAN_REFERENCES].drop(columns="references")
    pd.testing.assert_frame_equal(gap_new.reset_index(drop=True), gap_old[list(gap_new.columns)])
    # the claims read clean queries only: the same rows with or without corruptions, matched or not,
    # and the same numbers and verdicts as from the tables before the references column
    rows = fs.claim_rows(run)
    assert rows == fs.claim_rows(plain)
    before = {r["claim"]: r for r in fingerprint_claims(acc_old, gap_old, run.signature, run_ci=fs.run_intervals(run))}
    assert set(before) <= {r["claim"] for r in rows}
    for r in rows:
        if r["claim"] in before:
            assert [r[c] for c in ("value", "ci_low", "ci_high", "verdict")] == \
                [before[r["claim"]][c] for c in ("value", "ci_low", "ci_high", "verdict")], r["claim"]
