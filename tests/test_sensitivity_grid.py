"""memlib.sensitivity_grid on a toy metric whose verdicts are known at every setting."""
from __future__ import annotations

import pytest

from memlib.errors import ParameterError
from memlib.sensitivity_grid import GRID_COLUMNS, one_at_a_time, sensitivity_grid


def toy(settings):
    """Claim A's metric grows with n_cells and is 'reproduced' from 10 cells on; claim B only
    depends on the token (mean flips it)."""
    a = settings["n_cells"] / 10
    return [dict(claim="A", value=a, ci_low=a - 0.1, ci_high=a + 0.1,
                 verdict="reproduced" if a >= 1 else "partly"),
            dict(claim="B", value=0.5, ci_low=0.4, ci_high=0.6,
                 verdict="not reproduced" if settings["token"] == "mean" else "partly")]


def test_one_at_a_time_changes_one_choice():
    got = one_at_a_time({"n_cells": 3, "token": "cls"}, {"n_cells": [3, 10], "token": ["mean"]})
    assert got == [("n_cells", 3, {"n_cells": 3, "token": "cls"}),
                   ("n_cells", 10, {"n_cells": 10, "token": "cls"}),
                   ("token", "cls", {"n_cells": 3, "token": "cls"}),      # the default, added
                   ("token", "mean", {"n_cells": 3, "token": "mean"})]
    with pytest.raises(ParameterError, match="no default for pca_dim"):
        one_at_a_time({"n_cells": 3}, {"pca_dim": [16]})


def test_sensitivity_grid_known_verdicts_flips_and_one_call_per_setting():
    calls = []
    counted = lambda s: calls.append(dict(s)) or toy(s)
    table = sensitivity_grid(counted, {"n_cells": 3, "token": "cls", "pca_dim": None},
                             {"n_cells": [3, 10, 25], "token": ["mean"], "pca_dim": [None, 16]})
    assert table.columns.tolist() == GRID_COLUMNS
    a = table[(table.claim == "A") & (table.choice == "n_cells")].set_index("value")
    assert a.verdict.to_dict() == {3: "partly", 10: "reproduced", 25: "reproduced"}
    assert a.flips.to_dict() == {3: False, 10: True, 25: True}
    assert a.metric[25] == pytest.approx(2.5) and a.ci_low[25] == pytest.approx(2.4)
    tok = table[table.choice == "token"].set_index(["claim", "value"])
    # the default 'cls' is added to the token row set, marked, and flips nothing
    assert tok.loc[("B", "cls"), "is_default"] and not tok.loc[("B", "cls"), "flips"]
    assert tok.loc[("B", "mean"), "flips"] and not tok.loc[("A", "mean"), "flips"]
    assert table[table.choice == "pca_dim"].is_default.tolist() == [True, True, False, False]  # A, B per value
    # defaults evaluated once (shared by n_cells=3, token=cls and pca_dim=None): 5 distinct settings
    assert len(calls) == 5


def test_a_claim_missing_at_the_defaults_is_an_error():
    def odd(settings):
        return toy(settings) + ([dict(claim="C", value=1, ci_low=0, ci_high=2, verdict="partly")]
                                if settings["n_cells"] == 10 else [])
    with pytest.raises(ParameterError, match="'C' is not decided at the defaults"):
        sensitivity_grid(odd, {"n_cells": 3, "token": "cls"}, {"n_cells": [10]})
