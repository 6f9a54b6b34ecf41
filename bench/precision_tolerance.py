"""How far a fingerprint database's reference curves move between bf16 and float32 features.

``python -m bench.precision_tolerance [--db figures/fingerprint_db] [--models kde-s0 gmm-s0]
[--write] [--out bench/amd-epyc/precision-tolerance.txt]``

For each named model of the database (its own zoo sample set, trained or read from the cache),
every stored reference curve (each n of ``query_sizes``, each draw) is recomputed twice against
the database's own reference (T and P_n re-embedded through the feature cache):

- at the database's precision (the control: how exactly the stored curves are reproduced);
- at the other precision (float32 for a bf16 database): the tolerance.

The distance is attribution's (Euclidean over layers, C_T units, undefined C_T as 0;
memlib.fingerprint_db.curve_distances). The report compares the largest and median distance
per n with the database's open-set threshold at that n. With ``--write`` the other-precision
result (memlib.fingerprint_db.measure_precision_tolerance) is stored in the database's
manifest as ``precision_tolerance``, which ``memlib attribute`` quotes when it accepts a query
computed at the other precision (docs/api.md#precision). The curves are not touched.

Cost: embeds T and P_n (7,000 images for the default profile) and the models' sets at both
precisions: about 10 min on 2 cores of the AMD EPYC. KDE and GMM models train in about a minute
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


def report(db, control, other, tolerance, seconds, command) -> str:
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
             f"{'n':>5} {'control max':>12} {'control med':>12} {'other max':>10} "
             f"{'other med':>10} {'threshold':>10} {'max/threshold':>14}"]
    ctrl = control.groupby("n")["distance"]
    for n in sorted(int(k) for k in tolerance["max_by_n"]):
        mx, med = tolerance["max_by_n"][str(n)], tolerance["median_by_n"][str(n)]
        thr = thresholds.get(str(n), float("nan"))
        lines.append(f"{n:>5} {ctrl.max()[n]:>12.4f} {ctrl.median()[n]:>12.4f} {mx:>10.4f} "
                     f"{med:>10.4f} {thr:>10.4f} {mx / thr:>14.3f}")
    lines.append(f"# control = recomputed at {built} (the database's own precision); "
                 f"other = recomputed at {other.precision}")
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
    tolerance = fdb.measure_precision_tolerance(db, other, sets)
    tolerance["command"] = command
    text = report(db, control, other, tolerance, time.perf_counter() - start, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    if args.write:
        db.set_precision_tolerance(tolerance)
        write_json(args.db / "manifest.json", db.manifest)     # curves.csv is not rewritten
        print(f"wrote precision_tolerance to {args.db / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
