"""Encoders the study trains itself: recipes, data windows, content-keyed cache, registry names
and the encoders table (docs/design.md#trained-encoders).

A profile's ``trained_encoders`` maps a name (``fmnist-vit``, ``fmnist-cnn``) to its *recipe*: the
network (:mod:`memlib.encoder_nets`), the labelled data it learns from (``train``) and is scored
on (``eval``), and the training settings (:mod:`memlib.encoder_training`). Keys and units:
:data:`RECIPE_DOC`; :func:`check_recipe` refuses a bad recipe before anything trains.

Names. A trained encoder's registry name is ``<name>@<key>`` (:func:`resolve`), where ``key`` is
the content key of its weights: a hash of the name, the recipe (seed included), the training
images' and labels' content and :data:`TRAINED_VERSION`. Its weights id, part of every feature
cache key, is ``trained:<key>``. The feature cache, ``ct``, ``copies``, ``attribute`` and the
fingerprint database therefore take it like any other name; ``+shuffled`` / ``+random`` apply
too. The command line resolves ``--encoder fmnist-vit`` with the profile's recipe (training it on
first use) and uses the encoder's native image size unless ``--image-size`` is given.
:func:`build` (what :func:`memlib.encoders.build_encoder` calls) takes the recipe as an
argument, or a resolved name whose cache entry holds it; it never reads a profile.

Cache entry: ``<MEMLIB_CACHE>/encoders/<name>-<key>/`` with ``model.safetensors`` (the state
dict, head included) and ``manifest.json`` (written last: its presence marks a finished entry):
recipe, test accuracy, training seconds, CPU, torch threads, load average, sha256 of the weights
(checked on every load). Writes are atomic (:mod:`memlib.store`); nothing is pickled.

Data. The encoders learn from a window of the training split that no generator, no public
reference, no test or fresh set and no sensitivity split of the same profile uses:
:func:`check_encoder_windows` refuses any overlap.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import store
from .encoders import (CONTROL_SEED, Encoder, _init_random, _shuffle_weights, _split_control,
                       cache_root, compute_precision, pick_device)
from .errors import CacheError, EncoderError, ParameterError
from .params import check_exact_keys

TRAINED_VERSION = 1   # bump when training code changes the weights a recipe gives: part of every key
KINDS = ("vit", "cnn")
RECIPE_DOC = {
    "common": {
        "kind": "vit | cnn",
        "train": "labelled dataset window it learns from, e.g. fashion-mnist:train[35000:45000]",
        "eval": "labelled dataset window of its test accuracy, e.g. fashion-mnist:test[2000:10000]",
        "image_size": "native input side in px (int ≥ 8); the encoder accepts only this size",
        "seed": "int ≥ 0: initialisation and data order",
        "epochs": "int ≥ 1: passes over train",
        "batch": "int ≥ 1: images per optimiser step",
        "lr": "float > 0: AdamW peak learning rate (linear warm-up over 10 % of the steps, then cosine to 0)",
        "weight_decay": "float ≥ 0: AdamW decoupled weight decay",
    },
    "vit": {
        "patch": "int ≥ 1 dividing image_size: patch side in px",
        "depth": "int ≥ 1: transformer blocks (= layers)",
        "width": "int ≥ 1, a multiple of heads: token dimension D",
        "heads": "int ≥ 1: attention heads",
        "mlp_ratio": "float > 0: MLP hidden width / width",
    },
    "cnn": {
        "width": "int ≥ 1: channels of every block (= D)",
        "stages": "non-empty list of ints ≥ 1: residual blocks per stage (layers = their sum); "
                  "every stage after the first halves the resolution",
        "stem_stride": "1 or 2: stride of the first 3×3 conv",
    },
}
_RESOLVED = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)@(?P<key>[0-9a-f]{16})")
WEIGHTS_FILE, MANIFEST_FILE = "model.safetensors", "manifest.json"


# --- recipes -------------------------------------------------------------------------------------

def check_recipe(name: str, recipe: Any) -> dict[str, Any]:
    """Validate one recipe: the exact keys of :data:`RECIPE_DOC` for its kind, types and ranges.

    Returns a plain copy (``stages`` a list of ints). Raises :class:`ParameterError` naming the
    encoder and the key, before any data is loaded or anything trains."""
    where = f"trained_encoders[{name!r}]"
    if not isinstance(recipe, Mapping):
        raise ParameterError(f"{where} must be a mapping of recipe keys, got {type(recipe).__name__}")
    kind = recipe.get("kind")
    if kind not in KINDS:
        raise ParameterError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    doc = {**RECIPE_DOC["common"], **RECIPE_DOC[kind]}
    check_exact_keys(recipe, doc, where, "keys", f"a {kind} recipe has")
    r = dict(recipe)

    def need(key: str, ok: bool) -> None:
        if not ok:
            raise ParameterError(f"{where}: {key} = {r[key]!r} is not valid: {doc[key]}")

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
            and np.isfinite(v)

    for key in ("train", "eval"):
        need(key, isinstance(r[key], str))
        from .data import spec_window
        try:
            spec_window(r[key])
        except ParameterError as exc:
            raise ParameterError(f"{where}: {key}: {exc}") from exc
    need("image_size", is_int(r["image_size"]) and r["image_size"] >= 8)
    need("seed", is_int(r["seed"]) and r["seed"] >= 0)
    for key in ("epochs", "batch"):
        need(key, is_int(r[key]) and r[key] >= 1)
    need("lr", is_num(r["lr"]) and r["lr"] > 0)
    need("weight_decay", is_num(r["weight_decay"]) and r["weight_decay"] >= 0)
    if kind == "vit":
        for key in ("patch", "depth", "width", "heads"):
            need(key, is_int(r[key]) and r[key] >= 1)
        need("patch", r["image_size"] % r["patch"] == 0)
        need("width", r["width"] % r["heads"] == 0)
        need("mlp_ratio", is_num(r["mlp_ratio"]) and r["mlp_ratio"] > 0)
        r["mlp_ratio"] = float(r["mlp_ratio"])
    else:
        need("width", is_int(r["width"]) and r["width"] >= 1)
        need("stages", isinstance(r["stages"], (list, tuple)) and len(r["stages"]) >= 1
             and all(is_int(s) and s >= 1 for s in r["stages"]))
        need("stem_stride", is_int(r["stem_stride"]) and r["stem_stride"] in (1, 2))
        r["stages"] = [int(s) for s in r["stages"]]
    r["lr"], r["weight_decay"] = float(r["lr"]), float(r["weight_decay"])
    return r


def recipes(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The profile's ``trained_encoders``, every recipe checked (:func:`check_recipe`)."""
    table = params.get("trained_encoders") or {}
    if not isinstance(table, Mapping):
        raise ParameterError(f"trained_encoders must be a mapping name -> recipe, got {type(table).__name__}")
    for name in table:
        if not _RESOLVED.fullmatch(f"{name}@{'0' * 16}") or name.startswith("timm:"):
            raise ParameterError(f"trained_encoders: {name!r} is not a usable encoder name "
                                 f"(letters, digits, '_', '.', '-')")
    return {name: check_recipe(name, r) for name, r in table.items()}


