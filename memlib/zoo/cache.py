"""The cached zoo of a profile: which models it holds, their cache entries, trained-or-loaded
models and sampled-or-loaded samples with their manifests.

A cache entry is a folder ``<cache>/zoo/<family>-<variant>-s<seed>-<key>/`` where ``key``
hashes the family, variant, seed, hyper-parameters, the training images' content hash and
:data:`ZOO_VERSION`. It holds

* ``model.safetensors`` + ``train.json`` (written last: its presence marks a finished model),
* ``samples-n<n>.npz`` (``images`` uint8 (n, H, W[, C]), plus ``source_index`` for kde) +
  ``manifest-n<n>.json`` (written last: its presence marks finished samples).

All writes are atomic (:mod:`memlib.store`), so an interrupted run leaves no piece that a later
run would trust, and a finished piece is never recomputed. No pickle anywhere.
"""
from __future__ import annotations

import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import store
from ..errors import ParameterError
from ..metrics import copy_metrics, pixel_fd
from .families import FAMILIES
from .families.base import as_images, pick_device
from .recipes import is_recipe_variant, recipe_of, recipe_overrides
from .train import TrainedModel, check_hparams, train_model

ZOO_VERSION = 1  # bump when a family's code changes its numbers: it is part of every cache key
VARIANTS = ("standard", "memorize")   # plus the memorization gradient's "n<size>" (gradient_models)
# and the training recipes' "recipe-<name>" (memlib.zoo.recipes, recipe_models)
_GRADIENT_VARIANT = re.compile(r"n([1-9][0-9]*)")


@dataclass
class ZooSamples:
    """Samples of one zoo model.

    Attributes:
        images: uint8 (n, 28, 28) for Fashion-MNIST (grey: (n, H, W); colour: (n, H, W, C)).
        manifest: family, variant, seed, hparams, data spec and hash, loss summary,
            train_seconds, sample_seconds, n_samples, copy metrics (see
            :func:`memlib.metrics.copy_metrics`) and pixel FD (:func:`memlib.metrics.pixel_fd`).
        extras: other arrays stored with the samples (kde: ``source_index`` int64 (n,), the
            training row each sample was drawn around).
        folder: the cache entry.
    """

    images: np.ndarray
    manifest: dict[str, Any]
    extras: dict[str, np.ndarray]
    folder: Path


def gradient_size(variant: str) -> int | None:
    """The training-set size of a memorization-gradient variant ``n<size>``; None otherwise."""
    match = _GRADIENT_VARIANT.fullmatch(variant)
    return int(match[1]) if match else None


def zoo_hparams(family: str, variant: str, params: dict[str, Any]) -> dict[str, Any]:
    """A family's hyper-parameters for a variant: ``zoo_hparams[family]`` updated by
    ``zoo_memorize_hparams[family]`` for ``memorize``, by ``gradient_hparams[family]`` for a
    gradient variant ``n<size>`` (when the family has overrides there) and by
    ``zoo_recipes[family][name]`` for a recipe variant ``recipe-<name>`` (:mod:`memlib.zoo.recipes`)."""
    if variant not in VARIANTS and gradient_size(variant) is None and not is_recipe_variant(variant):
        raise ParameterError(f"unknown zoo variant {variant!r}; known: {', '.join(VARIANTS)}, "
                             f"n<size> (the memorization gradient, e.g. n16) and recipe-<name> (zoo_recipes)")
    table = params["zoo_hparams"]
    if not isinstance(table, dict) or family not in table:
        raise ParameterError(f"zoo_hparams has no entry for family {family!r} "
                             f"(has: {', '.join(table or []) or 'none'})")
    hp = dict(table[family])
    if variant == "memorize":
        hp.update((params["zoo_memorize_hparams"] or {}).get(family) or {})
    elif gradient_size(variant) is not None:
        hp.update((params["gradient_hparams"] or {}).get(family) or {})
    elif is_recipe_variant(variant):
        hp.update(recipe_overrides(family, variant, params))
    return check_hparams(family, hp)


def seed_train_spec(params: dict[str, Any], seed: int) -> str:
    """The training data of seed ``seed``: the window of ``zoo_train``'s size, shifted by
    ``seed`` windows (``fashion-mnist:train[:10000]``, seed 2 -> ``train[20000:30000]``), so
    that seeds are independent training runs on disjoint data (:func:`check_seed_windows`)."""
    from ..data import shift_spec
    return shift_spec(params["zoo_train"], int(seed))


