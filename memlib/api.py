"""The public functions of ``import memlib`` (documented with an example in docs/api.md).

Every function takes what people have in hand for an image set:

- a folder of images (flat or one sub-folder per class; png/jpg/jpeg/webp);
- an ``.npz`` with a uint8 ``images`` array, or ``arr_0`` as the ADM / guided-diffusion
  samplers write it (N, H, W, C uint8, as dgm-eval reads it);
- a dataset spec such as ``"fashion-mnist:test[:2000]"``;
- a numpy array (N, H, W) or (N, H, W, C), uint8 or floats in [0, 1];
- a torch tensor (N, C, H, W) as torchvision produces it (C in {1, 3}; uint8 or floats in
  [0, 1]), or (N, H, W);
- an :class:`memlib.data.ImageSet`.

:func:`ct_curve` and :func:`fit_reference` also take features instead of images: a
:class:`memlib.features.LayerFeatures`, a list of per-layer (N, D) arrays, or a float
(L, N, D) array. A uint8 array or any 4-D array is always images.

Settings (encoder, image size, token, precision, cells, PCA dimension, seed, ...) are the keys
of a profile (``params/default.yaml``), given as keyword arguments: ``profile`` picks the
profile that supplies the rest (``default`` unless said), and every keyword is checked against
it, so a typo fails with the closest key named.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .params import load_params as _load_params

__all__ = ["load_params", "load_images", "embed", "fit_reference", "ct_curve", "find_copies",
           "load_database", "attribute", "settings"]


def load_params(profile: str = "default", *, path: str | os.PathLike | None = None,
                **overrides: Any) -> dict[str, Any]:
    """A profile's parameters (``default``, ``smoke``, ``full`` or a YAML ``path``) with
    ``overrides`` applied and checked (:func:`memlib.params.load_params`)."""
    return _load_params(profile, path=path, overrides=overrides or None)


def settings(profile: str = "default", params: dict | None = None, *, progress: bool = False,
             **overrides: Any) -> dict:
    """Resolved parameters: ``params`` (an already loaded dict) or ``profile``'s, with
    ``overrides`` (keys of params/default.yaml) checked and applied.

    A trained encoder of the profile (``encoder="fmnist-vit"``, docs/design.md#trained-encoders)
    becomes its registry name ``<name>@<key>`` (trained on first use) and, unless ``image_size``
    is among the overrides, its native image size (28 px); any other size is refused when it
    embeds. ``progress``: a progress bar while such an encoder trains (the command line's)."""
    if params is None:
        p = load_params(profile, **overrides)
    else:
        from .params import check_keys, schema
        check_keys(overrides, schema(), "override")
        p = {**params, **overrides}
    from .trained_encoders import native_image_size, resolve
    native = native_image_size(p["encoder"], p)
    if native is None:
        return p
    return {**p, "encoder": resolve(p["encoder"], p, progress=progress),
            "image_size": int(overrides.get("image_size", native))}


# --- image sets ----------------------------------------------------------------------------------

def load_images(images: Any, *, name: str | None = None, seed: int = 0):
    """An :class:`memlib.data.ImageSet` (uint8 (N, H, W, C)) from any of the inputs in the
    module docstring. ``seed`` drives a spec's random ``@n`` subsample."""
    from .data import ImageSet, load_images as _load

    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, os.PathLike)):
        return _load(images, seed=seed, name=name)
    array = _to_numpy_images(images)
    label = name or "images"
    return ImageSet(array, np.char.add(f"{label}/", np.arange(len(array)).astype(str)),
                    name=label)


def _to_numpy_images(images: Any) -> np.ndarray:
    """(N, H, W[, C]) numpy from a numpy array or a torch tensor (N, C, H, W)."""
    if type(images).__module__.startswith("torch"):
        t = images.detach().cpu()
        if t.ndim == 4 and t.shape[1] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(0, 2, 3, 1)       # torchvision's (N, C, H, W) → (N, H, W, C)
        if t.dtype.is_floating_point:
            t = t.float()
        return t.numpy()
    if isinstance(images, np.ndarray):
        return images
    raise InputError(f"images: expected a folder, an .npz, a dataset spec, a numpy array or a "
                     f"torch tensor, got {type(images).__name__}")


def _is_features(x: Any) -> bool:
    """True for per-layer features, False for images (module docstring's rule)."""
    from .data import ImageSet
    from .features import LayerFeatures

    if isinstance(x, LayerFeatures):
        return True
    if isinstance(x, (ImageSet, str, os.PathLike)) or type(x).__module__.startswith("torch"):
        return False
    if isinstance(x, np.ndarray):
        return x.ndim == 3 and x.dtype.kind == "f"
    if isinstance(x, (list, tuple)) and x and all(getattr(a, "ndim", None) == 2 for a in x):
        return True
    return False


