"""memlib.claims.RULE_HISTORY and with_rule_history: every claims.csv row's rule has a history,
and the history agrees with git (a rule fixed 'before' its numbers is an ancestor of the figures
commit that first showed them; 'after' the other way round)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from memlib import claims
from memlib.errors import InputError

REPO = Path(__file__).resolve().parent.parent


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


needs_git = pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists()
                               or _git("cat-file", "-e", "4b1f87b^{commit}").returncode != 0,
                               reason="needs the repository's git history")


def test_every_committed_claim_has_a_history_entry():
    committed = pd.read_csv(REPO / "figures" / "claims.csv", keep_default_na=False)
    table = committed[claims.CLAIM_COLUMNS]
    out = claims.with_rule_history(table)
    assert list(out.columns) == list(table.columns) + claims.HISTORY_COLUMNS
    # the committed table carries the history it was written with, which is RULE_HISTORY's today
    assert list(committed.columns) == list(out.columns)
    assert committed[claims.HISTORY_COLUMNS].equals(out[claims.HISTORY_COLUMNS].astype(str))
    assert set(out.rule_history) <= {"before", "after"}
    got = dict(zip(out.claim, out.rule_history))
    assert got["4a-fingerprint-full"] == "after"             # loosened after the first 0.944
    assert got["4b-vs-ct-baselines"] == "after"              # promoted after a negative 4b
    assert got["1-depth-trend"] == "before"
    assert out.set_index("claim").loc["4a-fingerprint-full", "rule_commit"] == "475c8e2"   # issue 32: training-run CI
    assert len(out) == len(table) and (out.claim == table.claim).all()


def test_the_v3_claim_1_rows_have_their_history():
    assert {claims.CLAIM_1A, claims.CLAIM_1B} <= set(claims.RULE_HISTORY)
    table = pd.DataFrame({"claim": [claims.CLAIM_1B, claims.CLAIM_1A]})
    out = claims.with_rule_history(table)
    assert out.rule_history.tolist() == ["before", "after"]
    assert out.numbers_first_seen.tolist() == ["", "4b1f87b"]


def test_a_claim_without_history_is_refused():
    table = pd.DataFrame({"claim": ["4a-fingerprint-full", "9-new-claim"], "value": [1.0, 2.0]})
    with pytest.raises(InputError, match="9-new-claim"):
        claims.with_rule_history(table)


@needs_git
def test_history_agrees_with_git():
    for claim, (when, rule_commit, first_seen, why) in claims.RULE_HISTORY.items():
        assert when in ("before", "after") and why, claim
        assert _git("cat-file", "-e", f"{rule_commit}^{{commit}}").returncode == 0, (claim, rule_commit)
        if not first_seen:                        # no number seen yet: the rule can only be 'before'
            assert when == "before", claim
            continue
        assert _git("cat-file", "-e", f"{first_seen}^{{commit}}").returncode == 0, (claim, first_seen)
        # before: the rule's commit precedes the figures; after: the figures precede the rule
        old, new = (rule_commit, first_seen) if when == "before" else (first_seen, rule_commit)
        assert _git("merge-base", "--is-ancestor", old, new).returncode == 0, (claim, when)
        assert old != new, claim
        # the figures commit holds a claims.csv with a row of this claim's number (1, 2, 3, 4)
        csv = _git("show", f"{first_seen}:figures/claims.csv").stdout
        stem = re.match(r"\d+", claim).group(0)
        assert any(line.startswith(stem) for line in csv.splitlines()), (claim, first_seen)
