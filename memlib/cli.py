"""Command line: ``python -m memlib <command> --help``.

Every default comes from ``params/<profile>.yaml`` (``--profile``, default ``default``); flags
override single values. Errors print one line on stderr and exit with code 2 (:data:`EXIT_CODES`).
``ct``, ``copies`` and ``attribute`` take ``--json``: one JSON document on stdout
(:mod:`memlib.json_output`), the human-readable text on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MemlibError

EPILOG = """examples:
  python -m memlib ct --train fashion-mnist:train[30000:35000] --test fashion-mnist:test[:2000] \\
      --gen samples/ --gen other.npz --out ct.csv
  python -m memlib embed fashion-mnist:test[:1000] --encoder dinov2-s-offline --out feats/
  python -m memlib zoo list
  python -m memlib run-notebooks --profile smoke
  python -m memlib copies samples/ --train fashion-mnist:train[:10000] --out copies/
  python -m memlib attribute samples/ --out attribution/
  python -m memlib fingerprint add my-model samples/
image sets: a folder (flat or class sub-folders; png/jpg/jpeg/webp), an .npz with a uint8
'images' or 'arr_0' array, or a dataset spec such as fashion-mnist:train[:10000],
fashion-mnist:test@500 (random 500), mnist5k, cifar10:test (online only).
environment: MEMLIB_CACHE (features, zoo, weights; default .cache/memlib), MEMLIB_DATA
(a folder with the Fashion-MNIST IDX files), MEMLIB_MALLOC=default (leave glibc's malloc
thresholds alone; by default CPU runs keep freed memory, which stops page faults).
Ctrl-C (SIGINT): stops any command with exit code 130, keeping finished cache entries and
discarding partial ones. A command started as a background job of a script (`memlib ... &` in
a non-interactive shell, as in `nohup memlib ... &`, and on some CI runners) inherits SIGINT
ignored, and memlib leaves it so, like Python and every POSIX tool: Ctrl-C in that terminal
then stops only the foreground job. Stop such a run with kill -TERM PID; its unfinished cache
entry stays behind as a hidden temporary folder that no later run reads.
--json (ct, copies, attribute): one JSON document on stdout (numbers, settings, provenance:
encoder, weights id, precision, memlib version); the text goes to stderr. On a bad input the
document is {"error": "...", "exit_code": 2}; a usage error (a bad flag) leaves stdout empty.
exit codes: 0 done; 2 a bad argument, input, setting or database (one line on stderr,
'memlib: error: ...'); 130 interrupted (Ctrl-C / SIGINT); 1 an unexpected error (a bug:
the traceback is printed; please report it). A query at another precision than the
fingerprint database is accepted with one 'memlib: note:' line (exit code 0)."""

# documented in EPILOG and docs/api.md; tests/test_cli.py checks each
EXIT_CODES = {"done": 0, "unexpected error": 1, "bad input": 2, "interrupted": 130}


COPIES_DOC = """\
For every image of GEN and every layer (0 = raw pixels, 1..L = encoder blocks): the distance
to its nearest --train image (Euclidean, in that layer's features), that image, and whether
it is flagged: distance below the --quantile of the --test images' nearest-training distances
at that layer (a model that never copies gets about that share flagged). Writes
  DIR/copies.csv   sample, layer, distance, nearest_train, flagged, sample_id, train_id
                   (one row per sample and layer; sample/nearest_train are 0-based rows)
  DIR/summary.csv  per layer: threshold, share flagged with a Wilson 95% CI, and the whole
                   set's C_T (ct, ct_lo, ct_hi; bootstrap 95% CI) against the same train/test
  DIR/gallery.png  the most-copied samples beside their nearest training images, labelled
                   with the layers that flag them: early only = low-level, late only =
                   semantic, every layer = exact
See docs/own-samples.md."""

ATTRIBUTE_DOC = """\
Which known generative model does the sample set GEN look like? Its C_T-layer curve is
computed against the fingerprint database's own reference (re-embedded through the feature
cache) on random subsets of the largest size s the database holds (≤ the set's size m); each
subset votes for the family of its nearest reference curve, or 'unknown' when even that is
farther than the database's open-set threshold. Prints the ranked table (candidate, distance
in C_T units, share of votes). A database built with other settings (encoder, image size,
token, reference data, ...) is refused, naming the field; one computed at the other
forward-pass precision (float32 vs bf16) is accepted with one line saying so and by how much
the database's curves move between the two. See docs/own-samples.md."""