def train_spec(variant: str, params: dict[str, Any], seed: int = 0) -> str:
    """The image spec a variant of seed ``seed`` trains on: its own window of ``zoo_train``
    (:func:`seed_train_spec`), ``zoo_memorize_train``, or for ``n<size>`` the first ``size``
    images of that seed's window (:func:`memlib.data.head_spec`). A recipe variant
    ``recipe-<name>`` trains on its seed's window, as the default recipe does."""
    size = gradient_size(variant)
    if variant == "memorize":
        return params["zoo_memorize_train"]
    spec = seed_train_spec(params, seed)
    if size is not None:
        from ..data import head_spec
        return head_spec(spec, size)
    return spec


def check_seed_windows(params: dict[str, Any]) -> None:
    """Raise ParameterError unless every seed's training window (``zoo_seeds``, ``gradient_seeds``)
    lies inside its split and shares no image with ``reference_train``, ``test`` or ``fresh``
    (the public T, P_n and the fresh images must be data no model trained on)."""
    from ..data import SPLIT_SIZES, spec_window, windows_overlap
    seeds = sorted({int(s) for s in list(params["zoo_seeds"]) + list(params.get("gradient_seeds") or [])})
    for seed in seeds:
        spec = seed_train_spec(params, seed)
        name, split, _, stop = spec_window(spec)
        size = SPLIT_SIZES.get((name, split))
        if size is not None and stop > size:
            raise ParameterError(f"zoo seed {seed} trains on {spec}, past the end of {name}:{split} "
                                 f"({size} images): use fewer seeds or a smaller zoo_train")
        for key in ("reference_train", "test", "fresh"):
            if key in params and windows_overlap(spec, params[key]):
                raise ParameterError(f"zoo seed {seed} trains on {spec}, which overlaps {key} = "
                                     f"{params[key]}: move {key} out of the seeds' windows")


def load_spec_images(spec: str) -> np.ndarray:
    """uint8 (N, H, W, C) images of a data spec (via :func:`memlib.data.load_images`)."""
    from ..data import load_images
    return as_images(load_images(spec).images, spec)


def zoo_root(cache_dir: str | Path | None) -> Path:
    """``<cache_dir>/zoo`` (default cache: ``$MEMLIB_CACHE``)."""
    if cache_dir is None:
        from ..encoders import cache_root
        cache_dir = cache_root()
    return Path(cache_dir) / "zoo"


def cache_folder(family: str, variant: str, seed: int, params: dict[str, Any],
                 cache_dir: str | Path | None = None, *, data_hash: str | None = None) -> Path:
    """The cache entry of one (family, variant, seed) under ``cache_dir`` (default $MEMLIB_CACHE).

    The key of a recipe variant also holds ``"recipe": <name>``; every other variant's key is
    the one it had before recipes existed (no ``recipe`` field), so its cache entries stay valid."""
    hp = zoo_hparams(family, variant, params)
    if data_hash is None:
        data_hash = store.hash_arrays(load_spec_images(train_spec(variant, params, seed)))
    fields = {"zoo_version": ZOO_VERSION, "family": family, "variant": variant,
              "seed": int(seed), "hparams": hp, "data_hash": data_hash}
    if is_recipe_variant(variant):
        fields["recipe"] = recipe_of(variant)
    key = store.hash_params(fields)
    return zoo_root(cache_dir) / f"{family}-{variant}-s{int(seed)}-{key}"


def load_or_train(family: str, variant: str, seed: int, params: dict[str, Any],
                  cache_dir: str | Path | None = None, *, progress: bool = True,
                  device: str | None = None) -> tuple[TrainedModel, Path]:
    """Train one model, or load it from its cache entry when ``train.json`` is there.

    ``device`` (default ``params["device"]``); ``params["zoo_threads"]`` torch threads (0: torch's
    default)."""
    images = load_spec_images(train_spec(variant, params, seed))
    data_hash = store.hash_arrays(images)
    folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=data_hash)
    hp = zoo_hparams(family, variant, params)
    threads = params["zoo_threads"] or None
    dev = pick_device(device or params["device"])
    info_path, weights_path = folder / "train.json", folder / "model.safetensors"
    if info_path.exists() and weights_path.exists():
        from safetensors.numpy import load_file
        info = store.read_json(info_path)
        model = FAMILIES[family](hp, dev)
        model.load_state(load_file(str(weights_path)), images)
        return TrainedModel(family, model, hp, int(seed), info["losses"], info["train_seconds"],
                            info["train_cpu_seconds"], threads), folder
    trained = train_model(family, images, seed=seed, hparams=hp, progress=progress, device=dev,
                          threads=threads)
    from safetensors.numpy import save_file
    with store.atomic_path(weights_path, suffix=".safetensors") as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in trained.model.state().items()}, str(tmp))
    store.write_json(info_path, {
        "family": family, "variant": variant, "recipe": recipe_of(variant), "seed": int(seed), "hparams": hp,
        "train_spec": train_spec(variant, params, seed), "data_hash": data_hash, "n_train": len(images),
        "zoo_version": ZOO_VERSION, "train_seconds": trained.train_seconds,
        "train_cpu_seconds": trained.train_cpu_seconds, "losses": trained.losses, "device": str(dev),
        "torch_threads": threads or torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(),
    })
    return trained, folder


