"""bench/cross-cpu/: the latest cold run of each CPU kind (issue 32). Runs of one commit on both
kinds must give every verdict alike, each value inside the other run's CI."""
import json

import numpy as np
import pandas as pd
import pytest

from bench import cross_cpu


def _claims(rows):
    return pd.DataFrame(rows, columns=["claim", "value", "ci_low", "ci_high", "verdict"])


def test_agreement_known_answers():
    a = _claims([("1a", 0.16, 0.07, 0.29, "partly"), ("4a", 0.96, 0.89, 1.0, "reproduced"),
                 ("3", 0.78, np.nan, np.nan, "partly"), ("x", np.nan, np.nan, np.nan, "untestable here")])
    b = _claims([("1a", 0.20, 0.10, 0.30, "partly"), ("4a", 0.815, 0.667, 0.963, "partly"),
                 ("3", 0.70, np.nan, np.nan, "partly"), ("x", np.nan, np.nan, np.nan, "untestable here"),
                 ("only-b", 1.0, 0.5, 1.5, "reproduced")])
    t = cross_cpu.agreement(a, b).set_index("claim")
    assert t.loc["1a", "agree"] and t.loc["1a", "a_in_b_ci"] is True and t.loc["1a", "b_in_a_ci"] is True
    # the case: 4a reproduced on one kind, partly on the other, the value outside the CI
    assert not t.loc["4a", "same_verdict"] and t.loc["4a", "b_in_a_ci"] is False and not t.loc["4a", "agree"]
    assert t.loc["3", "agree"] and np.isnan(t.loc["3", "b_in_a_ci"])        # no CI: the verdict decides
    assert t.loc["x", "agree"]                                               # untestable on both
    assert not t.loc["only-b", "agree"]                                      # a claim one run lacks
    inside_only = cross_cpu.agreement(a.iloc[:1], _claims([("1a", 0.30, 0.29, 0.31, "partly")])).iloc[0]
    assert inside_only.same_verdict and not inside_only.agree                # same verdict, A's value outside B's CI


def test_record_and_compare_round_trip(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    _claims([("1a", 0.16, 0.07, 0.29, "partly")]).to_csv(figures / "claims.csv", index=False)
    (figures / "executed").mkdir()
    pd.DataFrame(dict(notebook=["00_ct_by_hand"], seconds=[11.0])).to_csv(figures / "executed" / "timings.csv", index=False)
    (figures / "provenance.json").write_text(json.dumps({"git": {"commit": "abc1234def"},
                                                          "machine": {"cpu": "Intel Xeon"}}))
    (figures / "fingerprint_db").mkdir()
    pd.DataFrame(dict(model=["a-s0"] * 4, n=[50, 50, 1000, 1000], layer=[1, 2, 1, 2], ct=[0.1, 0.2, 0.3, 0.4])).to_csv(
        figures / "fingerprint_db" / "curves.csv", index=False)
    folder = cross_cpu.record(figures, wall_seconds=2292, peak_rss_gb=3.6, command="make figures", out=tmp_path / "x")
    assert folder.name == "intel-xeon" and json.loads((folder / "run.json").read_text())["commit"] == "abc1234def"
    assert pd.read_csv(folder / "whole_set_curves.csv").ct.tolist() == [0.3, 0.4]     # the largest query size only
    found = cross_cpu.runs(tmp_path / "x")
    assert list(found) == ["intel-xeon"]
    assert "No run of amd-epyc yet" in cross_cpu.comparison_markdown(found)


def test_the_recorded_runs_of_both_kinds_agree():
    found = cross_cpu.runs()
    assert found, "bench/cross-cpu/ holds no recorded run"
    for kind, run in found.items():
        assert set(run["claims"].verdict) <= {"reproduced", "partly", "not reproduced", "untestable here"}, kind
        assert cross_cpu.kind_of(run["cpu"]) == kind
    if len(found) < 2:
        pytest.skip(f"only {', '.join(found)} recorded so far: the other CPU kind's cold run is missing")
    a, b = (found[k] for k in cross_cpu.KINDS)
    changed = cross_cpu.science_changes(a["commit"], b["commit"])
    if changed != []:
        pytest.skip(f"the recorded runs ({a['commit'][:7]}, {b['commit'][:7]}) differ in what makes the figures: "
                    f"{'unknown (no git history)' if changed is None else changed[:5]}")
    table = cross_cpu.agreement(a["claims"], b["claims"])
    apart = set(table.claim[~table.agree])
    assert apart <= KNOWN_DISAGREEMENTS, table[~table.agree].to_string()


# Measured on the cold runs of fdc71bc (2026-12-07, bench/cross-cpu/comparison.md): claim 4a's
# full-curve accuracy is 26 of 27 sets (0.963 [0.889, 1], reproduced) on the AMD EPYC and 22 of
# 27 (0.815 [0.667, 0.963], partly) on the Intel Xeon; the other 10 claims agree. The zoo trains
# to other weights on each kind, even with every kernel library held to AVX2
# (bench/<cpu>/zoo-isa.csv), and 4a's interval, over query sets, does not cover a retrained
# zoo. Issue 32 stays open on this claim; a disagreement on any other claim fails the test.
KNOWN_DISAGREEMENTS = {"4a-fingerprint-full"}


def test_science_changes_tells_docs_from_science():
    """Commits that differ in docs or tests only pair; a change under memlib/ does not."""
    if cross_cpu.science_changes("072d99f", "e35d5f1") is None:
        pytest.skip("needs the repository's git history")
    assert cross_cpu.science_changes("abc", "abc") == []
    assert cross_cpu.science_changes("c7bd5af", "e35d5f1") == []        # e35d5f1 changed README and docs only
    assert "memlib/attribution_eval.py" in cross_cpu.science_changes("072d99f", "475c8e2")
    assert cross_cpu.science_changes("072d99f", "0" * 40) is None          # an unknown commit