def native_image_size(name: str, params: Mapping[str, Any]) -> int | None:
    """The image size a trained encoder of the profile works at (its recipe's ``image_size``);
    None for any other encoder name."""
    base = _split_control(name)[0]
    table = params.get("trained_encoders") or {}
    if base in table:
        return int(check_recipe(base, table[base])["image_size"])
    return None


# --- data windows ---------------------------------------------------------------------------------

def used_windows(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, spec) of every image set a generator trains on or a reference uses in a profile:
    every zoo seed's window (``zoo_seeds`` and ``gradient_seeds``; the gradient models train on
    the first images of them), ``zoo_memorize_train``, ``reference_train``, ``test``, ``fresh``,
    the sensitivity grid's second T (``reference_split``) and any ``external_sets`` spec."""
    from .zoo import seed_train_spec
    seeds = sorted({int(s) for s in list(params["zoo_seeds"]) + list(params.get("gradient_seeds") or [])})
    out = [(f"zoo seed {s} (zoo_train shifted)", seed_train_spec(params, s)) for s in seeds]
    out += [(key, params[key]) for key in ("zoo_memorize_train", "reference_train", "test", "fresh")]
    for split in (params.get("sensitivity_grid") or {}).get("reference_split") or []:
        if split != "default":
            out.append(("sensitivity_grid.reference_split", split))
    for name, specs in (params.get("external_sets") or {}).items():
        for spec in [specs] if isinstance(specs, str) else specs:
            out.append((f"external_sets[{name!r}]", str(spec)))
    return out