def zoo_samples(family: str, seed: int, variant: str, params: dict[str, Any],
                cache_dir: str | Path | None = None, *, n_samples: int | None = None,
                progress: bool = True, device: str | None = None) -> ZooSamples:
    """Samples of one zoo model: trained-or-loaded, sampled-or-loaded, cached (see module doc).

    Args:
        family: a key of :data:`~memlib.zoo.FAMILIES`; seed: model seed (training and sampling);
        variant: ``standard``, ``memorize``, ``n<size>`` or ``recipe-<name>``; params: a profile's parameters (keys ``zoo_*``,
        ``test``, ``device``); cache_dir: cache root (default ``$MEMLIB_CACHE``);
        n_samples: default ``params["zoo_n_samples"]``; device: default ``params["device"]``.
    """
    n = int(n_samples if n_samples is not None else params["zoo_n_samples"])
    images = load_spec_images(train_spec(variant, params, seed))
    folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=store.hash_arrays(images))
    samples_path, manifest_path = folder / f"samples-n{n}.npz", folder / f"manifest-n{n}.json"
    if manifest_path.exists() and samples_path.exists():
        arrays = store.read_npz(samples_path)
        return ZooSamples(arrays.pop("images"), store.read_json(manifest_path), arrays, folder)
    trained, folder = load_or_train(family, variant, seed, params, cache_dir, progress=progress, device=device)
    start, cpu = time.perf_counter(), time.process_time()
    samples, extras = trained.sample(n)
    sample_seconds, sample_cpu = time.perf_counter() - start, time.process_time() - cpu
    test = load_spec_images(params["test"])
    metrics = copy_metrics(samples, images, test, quantile=params["zoo_copy_quantile"])
    metrics.update(pixel_fd(samples, images, test))
    manifest = {
        "family": family, "variant": variant, "recipe": recipe_of(variant), "seed": int(seed),
        "hparams": trained.hparams,
        "train_spec": train_spec(variant, params, seed), "data_hash": store.hash_arrays(images),
        "n_train": len(images), "test_spec": params["test"], "zoo_version": ZOO_VERSION,
        "n_samples": n, "train_seconds": round(trained.train_seconds, 3),
        "train_cpu_seconds": round(trained.train_cpu_seconds, 3),
        "sample_seconds": round(sample_seconds, 3), "sample_cpu_seconds": round(sample_cpu, 3),
        "loss_summary": loss_summary(trained.losses),
        "torch_threads": trained.threads or torch.get_num_threads(), **metrics,
    }
    store.write_npz(samples_path, images=samples, **extras)
    store.write_json(manifest_path, manifest)
    return ZooSamples(samples, manifest, extras, folder)


def loss_summary(losses: list[float], points: int = 20) -> dict[str, Any]:
    """First/last loss and the mean loss in ``points`` equal windows (a compact loss curve)."""
    if not losses:
        return {"n_steps": 0}
    arr = np.asarray(losses, np.float64)
    windows = np.array_split(arr, min(points, len(arr)))
    return {"n_steps": len(arr), "first": float(arr[0]), "last": float(arr[-1]),
            "final_mean": float(windows[-1].mean()),
            "curve": [round(float(w.mean()), 5) for w in windows]}