class _Parser(argparse.ArgumentParser):
    """Usage errors too are one line on stderr (exit code 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"memlib: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m memlib", description="Layer-wise data-copying (C_T) scores of ViT "
        "embeddings for memorization and fingerprinting of generative models.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default",
                        help="params/<profile>.yaml supplies every default (default: default)")
    parser.add_argument("--params", type=Path, metavar="FILE",
                        help="your own YAML with keys of params/default.yaml (instead of --profile)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # --profile is accepted after the command too (`run-notebooks --profile smoke`, as in the
    # Makefile); SUPPRESS keeps the top-level value when the command does not repeat it.
    profile_flag = argparse.ArgumentParser(add_help=False)
    profile_flag.add_argument("--profile", default=argparse.SUPPRESS,
                              help="params/<profile>.yaml supplies every default")
    profile_flag.add_argument("--params", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                              help="your own YAML with keys of params/default.yaml")

    def encoder_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--encoder", help="registry name, e.g. dinov2-s-offline, "
                       "timm:vit_large_patch14_dinov2.lvd142m, NAME+shuffled, NAME+random, "
                       "or 'pixels' (raw pixels, one layer) [profile]")
        p.add_argument("--image-size", type=int, help="px side fed to the ViT [profile]")
        p.add_argument("--token", choices=["cls", "mean"], help="CLS or mean patch token [profile]")
        p.add_argument("--final-norm", action="store_true", default=None,
                       help="use block outputs after the final LayerNorm")
        p.add_argument("--batch-size", type=int, help="images per forward pass [profile]")
        p.add_argument("--device", help="auto | cpu | cuda [profile]")
        p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                       help="forward pass in float32 or under bf16 autocast; auto = bf16 on "
                       "CUDA and on CPUs with native bf16 (amx_bf16 or avx512_bf16 in "
                       "/proc/cpuinfo; MEMLIB_NATIVE_BF16=0/1 overrides), float32 on any other "
                       "CPU. bf16 is 3.1x faster on the Intel Xeon (AMX), 1.6-1.9x on the AMD "
                       "EPYC; features differ from float32 by ~0.4%% (median), a separate cache "
                       "entry [profile]")

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true",
                       help="print one JSON document on stdout (numbers, settings, provenance); "
                       "the text goes to stderr")

    p = sub.add_parser("encoders", parents=[profile_flag], help="list encoder names",
                       description="List the encoder registry's names, and the profile's "
                       "trained encoders (trained_encoders) with their recipe and, once trained, "
                       "their test accuracy, training time and CPU.")
    p.add_argument("--train", action="store_true",
                   help="train the profile's trained encoders that are not cached yet")
    p = sub.add_parser("embed", parents=[profile_flag],
                       help="per-layer features of an image set (cached)",
                       description="Embed IMAGES with every block of the encoder in one pass; "
                       "write DIR/<token>/layerNN.npy (float16, N×D) and DIR/meta.json.")
    p.add_argument("images", help="folder, .npz or dataset spec")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--shard", metavar="I/N",
                   help="compute only shard I of N (0-based) of the set's cache entry: its chunks "
                   "c with c %% N == I. Shards run in any order, at once, on machines sharing "
                   "MEMLIB_CACHE; the one that completes the entry writes --out "
                   "(docs/scale.md)")
    encoder_flags(p)

    p = sub.add_parser("ct", parents=[profile_flag],
                       help="C_T per layer for one or more generated sets",
                       description="C_T-layer curves (Meehan et al. 2020) of each --gen set "
                       "against --train (T) and --test (P_n). Negative = data copying, positive "
                       "= under-fitting, about 0 = neither. Writes tidy CSV rows (gen, encoder, "
                       "token, variant, layer, ct, ct_lo, ct_hi, n_train, n_test, n_gen).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="training/reference set T")
    p.add_argument("--test", required=True, help="held-out set P_n")
    p.add_argument("--gen", required=True, action="append", help="generated set Q_m (repeatable)")
    p.add_argument("--variant", default="ct", choices=["ct", "ct_modified", "ct_test"],
                   help="ct: copying vs under-fitting; ct_modified: memorization only; "
                   "ct_test: mode collapse")
    p.add_argument("--n-cells", type=int, help="k-means cells [profile]")
    p.add_argument("--n-bootstrap", type=int, help="bootstrap resamples for 95%% CIs [profile]")
    p.add_argument("--seed", type=int, help="seed for PCA, k-means and bootstrap [profile]")
    p.add_argument("--out", type=Path, help="CSV file to write (optional with --json)")
    json_flag(p)
    encoder_flags(p)

    p = sub.add_parser("copies", parents=[profile_flag],
                       help="which generated samples copy which training image, per layer",
                       description=COPIES_DOC,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gen", metavar="GEN", help="generated images: folder, .npz or dataset spec")
    p.add_argument("--train", required=True, help="the training set the model saw")
    p.add_argument("--test", help="held-out images from the same distribution [profile: test]")
    p.add_argument("--quantile", type=float,
                   help="flag below this quantile of test→train distances "
                   "[profile: zoo_copy_quantile]")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    json_flag(p)
    encoder_flags(p)

    p = sub.add_parser("attribute", parents=[profile_flag],
                       help="which known generative model does a sample set look like",
                       description=ATTRIBUTE_DOC,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gen", metavar="GEN", help="generated images: folder, .npz or dataset spec")
    p.add_argument("--db", type=Path,
                   help="fingerprint database folder [<figures_dir>/fingerprint_db, notebook 04]")
    p.add_argument("--out", type=Path, help="also write DIR/attribution.csv (the ranked table) "
                   "and DIR/attribution.png (the query curve over its nearest reference curves)")
    json_flag(p)
    encoder_flags(p)

    p = sub.add_parser("fingerprint", help="the fingerprint database: add a model")
    fp_sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = fp_sub.add_parser("add", parents=[profile_flag], help="add a model's sample set",
                          description="Add the reference curves of a model's sample set GEN "
                          "(at every size of the database up to the set's size) to the "
                          "fingerprint database as NAME, and recalibrate its open-set "
                          "thresholds. The settings must match the database's manifest.")
    a.add_argument("name", metavar="NAME", help="the model's name (unique in the database)")
    a.add_argument("gen", metavar="GEN", help="its samples: folder, .npz or dataset spec")
    a.add_argument("--family", help="what attribute answers for it (default: NAME)")
    a.add_argument("--architecture", help="a description (default: the family)")
    a.add_argument("--model-seed", type=int, default=0, help="the model's training seed, a label")
    a.add_argument("--db", type=Path, help="database folder [<figures_dir>/fingerprint_db]")
    encoder_flags(a)

    p = sub.add_parser("zoo", parents=[profile_flag],
                       help="the generative-model zoo: list | train | sample")
    p.add_argument("action", choices=["list", "train", "sample"])
    p.add_argument("--family", action="append", help="only these families (repeatable)")
    p.add_argument("--seed", type=int, action="append", dest="seeds", help="only these seeds")
    p.add_argument("--out", type=Path, help="sample: write <family>-<variant>-s<seed>.npz here")
    p.add_argument("--gradient", action="store_true",
                   help="the memorization gradient instead of the zoo: variants n<size>, trained "
                   "on the first size images of the seed's window of zoo_train (gradient_* parameters)")
    p.add_argument("--recipe", action="append", dest="recipes", metavar="NAME",
                   help="the recipe models instead of the zoo: the architectures of zoo_recipes trained with "
                   "recipe NAME (variant recipe-NAME; repeatable; 'default': their standard models)")
    p.add_argument("--launcher", help="run the models as Dask jobs: local:N, slurm:N (SLURM jobs "
                   "from ~/.config/dask/jobqueue.yaml) or tcp://host:port (docs/scale.md); default: "
                   "zoo_workers subprocesses")

    p = sub.add_parser("run-notebooks", parents=[profile_flag],
                       help="execute the numbered notebooks (make figures)")
    p.add_argument("names", nargs="*", help="notebook prefixes, e.g. 01 03 (default: all)")
    p.add_argument("--kernel", help="Jupyter kernel (default: memlib if registered)")
    p.set_defaults(profile_from_sub=True)
    return parser


ENCODER_FLAGS = ("encoder", "image_size", "token", "final_norm", "batch_size", "device", "precision")


def _encoder_settings(args: argparse.Namespace, params: dict) -> dict:
    """The embedding settings of a command: the profile's, the command's flags over them, a
    trained encoder resolved to its registry name and native size (:func:`memlib.api.settings`)."""
    from .api import settings
    overrides = {k: getattr(args, k) for k in ENCODER_FLAGS if getattr(args, k, None) is not None}
    resolved = settings(params=params, progress=True, **overrides)
    return {k: resolved[k] for k in ENCODER_FLAGS}


def cmd_encoders(args: argparse.Namespace, params: dict) -> None:
    from .encoders import known_encoders
    print("\n".join(known_encoders() + ["pixels (raw pixels as one 'layer')"]))
    if params.get("trained_encoders"):
        from . import trained_encoders
        if args.train:
            from .machine import apply_torch_threads
            apply_torch_threads(params)
            for name in trained_encoders.recipes(params):
                trained_encoders.resolve(name, params)
        print(f"\ntrained here ({params['profile']} profile; docs/design.md#trained-encoders):")
        print("\n".join(trained_encoders.describe(params)))


def layer_features_for(spec: str, settings: dict, seed: int):
    """Load an image set and return its LayerFeatures for the CLI's settings."""
    from .data import load_images

    images = load_images(spec, seed=seed)  # before importing torch: bad inputs fail fast
    from .features import embed, pixel_features

    if settings["encoder"] == "pixels":
        return images, pixel_features(images)
    return images, embed(images, settings["encoder"], image_size=settings["image_size"],
                         token=settings["token"], final_norm=settings["final_norm"],
                         batch_size=settings["batch_size"], device=settings["device"],
                         precision=settings["precision"])