def check_encoder_windows(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Raise :class:`ParameterError` unless every trained encoder's ``train`` and ``eval`` windows
    lie inside their split and share no image with any set of :func:`used_windows` (nor with each
    other). Returns the (what, spec) pairs checked."""
    from .data import SPLIT_SIZES, spec_window, windows_overlap
    used = used_windows(params)
    for name, r in recipes(params).items():
        for key in ("train", "eval"):
            data, split, _, stop = spec_window(r[key])
            size = SPLIT_SIZES.get((data, split))
            if size is not None and stop > size:
                raise ParameterError(f"trained encoder {name}: {key} = {r[key]} ends past "
                                     f"{data}:{split} ({size} images)")
            for what, spec in used:
                if windows_overlap(r[key], spec):
                    raise ParameterError(f"trained encoder {name}: {key} = {r[key]} overlaps {what} "
                                         f"= {spec}; the encoders must learn from images no "
                                         f"generator or reference uses (docs/design.md#trained-encoders)")
        if windows_overlap(r["train"], r["eval"]):
            raise ParameterError(f"trained encoder {name}: train {r['train']} overlaps eval {r['eval']}")
    return used


# --- keys and cache entries -----------------------------------------------------------------------

def labelled_images(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W, C) and int64 labels (N,) of a labelled dataset spec."""
    from .data import load_images
    from .zoo.families.base import as_images
    s = load_images(spec)
    if s.labels is None or (s.labels < 0).any():
        raise ParameterError(f"{spec}: a trained encoder needs labelled images (a dataset spec "
                             f"such as fashion-mnist:train[35000:45000])")
    return as_images(s.images, spec), s.labels


def content_key(name: str, recipe: Mapping[str, Any], data_hash: str) -> str:
    """16-hex key of a trained encoder's weights: name, checked recipe, training data hash and
    :data:`TRAINED_VERSION`."""
    return store.hash_params({"trained_version": TRAINED_VERSION, "name": name,
                              "recipe": check_recipe(name, recipe), "data_hash": data_hash})


def entry_folder(name: str, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/encoders/<name>-<key>`` (default cache: ``$MEMLIB_CACHE``)."""
    return Path(cache_dir if cache_dir is not None else cache_root()) / "encoders" / f"{name}-{key}"


def is_resolved(name: str) -> bool:
    """Whether ``name`` (without control suffixes) is a trained encoder's ``<name>@<key>``."""
    return not name.startswith("timm:") and _RESOLVED.fullmatch(name) is not None


def weights_id_of(name: str) -> str:
    """``trained:<key>`` of a resolved name ``<name>@<key>``."""
    match = _RESOLVED.fullmatch(name)
    if match is None:
        raise EncoderError(f"{name!r} is not a trained encoder's <name>@<key>")
    return f"trained:{match['key']}"


def resolved_name(name: str, recipe: Mapping[str, Any]) -> str:
    """``<name>@<key>`` for a recipe (loads the training window to hash it; trains nothing)."""
    images, labels = labelled_images(check_recipe(name, recipe)["train"])
    return f"{name}@{content_key(name, recipe, store.hash_arrays(images, labels))}"


def train_or_load(name: str, recipe: Mapping[str, Any], *, cache_dir: str | os.PathLike | None = None,
                  device: str = "auto", progress: bool = True,
                  threads: int | None = None) -> tuple[str, dict[str, Any]]:
    """Train the encoder of ``recipe`` once (float32, :func:`memlib.encoder_training.train_classifier`)
    and cache it, or find it cached. Returns its resolved name ``<name>@<key>`` and manifest.

    ``threads``: torch threads while training (None: the process's setting). The weights' last
    bits depend on it, like every float32 CPU computation (docs/reproducibility.md); it is recorded
    in the manifest, not part of the key, as for the zoo."""
    from safetensors.torch import save_file

    from .encoder_nets import n_params
    from .encoder_training import accuracy, train_classifier
    from .machine import cpu_model

    recipe = check_recipe(name, recipe)
    images, labels = labelled_images(recipe["train"])
    key = content_key(name, recipe, store.hash_arrays(images, labels))
    folder = entry_folder(name, key, cache_dir)
    if (folder / MANIFEST_FILE).exists():
        return f"{name}@{key}", store.read_json(folder / MANIFEST_FILE)
    eval_images, eval_labels = labelled_images(recipe["eval"])
    if recipe["batch"] > len(images):
        raise ParameterError(f"trained_encoders[{name!r}]: batch {recipe['batch']} is larger than "
                             f"train ({len(images)} images)")
    n_classes = int(labels.max()) + 1
    dev = pick_device(device)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    net, enc = _fresh(name, key, recipe, n_classes, dev)
    from .zoo.families.base import threads as torch_threads
    with torch_threads(threads):
        result = train_classifier(enc, net, images, labels, recipe, progress=progress,
                                  desc=f"train {name}")
        test_acc = accuracy(enc, net, eval_images, eval_labels)
    import torch
    with store.atomic_path(folder / WEIGHTS_FILE, suffix=".safetensors") as tmp:
        # one metadata entry: safetensors writes a map's entries in no fixed order
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp),
                  metadata={"memlib_trained_encoder": f"{name}@{key}"})
    manifest = {
        "name": name, "key": key, "resolved": f"{name}@{key}", "weights_id": f"trained:{key}",
        "kind": recipe["kind"], "recipe": recipe, "trained_version": TRAINED_VERSION,
        "n_classes": n_classes, "n_train": len(images), "n_eval": len(eval_images),
        "data_hash": store.hash_arrays(images, labels), "n_params": n_params(net),
        "n_layers": enc.n_layers, "dim": enc.dim,
        "test_accuracy": test_acc, "train_accuracy_last_epoch": result.epoch_accuracy[-1],
        "epoch_loss": result.epoch_loss, "epoch_accuracy": result.epoch_accuracy,
        "train_seconds": result.train_seconds, "train_cpu_seconds": result.train_cpu_seconds,
        "n_steps": result.n_steps, "torch_threads": result.torch_threads, "device": str(dev),
        "cpu": cpu_model(), "load_average_1min": [load_start, os.getloadavg()[0]
                                                  if hasattr(os, "getloadavg") else float("nan")],
        "precision": "float32", "torch": torch.__version__,
        "weights_sha256": store.sha256_file(folder / WEIGHTS_FILE),
    }
    store.write_json(folder / MANIFEST_FILE, manifest)
    return f"{name}@{key}", manifest


