"""Command line: ``python -m memlib <command> --help``.

Every default comes from ``params/<profile>.yaml`` (``--profile``, default ``default``); flags
override single values. Errors print one line on stderr and exit with code 2.
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
image sets: a folder (flat or class sub-folders; png/jpg/jpeg/webp), an .npz with a uint8
'images' or 'arr_0' array, or a dataset spec such as fashion-mnist:train[:10000],
fashion-mnist:test@500 (random 500), mnist5k, cifar10:test (online only).
environment: MEMLIB_CACHE (features, zoo, weights; default .cache/memlib), MEMLIB_DATA
(a folder with the Fashion-MNIST IDX files), MEMLIB_MALLOC=default (leave glibc's malloc
thresholds alone; by default CPU runs keep freed memory, which stops page faults)."""


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
                       "CUDA, float32 on the CPU. On a CPU with AMX (recent Intel Xeon) bf16 "
                       "is ~3x faster; features differ from float32 by ~0.4%% (median), a "
                       "separate cache entry [profile]")

    p = sub.add_parser("encoders", parents=[profile_flag], help="list encoder names")
    p = sub.add_parser("embed", parents=[profile_flag],
                       help="per-layer features of an image set (cached)",
                       description="Embed IMAGES with every block of the encoder in one pass; "
                       "write DIR/<token>/layerNN.npy (float16, N×D) and DIR/meta.json.")
    p.add_argument("images", help="folder, .npz or dataset spec")
    p.add_argument("--out", required=True, type=Path, help="output folder")
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
    p.add_argument("--out", required=True, type=Path, help="CSV file to write")
    encoder_flags(p)

    p = sub.add_parser("zoo", parents=[profile_flag],
                       help="the generative-model zoo: list | train | sample")
    p.add_argument("action", choices=["list", "train", "sample"])
    p.add_argument("--family", action="append", help="only these families (repeatable)")
    p.add_argument("--seed", type=int, action="append", dest="seeds", help="only these seeds")
    p.add_argument("--out", type=Path, help="sample: write <family>-<variant>-s<seed>.npz here")

    p = sub.add_parser("run-notebooks", parents=[profile_flag],
                       help="execute the numbered notebooks (make figures)")
    p.add_argument("names", nargs="*", help="notebook prefixes, e.g. 01 03 (default: all)")
    p.add_argument("--kernel", help="Jupyter kernel (default: memlib if registered)")
    p.set_defaults(profile_from_sub=True)
    return parser


def _encoder_settings(args: argparse.Namespace, params: dict) -> dict:
    pick = lambda flag, key: params[key] if getattr(args, flag, None) is None else getattr(args, flag)
    return dict(encoder=pick("encoder", "encoder"), image_size=pick("image_size", "image_size"),
                token=pick("token", "token"), final_norm=pick("final_norm", "final_norm"),
                batch_size=pick("batch_size", "batch_size"), device=pick("device", "device"),
                precision=pick("precision", "precision"))


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
    images, feats = layer_features_for(args.images, settings, params["seed"])
    out = args.out / settings["token"]
    out.mkdir(parents=True, exist_ok=True)
    for layer in range(len(feats)):
        np.save(out / f"layer{layer:02d}.npy", feats[layer].astype(np.float16))
    write_json(args.out / "meta.json", {**feats.meta, "n_layers": len(feats)})
    print(f"{len(images)} images × {len(feats)} layers × {feats.dim} → {args.out}")


def cmd_ct(args: argparse.Namespace, params: dict) -> None:
    import pandas as pd

    from .ct import fit_reference
    settings = _encoder_settings(args, params)
    seed = params["seed"] if args.seed is None else args.seed
    n_cells = params["n_cells"] if args.n_cells is None else args.n_cells
    n_boot = params["n_bootstrap"] if args.n_bootstrap is None else args.n_bootstrap
    train_set, train = layer_features_for(args.train, settings, seed)
    test_set, test = layer_features_for(args.test, settings, seed)
    reference = fit_reference(train, test, variant=args.variant, n_cells=n_cells,
                              pca_dim=params["pca_dim"], seed=seed)
    rows = []
    for spec in args.gen:
        gen_set, gen = layer_features_for(spec, settings, seed)
        ct, lo, hi = reference.curve_bootstrap(gen, n_boot=n_boot, seed=seed)
        for layer in range(len(ct)):
            rows.append(dict(gen=spec, encoder=settings["encoder"], token=settings["token"],
                             variant=args.variant, layer=layer + 1, ct=ct[layer], ct_lo=lo[layer],
                             ct_hi=hi[layer], n_train=len(train_set), n_test=len(test_set),
                             n_gen=len(gen_set)))
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.4f")
    wide = table.pivot(index="gen", columns="layer", values="ct")
    print(f"C_T per layer ({args.variant}; negative = copying, positive = under-fitting; "
          f"|C_T| < 2 ≈ neither), encoder {settings['encoder']}, token {settings['token']}:")
    print(wide.round(1).to_string())
    print(f"wrote {len(table)} rows to {args.out}")


def cmd_zoo(args: argparse.Namespace, params: dict) -> None:
    from . import zoo

    if args.action == "list":
        for row in zoo.zoo_list(params):
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    elif args.action == "train":
        zoo.zoo_train(params, families=args.family, seeds=args.seeds)
    else:
        zoo.zoo_sample(params, families=args.family, seeds=args.seeds, out=args.out)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .params import load_params
        params = load_params(args.profile, path=args.params)
        if args.command == "encoders":
            from .encoders import known_encoders
            print("\n".join(known_encoders() + ["pixels (raw pixels as one 'layer')"]))
        elif args.command == "embed":
            cmd_embed(args, params)
        elif args.command == "ct":
            cmd_ct(args, params)
        elif args.command == "zoo":
            cmd_zoo(args, params)
        elif args.command == "run-notebooks":
            from .notebooks import run_notebooks
            run_notebooks(args.profile, args.names or None, args.kernel, params_file=args.params)
    except MemlibError as exc:
        print(f"memlib: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memlib: interrupted; finished cache entries are kept, partial ones discarded",
              file=sys.stderr)
        return 130
    return 0