# --- features and C_T ----------------------------------------------------------------------------

def embed(images: Any, *, profile: str = "default", params: dict | None = None,
          progress: bool = False, **overrides: Any):
    """Per-layer features (:class:`memlib.features.LayerFeatures`: ``len`` = layers, each
    (N, D) float) of ``images`` with the profile's encoder settings (``encoder``,
    ``image_size``, ``token``, ``final_norm``, ``batch_size``, ``device``, ``precision``),
    cached on disk (``$MEMLIB_CACHE``). ``encoder="pixels"`` gives raw pixels as one layer."""
    from .features import embed as _embed, pixel_features

    p = settings(profile, params, **overrides)
    image_set = load_images(images, seed=p["seed"])
    if p["encoder"] == "pixels":
        return pixel_features(image_set)
    return _embed(image_set, p["encoder"], image_size=p["image_size"], token=p["token"],
                  final_norm=p["final_norm"], batch_size=p["batch_size"], device=p["device"],
                  precision=p["precision"], progress=progress)


def _features(x: Any, p: dict, progress: bool):
    return x if _is_features(x) else embed(x, params=p, progress=progress)


def fit_reference(train: Any, test: Any, *, variant: str = "ct", profile: str = "default",
                  params: dict | None = None, progress: bool = False, **overrides: Any):
    """A fitted :class:`memlib.ct.Reference` (per-layer PCA, ``n_cells`` cells and test
    distances) of the training set T and the held-out set P_n, images or features.
    ``ref.curve(features)`` then gives any generated set's (L,) C_T per layer."""
    from .ct import fit_reference as _fit

    p = settings(profile, params, **overrides)
    return _fit(_features(train, p, progress), _features(test, p, progress), variant=variant,
                n_cells=int(p["n_cells"]), pca_dim=p["pca_dim"], seed=int(p["seed"]),
                progress=progress)


def ct_curve(train: Any, test: Any, gen: Any, *, variant: str = "ct", profile: str = "default",
             params: dict | None = None, progress: bool = False, **overrides: Any) -> np.ndarray:
    """(L,) C_T per layer of the generated set ``gen`` against T = ``train`` and P_n = ``test``
    (images or features; module docstring). Negative = copying, positive = under-fitting
    (dimensionless z-scores; docs/design.md#the-c_t-score)."""
    p = settings(profile, params, **overrides)
    ref = fit_reference(train, test, variant=variant, params=p, progress=progress)
    return ref.curve(_features(gen, p, progress))


def find_copies(gen: Any, train: Any, test: Any = None, *, quantile: float | None = None,
                profile: str = "default", params: dict | None = None, progress: bool = False,
                **overrides: Any):
    """Each generated image's nearest training image per layer (layer 0 = raw pixels, then
    the encoder's blocks) and whether it is flagged as a copy: a :class:`memlib.copy_report.
    CopyReport` (``.table()``, ``.share_flagged()``, ``.kinds()``). ``test`` (default: the
    profile's ``test`` set) calibrates the flag at ``quantile`` (default ``zoo_copy_quantile``)
    of its own nearest-training distances."""
    from .copy_report import find_copies as _find, with_pixels
    from .features import pixel_features

    p = settings(profile, params, **overrides)
    layers = []
    for x in (train, p["test"] if test is None else test, gen):
        images = load_images(x, seed=p["seed"])
        blocks = None if p["encoder"] == "pixels" else embed(images, params=p, progress=progress)
        layers.append(with_pixels(pixel_features(images), blocks))
    q = p["zoo_copy_quantile"] if quantile is None else quantile
    return _find(*layers, quantile=q, layers=range(len(layers[2])), progress=progress)


# --- attribution ---------------------------------------------------------------------------------

def load_database(folder: str | os.PathLike):
    """A fingerprint :class:`memlib.fingerprint_db.Database` (``curves.csv`` and
    ``manifest.json``; the checkout's is ``figures/fingerprint_db``)."""
    from .fingerprint_db import Database
    return Database.load(folder)


def attribute(gen: Any, db: Any, *, profile: str = "default", params: dict | None = None,
              **overrides: Any):
    """Which known model made ``gen``? An :class:`memlib.fingerprint_db.AttributionReport`
    (``answer``, ranked ``table``, ``n``, ``threshold``, ``precision_note``) against ``db`` (a
    folder or a loaded Database). The settings must match the database's manifest, except the
    forward-pass precision, which is accepted within the manifest's measured tolerance
    (docs/api.md)."""
    from . import fingerprint_db as fdb

    database = db if isinstance(db, fdb.Database) else fdb.Database.load(db)
    p = settings(profile, params, **overrides)
    images = load_images(gen, seed=p["seed"])
    scorer = fdb.scorer_for(database, p)
    return fdb.attribute_set(database, scorer, images.images, name=images.name)

