"""How far apart are two runs' figures? ``python -m bench.compare_figures A B``.

A and B are figures folders (``figures/``, or a run with ``figures_dir`` set elsewhere). For
every CSV in both, except the wall-clock tables (:data:`memlib.study.TIMING_TABLES`), it says
whether the files are byte-identical and, if not, the largest and the median absolute
difference of each numeric column (rows matched by position: both runs write the same rows in
the same order) and how many text cells differ. ``claims.csv`` is also shown claim by claim,
value and verdict of each run. Used to measure what ``precision: bfloat16`` changes against
float32, and a run on one machine against a run on another.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def compare_tables(a: Path, b: Path) -> pd.DataFrame:
    """One row per (CSV, column) that differs, or per CSV when it is identical or not
    comparable: columns ``table, column, status, max_abs_diff, median_abs_diff, median_abs,
    text_cells_differ``. ``median_abs`` is the column's median |value| in A (a scale)."""
    from memlib.study import TIMING_TABLES

    a, b = Path(a), Path(b)
    rows = []
    for path_a in sorted(a.glob("*.csv")):
        path_b = b / path_a.name
        if path_a.name in TIMING_TABLES:
            continue
        if not path_b.exists():
            rows.append(dict(table=path_a.name, status=f"only in {a}"))
            continue
        if path_a.read_bytes() == path_b.read_bytes():
            rows.append(dict(table=path_a.name, status="identical"))
            continue
        ta, tb = pd.read_csv(path_a), pd.read_csv(path_b)
        if ta.shape != tb.shape or list(ta.columns) != list(tb.columns):
            rows.append(dict(table=path_a.name, status=f"shape {ta.shape} vs {tb.shape}"))
            continue
        for col in ta.columns:
            x, y = ta[col], tb[col]
            numeric = all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
                          for s in (x, y))
            if numeric:
                d = (x.astype(float) - y.astype(float)).abs()
                differ = d.max() > 0 or not (x.isna() == y.isna()).all()
                if differ:
                    rows.append(dict(table=path_a.name, column=col, status="differs",
                                     max_abs_diff=float(np.nanmax(d)) if d.notna().any() else np.nan,
                                     median_abs_diff=float(d.median()),
                                     median_abs=float(x.abs().median())))
            elif not x.astype(str).equals(y.astype(str)):
                rows.append(dict(table=path_a.name, column=col, status="differs",
                                 text_cells_differ=int((x.astype(str) != y.astype(str)).sum())))
    for path_b in sorted(b.glob("*.csv")):
        if not (a / path_b.name).exists() and path_b.name not in TIMING_TABLES:
            rows.append(dict(table=path_b.name, status=f"only in {b}"))
    columns = ["table", "column", "status", "max_abs_diff", "median_abs_diff", "median_abs",
               "text_cells_differ"]
    return pd.DataFrame(rows, columns=columns)


def claims_agreement(claims_a: pd.DataFrame, claims_b: pd.DataFrame) -> pd.DataFrame:
    """Two ``claims.csv`` tables claim by claim (the claims of both): value, CI (``ci_low``,
    ``ci_high``; NaN where a table has none) and verdict of A and of B (suffixes ``_a``, ``_b``);
    ``same_verdict``; ``a_in_b_ci`` / ``b_in_a_ci``: each value inside the other run's CI (NaN
    where that run has no CI, e.g. an untestable claim); ``agree``: same verdict and each value
    inside the other's CI wherever there is one. A claim in one table only does not agree."""
    cols = ["claim", "value", "ci_low", "ci_high", "verdict"]
    tables = []
    for table in (claims_a, claims_b):
        table = table.copy()
        for col in ("ci_low", "ci_high"):
            if col not in table:
                table[col] = float("nan")
        tables.append(table[cols])
    both = tables[0].merge(tables[1], on="claim", how="outer", suffixes=("_a", "_b"))

    def inside(value, lo, hi):
        has = lo.notna() & hi.notna() & value.notna()
        return ((value >= lo) & (value <= hi)).where(has).astype(object).where(has, float("nan"))

    both["same_verdict"] = both.verdict_a == both.verdict_b
    both["a_in_b_ci"] = inside(both.value_a, both.ci_low_b, both.ci_high_b)
    both["b_in_a_ci"] = inside(both.value_b, both.ci_low_a, both.ci_high_a)
    within = both[["a_in_b_ci", "b_in_a_ci"]].apply(lambda c: c.map(lambda v: v is not False))
    both["agree"] = both.same_verdict & within.all(axis=1)
    return both


def compare_claims(a: Path, b: Path) -> pd.DataFrame:
    """``claims.csv`` of both runs side by side: claim, value and verdict of A and of B, A's CI
    (``ci_low_a``, ``ci_high_a``, NaN where A's table has none), ``same_verdict``, and
    ``b_in_a_ci``: whether B's value lies inside A's CI (NaN where there is no CI)
    (:func:`claims_agreement` of the two tables)."""
    both = claims_agreement(pd.read_csv(Path(a) / "claims.csv"), pd.read_csv(Path(b) / "claims.csv"))
    return both[["claim", "value_a", "ci_low_a", "ci_high_a", "value_b", "b_in_a_ci",
                 "verdict_a", "verdict_b", "same_verdict"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare_figures", description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="figures folder of run A (the reference)")
    parser.add_argument("b", type=Path, help="figures folder of run B")
    args = parser.parse_args(argv)
    for folder in (args.a, args.b):
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder")
    with pd.option_context("display.width", 200, "display.max_rows", 500,
                           "display.max_colwidth", 40):
        print(compare_tables(args.a, args.b).to_string(index=False, float_format="%.4g"))
        if (args.a / "claims.csv").exists() and (args.b / "claims.csv").exists():
            print()
            print(compare_claims(args.a, args.b).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
