"""How each verdict moves with the choices a referee questions: a one-at-a-time grid over
analysis choices, evaluated by a claim's own metric and verdict rule.

The grid varies one choice at a time around the profile's defaults (``n_cells`` over 3, 10, 25,
``pca_dim`` over 16 … None, ``token``, ``final_norm``, …), calls ``evaluate(settings)`` once per
distinct setting (the defaults once, shared by every choice), and returns one row per (claim,
choice, value) with the metric, its CI and the verdict, plus whether the verdict differs from the
one at the defaults (a *flip*: a finding to report). The grid logic lives here once; a
notebook only supplies ``evaluate`` (features are cached, so most settings cost one refit of
the references) and plots the table.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .errors import ParameterError

GRID_COLUMNS = ["claim", "choice", "value", "is_default", "metric", "ci_low", "ci_high", "verdict",
                "flips"]


def one_at_a_time(defaults: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
                  ) -> list[tuple[str, Any, dict[str, Any]]]:
    """(choice, value, settings) for every value of every choice, each setting = ``defaults``
    with that one choice changed. Every choice needs a default; a grid that lacks the default
    value gets it first (it is the row every flip is measured against)."""
    missing = [c for c in grid if c not in defaults]
    if missing:
        raise ParameterError(f"sensitivity grid: no default for {', '.join(missing)}")
    out = []
    for choice, values in grid.items():
        values = list(values)
        if not any(_same(v, defaults[choice]) for v in values):
            values.insert(0, defaults[choice])
        out += [(choice, value, {**defaults, choice: value}) for value in values]
    return out


def sensitivity_grid(evaluate: Callable[[dict[str, Any]], Sequence[Mapping[str, Any]]],
                     defaults: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Evaluate every one-at-a-time setting and tabulate how each claim's verdict moves.

    Args:
        evaluate: settings -> claim rows, each with keys ``claim``, ``value`` (the metric that
            decides the verdict), ``ci_low``, ``ci_high`` and ``verdict`` (e.g. the rows the
            notebooks pass to :meth:`memlib.study.Study.claims`). Called once per distinct
            setting; the defaults' rows are the reference for ``flips``.
        defaults: the profile's value of every choice in ``grid``.
        grid: choice -> values to try.

    Returns:
        :data:`GRID_COLUMNS` (then any other keys of the rows, e.g. seconds): one row per
        (claim, choice, value) — ``value`` is the choice's value, ``metric`` the claim's number; ``is_default`` marks the defaults' value (added
        when the grid lacks it); ``flips`` is True where the verdict differs from the defaults'.
    """
    memo: dict[str, list] = {}

    def rows_of(settings):
        key = repr(sorted(settings.items(), key=lambda kv: kv[0]))
        if key not in memo:
            memo[key] = list(evaluate(dict(settings)))
        return memo[key]

    base = {r["claim"]: r for r in rows_of(defaults)}
    out = []
    for choice, value, settings in one_at_a_time(defaults, grid):
        for r in rows_of(settings):
            if r["claim"] not in base:
                raise ParameterError(f"sensitivity grid: claim {r['claim']!r} is not decided at the defaults")
            extra = {k: v for k, v in r.items() if k not in ("claim", "value", "ci_low", "ci_high", "verdict")}
            out.append(dict(claim=r["claim"], choice=choice, value=value,
                            is_default=_same(value, defaults[choice]), metric=r["value"],
                            ci_low=r["ci_low"], ci_high=r["ci_high"], verdict=r["verdict"],
                            flips=r["verdict"] != base[r["claim"]]["verdict"], **extra))
    table = pd.DataFrame(out)
    return table.reindex(columns=GRID_COLUMNS + [c for c in table.columns if c not in GRID_COLUMNS])


def _same(a: Any, b: Any) -> bool:
    """Equal grid values (NaN equals NaN; None only None)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a is b if a is None or b is None else a == b
