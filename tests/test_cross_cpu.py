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


def test_rejudged_reads_whole_set_curves(tmp_path):
    """Claims 4a / 4a-shape-only under today's rule from a recorded run's whole-set curves:
    three well-separated architectures of three seeds are all named right."""
    rows = [dict(model=f"{a}-s{s}", n=1000, layer=k + 1, ct=float(10 * i + k * (i + 1) + 0.01 * s))
            for i, a in enumerate(["kde", "gmm", "vae"]) for s in range(3) for k in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "whole_set_curves.csv", index=False)
    t = cross_cpu.rejudged(tmp_path).set_index("claim")
    assert t.loc["4a-fingerprint-full", "verdict"] == "reproduced" and t.loc["4a-fingerprint-full", "ci_low"] == 1.0
    assert set(t.index) == {"4a-fingerprint-full", "4a-shape-only", "3 (accuracy CI only)"}
    assert cross_cpu.rejudged(tmp_path / "none") is None


def test_the_recorded_runs_agree_on_claim_4a_under_todays_rule():
    """Issue 32: each kind's recorded whole-set curves, judged with the training-run interval:
    4a agrees across the CPU kinds; the one known disagreement is the secondary 4a-shape-only."""
    found = cross_cpu.runs()
    again = {k: cross_cpu.rejudged(r["folder"]) for k, r in found.items()}
    if len(found) < 2 or any(t is None for t in again.values()):
        pytest.skip("needs whole-set curves of a run of each CPU kind")
    table = cross_cpu.agreement(*(again[k] for k in cross_cpu.KINDS))
    apart = set(table.claim[~table.agree])
    assert apart <= KNOWN_REJUDGED_DISAGREEMENTS, table.to_string()
    assert table.set_index("claim").loc["4a-fingerprint-full", "agree"]


# Measured 2026-12-08 (bench/cross-cpu/comparison.md, second table): with the training-run
# interval, 4a is partly on both kinds (AMD EPYC 0.963 [0.750, 1], Intel Xeon 0.815 [0.714, 1]),
# each value inside the other's interval. The secondary 4a-shape-only is 0.963 [0.875, 1]
# (reproduced) on the AMD EPYC and 0.926 [0.792, 1] (partly: its lower end misses 0.8 by one
# replicate step) on the Intel Xeon: values inside each other's interval, verdicts not.
KNOWN_REJUDGED_DISAGREEMENTS = {"4a-shape-only"}


def test_a_notebook_counts_by_its_code_cells(tmp_path):
    """A markdown-only change to a notebook (or any change to its jupytext twin) is not a science
    change; a code-cell change is."""
    import shutil
    import subprocess
    if shutil.which("git") is None:
        pytest.skip("needs git")

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    def notebook(markdown, code):
        return json.dumps({"cells": [{"cell_type": "markdown", "source": [markdown]},
                                     {"cell_type": "code", "source": [code]}]})

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (tmp_path / "notebooks").mkdir()
    commits = []
    for markdown, code, twin in (("# old words", "x = 1", "a"), ("# new words", "x = 1", "b"), ("# new words", "x = 2", "b")):
        (tmp_path / "notebooks" / "04.ipynb").write_text(notebook(markdown, code))
        (tmp_path / "notebooks" / "04.py").write_text(twin)
        git("add", "-A")
        git("commit", "-qm", "c")
        commits.append(git("rev-parse", "HEAD").strip())
    assert cross_cpu.science_changes(commits[0], commits[1], tmp_path) == []
    assert cross_cpu.science_changes(commits[1], commits[2], tmp_path) == ["notebooks/04.ipynb"]