def cmd_embed(args: argparse.Namespace, params: dict) -> None:
    import numpy as np

    from .store import write_json
    settings = _encoder_settings(args, params)
    if args.shard is not None and not _embed_shard(args, settings, params):
        return
    if settings["encoder"] == "pixels":
        images, feats = layer_features_for(args.images, settings, params["seed"])
    else:   # folders and .npz are streamed in batches (memlib.data.ImageStream)
        from .data import open_images
        from .features import embed
        images = open_images(args.images, seed=params["seed"])
        feats = embed(images, settings["encoder"], image_size=settings["image_size"],
                      token=settings["token"], final_norm=settings["final_norm"],
                      batch_size=settings["batch_size"], device=settings["device"],
                      precision=settings["precision"])
    out = args.out / settings["token"]
    out.mkdir(parents=True, exist_ok=True)
    for layer in range(len(feats)):
        np.save(out / f"layer{layer:02d}.npy", feats[layer].astype(np.float16))
    write_json(args.out / "meta.json", {**feats.meta, "n_layers": len(feats)})
    print(f"{len(images)} images × {len(feats)} layers × {feats.dim} → {args.out}")


def _embed_shard(args: argparse.Namespace, settings: dict, params: dict) -> bool:
    """Run ``--shard I/N`` of ``memlib embed``; True when the entry is finished."""
    import re

    from .data import open_images
    from .errors import ParameterError
    match = re.fullmatch(r"(\d+)/(\d+)", args.shard)
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise ParameterError(f"--shard {args.shard}: expected I/N with 0 <= I < N, e.g. 0/4")
    if settings["encoder"] == "pixels":
        raise ParameterError("--shard: pixel features are not cached; nothing to shard")
    images = open_images(args.images, seed=params["seed"])   # folders and .npz: streamed
    from .features import embed_shard
    shard = (int(match[1]), int(match[2]))
    finished = embed_shard(images, settings["encoder"], shard, image_size=settings["image_size"],
                           final_norm=settings["final_norm"], batch_size=settings["batch_size"],
                           device=settings["device"], precision=settings["precision"])
    if not finished:
        print(f"shard {args.shard} of {args.images}: written; the entry waits for other shards "
              f"(the one that completes it writes {args.out})")
    return finished