def zoo_models(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (family, variant, seed) of a profile's zoo, in training order."""
    out = [(f, "standard", int(s)) for f in params["zoo_families"] for s in params["zoo_seeds"]]
    out += [(f, "memorize", int(s)) for f in params["zoo_memorize_families"]
            for s in params["zoo_memorize_seeds"]]
    for family, variant, _ in out:
        zoo_hparams(family, variant, params)  # validates early
    check_seed_windows(params)
    return out


def gradient_models(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (family, ``n<size>``, seed) of a profile's memorization gradient: each of
    ``gradient_families`` trained on the first n of seed's window (:func:`train_spec`) for each n of
    ``gradient_sizes``, with ``gradient_seeds``; in that nested order."""
    out = [(f, f"n{int(n)}", int(s)) for f in params["gradient_families"]
           for n in params["gradient_sizes"] for s in params["gradient_seeds"]]
    for family, variant, seed in out:
        zoo_hparams(family, variant, params)  # validates early
        train_spec(variant, params, seed)
    check_seed_windows(params)
    return out


def select_models(params: dict[str, Any], families: list[str] | None, seeds: list[int] | None,
                  variants: list[str] | None, *, gradient: bool = False,
                  recipes: list[str] | None = None) -> list[tuple[str, str, int]]:
    """The models of :func:`zoo_models` (with ``gradient``: of :func:`gradient_models`; with
    ``recipes``: of :func:`memlib.zoo.recipe_models`, those of the named recipes, ``default``
    meaning the standard models of the recipe architectures) with a family, seed and variant
    among those given (None or empty: any); a family, variant or recipe the profile's zoo (or
    gradient, or ``zoo_recipes``) lacks is an error."""
    from .recipes import DEFAULT_RECIPE, recipe_models, recipe_table

    if recipes and gradient:
        raise ParameterError("zoo: recipes are variants of the zoo, not of the memorization gradient; "
                             "give either recipes or gradient")
    if recipes:
        known = [DEFAULT_RECIPE] + sorted({r for table in recipe_table(params).values() for r in table})
        unknown = [r for r in recipes if r not in known]
        if unknown or len(known) == 1:
            raise ParameterError(f"zoo: recipe(s) {unknown or list(recipes)} are not in this profile's "
                                 f"zoo_recipes (known: {', '.join(known[1:]) or 'none'}; 'default': the "
                                 f"standard models of the recipe architectures)")
        wanted = [m for m in recipe_models(params, include_default=DEFAULT_RECIPE in recipes)
                  if recipe_of(m[1]) in recipes]
        where = "recipe models"
    else:
        wanted = gradient_models(params) if gradient else zoo_models(params)
        where = "memorization gradient" if gradient else "zoo"
    for name, values in (("family", families), ("variant", variants)):
        known = {m[0 if name == "family" else 1] for m in wanted}
        for v in values or []:
            if v not in known:
                raise ParameterError(f"zoo: {name} {v!r} is not in this profile's {where} "
                                     f"({', '.join(sorted(known))})")
    return [m for m in wanted if (not families or m[0] in families) and (not variants or m[1] in variants)
            and (not seeds or m[2] in [int(s) for s in seeds])]


def zoo_list(params: dict[str, Any], cache_dir: str | Path | None = None, *,
             gradient: bool = False, models: list[tuple[str, str, int]] | None = None) -> list[dict[str, Any]]:
    """One row per zoo model (with ``gradient``: per model of :func:`gradient_models`, sampled
    meaning ``gradient_n_samples`` drawn): family (the architecture), variant, seed, train_spec
    (that seed's training data, :func:`train_spec`), recipe (``default`` but for
    ``recipe-<name>`` variants), folder, trained?, sampled?, and timings/metrics from its
    manifest when sampled. ``models``: list these (e.g. :func:`memlib.zoo.recipe_models`) instead."""
    rows, hashes = [], {}
    n = int(params["gradient_n_samples" if gradient else "zoo_n_samples"])
    if models is None:
        models = gradient_models(params) if gradient else zoo_models(params)
    for family, variant, seed in models:
        spec = train_spec(variant, params, seed)
        if spec not in hashes:
            hashes[spec] = store.hash_arrays(load_spec_images(spec))
        folder = cache_folder(family, variant, seed, params, cache_dir, data_hash=hashes[spec])
        row = {"family": family, "variant": variant, "recipe": recipe_of(variant), "seed": seed,
               "train_spec": spec, "folder": str(folder),
               "trained": (folder / "train.json").exists(),
               "sampled": (folder / f"manifest-n{n}.json").exists()}
        if row["sampled"]:
            m = store.read_json(folder / f"manifest-n{n}.json")
            row.update({k: m.get(k) for k in ("n_train", "n_samples", "train_seconds", "train_cpu_seconds",
                                               "sample_seconds", "copy_rate", "nn_ratio",
                                               "pixel_fd", "pixel_fd_ref")})
        elif row["trained"]:
            row["train_seconds"] = store.read_json(folder / "train.json")["train_seconds"]
        rows.append(row)
    return rows
