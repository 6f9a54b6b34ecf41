"""How far a fingerprint database's reference curves move between bf16 and float32 features.

``python -m bench.precision_tolerance [--db figures/fingerprint_db] [--models kde-s0 gmm-s0]
[--write] [--out bench/amd-epyc/precision-tolerance.txt]``

For each named model of the database (its own zoo sample set, trained or read from the cache),
every stored reference curve (each n of ``query_sizes``, each draw) is recomputed twice against
the database's own reference (T and P_n re-embedded through the feature cache):

- at the database's precision (the control: how exactly the stored curves are reproduced);
- at the other precision (float32 for a bf16 database): the tolerance.

The distance is attribution's (Euclidean over layers, C_T units, undefined C_T as 0;
memlib.fingerprint_db.curve_distances). The report gives per n the median, 95th percentile and
largest distance next to the database's open-set threshold, how many curves have a layer whose
C_T is defined at one precision only (a cell crossing Meehan's 20-point rule), and how many
leave-one-model-out votes (attribution's rule against the other models) changed. The per-curve
table goes beside the report (same stem, .csv). With ``--write`` the other-precision
result (memlib.fingerprint_db.measure_precision_tolerance) is stored in the database's
manifest as ``precision_tolerance``, which ``memlib attribute`` quotes when it accepts a query
computed at the other precision (docs/api.md#precision). The curves are not touched.

Cost: embeds T and P_n (7,000 images for the default profile) and the models' sets at both
precisions: 27 min on 2 busy cores of the AMD EPYC (other jobs running), a few minutes once the
features are cached. KDE and GMM models train in about a minute
each when the zoo cache is empty; the neural families take much longer.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRECISION_FLAG = {"float32": "float32", "bfloat16-autocast": "bfloat16"}


def reference_sets(db, params, models):
    """The database's models ``models`` as ReferenceSets: their zoo samples (trained or cached)."""
    from memlib import fingerprint_db as fdb
    from memlib import zoo

    info = db.models().set_index("model")
    out = []
    for model in models:
        if model not in info.index:
            raise SystemExit(f"{model!r} is not in the database (models: {', '.join(info.index)})")
        family, _, seed = model.rpartition("-s")
        architecture = info.loc[model, "architecture"]
        images = zoo.zoo_samples(family, int(seed), "standard", params, progress=False).images
        out.append(fdb.ReferenceSet(model, info.loc[model, "family"], architecture, int(seed),
                                    images))
    return out


def report(db, control, curves, other, tolerance, seconds, command) -> str:
    """The text written to ``--out``."""
    from memlib.machine import cpu_flags, cpu_model

    thresholds = db.manifest["open_set"]["thresholds"]
    built = db.manifest["precision"]
    lines = [f"# {command}",
             f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
             f"{cpu_model()}, bf16 flags: "
             f"{' '.join(sorted(f for f in cpu_flags() if 'bf16' in f)) or 'none'}",
             f"# database {db.folder}: built under {built}; models {', '.join(tolerance['models'])}; "
             f"{tolerance['n_curves']} curves; {seconds / 60:.1f} min",
             "# distance = Euclidean over layers between a recomputed curve and the stored one "
             "(C_T units); threshold = the database's open-set threshold at n",
             f"{'n':>5} {'ctrl max':>9} {'ctrl votes':>10} {'median':>7} {'p95':>7} {'max':>7} "
             f"{'threshold':>9} {'undef. flips':>12} {'votes changed':>13}"]
    ctrl = control.groupby("n")
    flips = curves.assign(flip=curves["undefined_differs"] > 0).groupby("n")["flip"].sum()
    for n in sorted(int(k) for k in tolerance["max_by_n"]):
        k = str(n)
        changed, total = tolerance["votes_changed_by_n"][k]
        c = ctrl.get_group(n)
        lines.append(f"{n:>5} {c['distance'].max():>9.4f} "
                     f"{int((c['vote'] != c['stored_vote']).sum()):>4} of {len(c):<3} "
                     f"{tolerance['median_by_n'][k]:>7.3f} {tolerance['p95_by_n'][k]:>7.3f} "
                     f"{tolerance['max_by_n'][k]:>7.3f} {thresholds.get(k, float('nan')):>9.3f} "
                     f"{int(flips[n]):>5} of {total:<4} {changed:>5} of {total:<4}")
    lines.append(f"# ctrl = recomputed at {built} (the database's own precision); median, p95, "
                 f"max, flips, votes = recomputed at {other.precision}")
    lines.append("# undef. flips = curves with a layer whose C_T is defined at one precision only "
                 "(read as 0: a jump of |C_T| at that layer); votes = leave-one-model-out "
                 "attribution of each curve, stored vs recomputed")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.precision_tolerance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("figures/fingerprint_db"))
    parser.add_argument("--profile", default="default")
    parser.add_argument("--models", nargs="+", default=["kde-s0", "gmm-s0"],
                        help="database models to recompute (default: the two cheapest to train)")
    parser.add_argument("--write", action="store_true",
                        help="store the tolerance in the database's manifest.json")
    parser.add_argument("--out", type=Path, default=HERE / "amd-epyc" / "precision-tolerance.txt")
    args = parser.parse_args(argv)
    command = "python -m bench.precision_tolerance " + " ".join(argv if argv is not None else sys.argv[1:])

    from memlib import fingerprint_db as fdb
    from memlib.machine import apply_torch_threads
    from memlib.params import load_params
    from memlib.store import write_json

    params = load_params(args.profile)
    apply_torch_threads(params)
    db = fdb.Database.load(args.db)
    built = db.manifest["precision"]
    other_precision = "float32" if built != "float32" else "bfloat16"
    start = time.perf_counter()
    sets = reference_sets(db, params, args.models)
    own = fdb.scorer_for(db, {**params, "precision": PRECISION_FLAG[built]}, strict=True)
    n_draws = int(db.manifest["n_query_draws"])
    control = fdb.curve_distances(db, [r for s in sets for r in own.set_rows(s, db.sizes, n_draws)])
    other = fdb.scorer_for(db, {**params, "precision": other_precision})
    tolerance, curves = fdb.measure_precision_tolerance(db, other, sets)
    tolerance["command"] = command
    text = report(db, control, curves, other, tolerance, time.perf_counter() - start, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    curves.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.5g")
    print(text, end="")
    if args.write:
        db.set_precision_tolerance(tolerance)
        write_json(args.db / "manifest.json", db.manifest)     # curves.csv is not rewritten
        print(f"wrote precision_tolerance to {args.db / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