CT_COLUMNS = ["gen", "encoder", "token", "variant", "layer", "ct", "ct_lo", "ct_hi", "n_train",
              "n_test", "n_gen"]


def _study(params: dict, settings: dict, **overrides):
    """A :class:`memlib.study.Study` on the profile with the CLI's encoder settings: the
    notebooks' own feature, reference and curve code."""
    from .study import Study
    return Study({**params, **settings, **overrides})


def _say(args: argparse.Namespace):
    """print for the human-readable text: stdout, or stderr under --json (stdout is the JSON)."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda *parts: print(*parts, file=stream)


def cmd_ct(args: argparse.Namespace, params: dict) -> None:
    import pandas as pd

    from .ct import fit_reference
    from .errors import ParameterError
    if args.out is None and not args.json:
        raise ParameterError("ct needs --out FILE (the CSV), or --json")
    say = _say(args)
    settings = _encoder_settings(args, params)
    seed = params["seed"] if args.seed is None else args.seed
    n_cells = params["n_cells"] if args.n_cells is None else args.n_cells
    n_boot = params["n_bootstrap"] if args.n_bootstrap is None else args.n_bootstrap
    study = _study(params, settings, seed=seed, n_bootstrap=n_boot)
    train_set, train = layer_features_for(args.train, settings, seed)
    test_set, test = layer_features_for(args.test, settings, seed)
    reference = fit_reference(train, test, variant=args.variant, n_cells=n_cells,
                              pca_dim=params["pca_dim"], seed=seed)
    rows = []
    for spec in args.gen:
        _, gen = layer_features_for(spec, settings, seed)
        rows += study.curve_rows(reference, gen, gen=spec, encoder=settings["encoder"],
                                 token=settings["token"], variant=args.variant)
    table = pd.DataFrame(rows).assign(n_train=len(train_set), n_test=len(test_set))[CT_COLUMNS]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False, float_format="%.4f")
    wide = table.pivot(index="gen", columns="layer", values="ct")
    say(f"C_T per layer ({args.variant}; negative = copying, positive = under-fitting; "
        f"|C_T| < 2 ≈ neither), encoder {settings['encoder']}, token {settings['token']}:")
    say(wide.round(1).to_string())
    if args.out is not None:
        say(f"wrote {len(table)} rows to {args.out}")
    if args.json:
        from . import json_output
        sets = [dict(gen=spec, n_gen=int(part["n_gen"].iloc[0]), layer=part["layer"].tolist(),
                     ct=part["ct"].tolist(), ct_lo=part["ct_lo"].tolist(),
                     ct_hi=part["ct_hi"].tolist())
                for spec in args.gen for part in [table[table["gen"] == spec]]]
        print(json_output.dumps(json_output.document(
            "ct", settings, settings=dict(variant=args.variant, train=args.train, test=args.test,
                                          n_train=len(train_set), n_test=len(test_set),
                                          n_cells=n_cells, pca_dim=params["pca_dim"], seed=seed,
                                          n_bootstrap=n_boot, ci=0.95),
            sets=sets, out=None if args.out is None else str(args.out))))


def cmd_copies(args: argparse.Namespace, params: dict) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from . import copy_report as cr
    from .ct import fit_reference
    from .errors import InputError
    from .features import pixel_features
    from .store import atomic_path
    say = _say(args)
    settings = _encoder_settings(args, params)
    quantile = cr.check_quantile(params["zoo_copy_quantile"] if args.quantile is None
                                 else args.quantile)
    sets = []
    for spec in (args.train, args.test or params["test"], args.gen):
        images, feats = layer_features_for(spec, settings, params["seed"])
        blocks = None if settings["encoder"] == "pixels" else feats
        sets.append((images, cr.with_pixels(pixel_features(images), blocks)))
    (train_set, train), (test_set, test), (gen_set, gen) = sets
    report = cr.find_copies(train, test, gen, quantile=quantile, layers=range(len(gen)))
    reference = fit_reference(train, test, n_cells=params["n_cells"], pca_dim=params["pca_dim"],
                              seed=params["seed"], progress=True)
    try:   # layer 0 (pixels) is the reference's first layer: renumber from 0
        ct_rows = [dict(r, layer=r["layer"] - 1)
                   for r in _study(params, settings).curve_rows(reference, gen)]
    except InputError as exc:   # too few samples for C_T; the per-sample report still holds
        print(f"memlib: warning: no C_T for this set: {exc}", file=sys.stderr)
        ct_rows = [dict(layer=l, ct=float("nan"), ct_lo=float("nan"), ct_hi=float("nan"))
                   for l in report.layers]
    summary = cr.summary_table(report, ct_rows)
    table = report.table(gen_set.ids, train_set.ids)
    for name, frame in (("copies.csv", table), ("summary.csv", summary)):
        with atomic_path(args.out / name, suffix=".csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    fig = cr.plot_gallery(report, gen_set.images, train_set.images, encoder=settings["encoder"])
    with atomic_path(args.out / "gallery.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    kinds = dict(zip(*np.unique(report.kinds(), return_counts=True)))
    say(f"{len(gen_set)} samples of {args.gen} against {len(train_set)} training images "
        f"({settings['encoder']}); flagged = nearer to a training image than the "
        f"{quantile:g}-quantile of test→train distances at that layer, so about {quantile:.0%} "
        f"of the samples of a model that never copies. Layer 0 = raw pixels.")
    cols = ["layer", "n_flagged", "share_flagged", "share_lo", "share_hi", "ct", "ct_lo", "ct_hi"]
    say(summary[cols].round(3).to_string(index=False))
    say("kinds: " + ", ".join(f"{k} {int(kinds.get(k, 0))}" for k in cr.KINDS))
    say(f"wrote {args.out / 'copies.csv'} ({len(table)} rows), summary.csv and gallery.png")
    if args.json:
        from . import json_output
        print(json_output.dumps(json_output.document(
            "copies", settings,
            settings=dict(gen=args.gen, train=args.train, test=args.test or params["test"],
                          quantile=quantile, n_cells=params["n_cells"], pca_dim=params["pca_dim"],
                          seed=params["seed"], n_bootstrap=params["n_bootstrap"]),
            n_gen=len(gen_set), n_train=len(train_set), n_test=len(test_set),
            kinds={k: int(kinds.get(k, 0)) for k in cr.KINDS},
            layers=json_output.records(summary),
            files={name: str(args.out / name) for name in ("copies.csv", "summary.csv", "gallery.png")})))


def _db_folder(args: argparse.Namespace, params: dict) -> Path:
    """--db, or <figures_dir>/fingerprint_db relative to the current folder (the checkout's
    root holds figures/fingerprint_db, the database notebook 04 wrote)."""
    return args.db if args.db is not None else Path(params["figures_dir"]) / "fingerprint_db"


def cmd_attribute(args: argparse.Namespace, params: dict) -> None:
    import matplotlib.pyplot as plt

    from . import fingerprint_db as fdb
    from .data import load_images
    from .store import atomic_path
    say = _say(args)
    settings = _encoder_settings(args, params)
    p = {**params, **settings}
    db = fdb.Database.load(_db_folder(args, params))
    images = load_images(args.gen, seed=p["seed"])
    scorer = fdb.scorer_for(db, p)
    report = fdb.attribute_set(db, scorer, images.images, name=str(args.gen),
                               accuracy_csv=scorer.study.figures_dir / "fingerprint_accuracy.csv")
    if report.precision_note:
        print(f"memlib: note: {report.precision_note}", file=sys.stderr)
    if report.warning:
        print(f"memlib: warning: {report.warning}", file=sys.stderr)
    say(f"Which known model made {args.gen}? m = {report.m} samples, compared on subsets of s = {report.n} "
        f"({len(report.query_curves)} random subsets; {report.distance} distance over "
        f"{report.query_curves.shape[1]} layers) with {db.curves['model'].nunique()} models "
        f"of {db.curves['family'].nunique()} families in {db.folder}:")
    say(report.table.round(3).to_string(index=False))
    say(f"answer: {report.answer}  ('unknown' = the nearest reference curve is farther than "
        f"the open-set threshold, {report.threshold:.3g} at s = {report.n})")
    if args.out is not None:
        with atomic_path(args.out / "attribution.csv", suffix=".csv") as tmp:
            report.table.assign(n=report.n, m=report.m, distance_kind=report.distance,
                                threshold=report.threshold).to_csv(tmp, index=False,
                                                                   float_format="%.6g")
        fig = fdb.plot_attribution(report, title=Path(str(args.gen)).name)
        with atomic_path(args.out / "attribution.png", suffix=".png") as tmp:
            fig.savefig(tmp, dpi=130, bbox_inches="tight")
        plt.close(fig)
        say(f"wrote {args.out / 'attribution.csv'} and attribution.png")
    if args.json:
        from . import json_output
        print(json_output.dumps(json_output.document(
            "attribute", settings,
            settings=dict(gen=str(args.gen), db=str(db.folder), seed=p["seed"]),
            answer=report.answer, n=report.n, m=report.m, distance_kind=report.distance,
            threshold=report.threshold, n_subsets=len(report.query_curves),
            nearest_per_subset=report.nearest,
            table=json_output.records(report.table), warning=report.warning,
            precision_note=report.precision_note,
            database={k: db.manifest.get(k) for k in fdb.COMPARED_FIELDS},
            out=None if args.out is None else str(args.out))))


def cmd_fingerprint(args: argparse.Namespace, params: dict) -> None:
    from . import fingerprint_db as fdb
    from .data import load_images
    p = {**params, **_encoder_settings(args, params)}
    folder = _db_folder(args, params)
    db = fdb.Database.load(folder)
    db.require_new(args.name)
    images = load_images(args.gen, seed=p["seed"])
    scorer = fdb.scorer_for(db, p, strict=True)
    family = args.family or args.name
    new = fdb.ReferenceSet(args.name, family, args.architecture or family, args.model_seed,
                           images.images)
    db.add(scorer.set_rows(new, db.manifest["query_sizes"], db.manifest["n_query_draws"]))
    db.save(folder)
    sizes = sorted(set(db.curves.loc[db.curves["model"] == args.name, "n"]))
    print(f"added {args.name} (family {family}) at subset sizes s = {', '.join(map(str, sizes))}; "
          f"{folder} now holds {db.curves['model'].nunique()} models of "
          f"{db.curves['family'].nunique()} families; open-set thresholds recalibrated")


def cmd_zoo(args: argparse.Namespace, params: dict) -> None:
    from . import zoo

    if args.action == "list":
        models = (zoo.select_models(params, args.family, args.seeds, None, recipes=args.recipes)
                  if args.recipes else None)
        for row in zoo.zoo_list(params, gradient=args.gradient, models=models):
            print("  ".join(f"{k}={v}" for k, v in row.items()))
        return
    models = zoo.select_models(params, args.family, args.seeds, None, gradient=args.gradient,
                               recipes=args.recipes)
    if args.action == "train":
        zoo.zoo_train(params, models=models, launcher=args.launcher)
    else:
        n_samples = params["gradient_n_samples"] if args.gradient else None
        zoo.zoo_sample(params, models=models, n_samples=n_samples, out=args.out,
                       launcher=args.launcher)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .params import load_params
        params = load_params(args.profile, path=args.params)
        if args.command not in ("encoders", "run-notebooks"):   # notebook kernels set their own (Study)
            from .machine import apply_torch_threads
            apply_torch_threads(params)
        if args.command == "encoders":
            cmd_encoders(args, params)
        elif args.command == "embed":
            cmd_embed(args, params)
        elif args.command == "ct":
            cmd_ct(args, params)
        elif args.command == "copies":
            cmd_copies(args, params)
        elif args.command == "attribute":
            cmd_attribute(args, params)
        elif args.command == "fingerprint":
            cmd_fingerprint(args, params)
        elif args.command == "zoo":
            cmd_zoo(args, params)
        elif args.command == "run-notebooks":
            from .notebooks import run_notebooks
            run_notebooks(args.profile, args.names or None, args.kernel, params_file=args.params)
    except MemlibError as exc:
        print(f"memlib: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            from . import json_output
            print(json_output.dumps({"error": str(exc), "exit_code": EXIT_CODES["bad input"]}))
        return EXIT_CODES["bad input"]
    except KeyboardInterrupt:
        # Python turns SIGINT into KeyboardInterrupt only when the process did not inherit it
        # ignored. We deliberately do not re-install a SIGINT handler in that case: a shell
        # ignores SIGINT in background jobs so that Ctrl-C stops only the foreground one, and
        # a tool that overrode that would die with it. Documented in EPILOG (Ctrl-C).
        print("memlib: interrupted; finished cache entries are kept, partial ones discarded",
              file=sys.stderr)
        return 130
    return 0