def read_entry(resolved: str, cache_dir: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
    """The cache folder and manifest of a resolved name; :class:`EncoderError` when not trained."""
    match = _RESOLVED.fullmatch(resolved)
    if match is None:
        raise EncoderError(f"{resolved!r} is not a trained encoder's <name>@<key>")
    folder = entry_folder(match["name"], match["key"], cache_dir)
    if not (folder / MANIFEST_FILE).exists():
        raise EncoderError(f"trained encoder {resolved} is not in the cache ({folder}): train it "
                           f"with `python -m memlib encoders --train` (its profile's recipe) or "
                           f"pass --encoder {match['name']}")
    return folder, store.read_json(folder / MANIFEST_FILE)


def build(name: str, image_size: int, device: str = "auto", precision: str = "auto", *,
          recipe: Mapping[str, Any] | None = None, cache_dir: str | os.PathLike | None = None,
          progress: bool = True) -> Encoder:
    """The :class:`~memlib.encoders.Encoder` of a trained encoder, for
    :func:`memlib.encoders.build_encoder`.

    ``name`` is ``<name>`` with its ``recipe`` (trained here on first use) or a resolved
    ``<name>@<key>`` (read from the cache), either with ``+shuffled`` / ``+random`` suffixes.
    ``image_size`` must be the recipe's (the encoder's native size). The encoder's name is the
    resolved one; its weights id is ``trained:<key>`` (controls: as for every encoder)."""
    from safetensors.torch import load_file

    base, controls = _split_control(name)
    if recipe is not None:
        if is_resolved(base):
            raise EncoderError(f"{name}: give a plain name with its recipe, or a resolved "
                               f"<name>@<key> without one")
        base, _ = train_or_load(base, recipe, cache_dir=cache_dir, device=device, progress=progress)
    folder, manifest = read_entry(base, cache_dir)
    r = manifest["recipe"]
    if image_size != r["image_size"]:
        raise EncoderError(f"trained encoder {base} works at its native {r['image_size']} px only, "
                           f"not {image_size} (pass --image-size {r['image_size']}, or leave it out)")
    dev = pick_device(device)
    key = manifest["key"]
    if "random" in controls:
        net, _ = _fresh(manifest["name"], key, r, manifest["n_classes"], dev)
        _init_random(net)
        wid = f"random-init-seed{CONTROL_SEED}-ls1"
    else:
        digest = store.sha256_file(folder / WEIGHTS_FILE)
        if digest != manifest["weights_sha256"]:
            raise CacheError(f"{folder / WEIGHTS_FILE}: sha256 differs from its manifest; delete "
                             f"{folder} and it will be trained again")
        net, _ = _fresh(manifest["name"], key, r, manifest["n_classes"], dev)
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        wid = f"trained:{key}"
    if "shuffled" in controls:
        _shuffle_weights(net)
        wid += f"+shuffled-seed{CONTROL_SEED}"
    return _wrap(base + name[len(_split_control(name)[0]):], net.eval(), r, wid, dev, precision)


def resolve(name: str, params: Mapping[str, Any], *, train: bool = True, progress: bool = True,
            cache_dir: str | os.PathLike | None = None) -> str:
    """``name`` with a trained encoder of the profile replaced by ``<name>@<key>`` (suffixes
    kept); any other name unchanged. Checks the data windows (:func:`check_encoder_windows`) and,
    with ``train``, trains the encoder if it is not cached (on ``params["device"]``)."""
    base = _split_control(name)[0]
    table = params.get("trained_encoders") or {}
    if base not in table:
        return name
    check_encoder_windows(params)
    recipe = recipes(params)[base]
    if train:
        full, _ = train_or_load(base, recipe, cache_dir=cache_dir, device=params["device"],
                                progress=progress)
    else:
        full = resolved_name(base, recipe)
    return full + name[len(base):]


def _fresh(name: str, key: str, recipe: Mapping[str, Any], n_classes: int, dev):
    """A network of the recipe (initialised from torch's global RNG, seeded with the recipe's
    seed) on ``dev`` and its float32 Encoder view."""
    import torch

    from .encoder_nets import build_net
    from .zoo.families.base import seeded
    with seeded(int(recipe["seed"])):
        net = build_net(recipe, n_classes)
    net = net.to(dev)
    if recipe["kind"] == "cnn":
        net = net.to(memory_format=torch.channels_last)
    return net, _wrap(f"{name}@{key}", net, recipe, f"trained:{key}", dev, "float32")


def _wrap(name: str, net, recipe: Mapping[str, Any], wid: str, dev, precision: str) -> Encoder:
    from .encoder_nets import CNNEncoder
    from .malloc import keep_freed_memory
    if dev.type == "cpu":
        keep_freed_memory()
    cls = CNNEncoder if recipe["kind"] == "cnn" else Encoder
    return cls(name=name, model=net, image_size=int(recipe["image_size"]), weights_id=wid,
               device=dev, precision=compute_precision(dev, precision))


# --- the encoders table ---------------------------------------------------------------------------

TABLE_COLUMNS = ["name", "kind", "recipe", "train_window", "eval_window", "n_train", "n_eval",
                 "n_layers", "dim", "n_params", "test_accuracy", "train_seconds",
                 "train_cpu_seconds", "torch_threads", "load_average_1min", "device", "cpu", "key"]
ARCH_KEYS = {"vit": ("image_size", "patch", "depth", "width", "heads", "mlp_ratio"),
             "cnn": ("image_size", "width", "stages", "stem_stride")}


def encoders_table(params: Mapping[str, Any], *, train: bool = True, progress: bool = True,
                   cache_dir: str | os.PathLike | None = None):
    """One row per trained encoder of the profile (:data:`TABLE_COLUMNS`): recipe (architecture
    and training keys as compact JSON), windows, sizes, parameter count, test accuracy (share in
    [0, 1]), training wall and CPU seconds, torch threads, 1-min load average at the start of
    training (other jobs on the cores inflate the seconds), device and CPU model. With ``train``
    the missing ones are trained first; otherwise their measured columns are empty."""
    import pandas as pd
    check_encoder_windows(params)
    rows = []
    for name, r in recipes(params).items():
        manifest = None
        if train:
            _, manifest = train_or_load(name, r, cache_dir=cache_dir, device=params["device"],
                                        progress=progress)
        else:
            key = resolved_name(name, r).rpartition("@")[2]
            path = entry_folder(name, key, cache_dir) / MANIFEST_FILE
            manifest = store.read_json(path) if path.exists() else None
        m = manifest or {}
        rows.append({
            "name": name, "kind": r["kind"],
            "recipe": json.dumps({k: v for k, v in r.items() if k not in ("kind", "train", "eval")},
                                 separators=(",", ":")),
            "train_window": r["train"], "eval_window": r["eval"], "n_train": m.get("n_train"),
            "n_eval": m.get("n_eval"), "n_layers": m.get("n_layers"), "dim": m.get("dim"),
            "n_params": m.get("n_params"), "test_accuracy": m.get("test_accuracy"),
            "train_seconds": m.get("train_seconds"), "train_cpu_seconds": m.get("train_cpu_seconds"),
            "torch_threads": m.get("torch_threads"),
            "load_average_1min": (m.get("load_average_1min") or [None])[0],
            "device": m.get("device"), "cpu": m.get("cpu"), "key": m.get("key")})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_encoders_table(path: str | os.PathLike, params: Mapping[str, Any], *, train: bool = True,
                         progress: bool = True, cache_dir: str | os.PathLike | None = None):
    """Write :func:`encoders_table` to ``path`` (CSV, atomically; accuracy to 4 decimals, seconds
    to 1); returns the table. Notebook 06 writes ``figures/encoders.csv`` with it."""
    table = encoders_table(params, train=train, progress=progress, cache_dir=cache_dir)
    out = table.copy()
    for col, digits in (("test_accuracy", 4), ("train_seconds", 1), ("train_cpu_seconds", 1),
                        ("load_average_1min", 2)):
        out[col] = pd_round(out[col], digits)
    with store.atomic_path(path, suffix=".csv") as tmp:
        out.to_csv(tmp, index=False)
    return table


def pd_round(column, digits: int):
    """A numeric column rounded to ``digits`` (empty cells stay empty)."""
    import pandas as pd
    return pd.to_numeric(column, errors="coerce").round(digits)


def describe(params: Mapping[str, Any], cache_dir: str | os.PathLike | None = None) -> list[str]:
    """One line per trained encoder of the profile for ``python -m memlib encoders``: its recipe
    and, when trained, its test accuracy, training time and CPU."""
    lines = []
    for name, r in recipes(params).items():
        arch = ", ".join(f"{k} {r[k]}" for k in ARCH_KEYS[r["kind"]])
        full = resolved_name(name, r)
        head = (f"{name}  (trained here: {r['kind']}, {arch}; seed {r['seed']}, {r['epochs']} "
                f"epochs on {r['train']})")
        try:
            _, m = read_entry(full, cache_dir)
        except EncoderError:
            lines.append(f"{head}: not trained yet (python -m memlib encoders --train, or first use)")
            continue
        lines.append(f"{head}: test accuracy {m['test_accuracy']:.3f} on {r['eval']}, "
                     f"{m['n_params']:,} parameters, trained in {m['train_seconds']:.0f} s "
                     f"({m['train_cpu_seconds']:.0f} CPU-s, {m['torch_threads']} torch thread"
                     f"{'' if m['torch_threads'] == 1 else 's'}) on "
                     f"{m['cpu']}; registry name {full}")
    return lines
