"""One source of defaults per profile: ``params/<profile>.yaml``.

The files are package data, ``memlib/profiles/<profile>.yaml`` (``params/`` in the repository
is a link to that folder), found by :func:`memlib.locations.profiles_dir` for an installed
wheel and a checkout alike.

``params/default.yaml`` is also the schema: every other profile, every papermill ``-p``/``-f``
and every CLI override may only use keys that appear there, with a value of the same type.
An unknown or mistyped key is rejected with the closest known key suggested.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ParameterError
from .locations import profiles_dir
from .machine import is_count

PROFILES = ("default", "smoke", "full")
# names a notebook's first cells define besides the parameters themselves
NOTEBOOK_CONTROL_KEYS = ("profile", "params_file")
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def params_dir() -> Path:
    """``$MEMLIB_PARAMS_DIR`` or the package's profiles (:func:`memlib.locations.profiles_dir`)."""
    return profiles_dir()


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ParameterError(f"params file {path} does not exist (profiles: {', '.join(PROFILES)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of key: value")
    return data


def schema() -> dict[str, Any]:
    """The default profile's parameters: the set of known keys and their types."""
    return _read_yaml(params_dir() / "default.yaml")


def check_keys(values: Mapping[str, Any], known: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ParameterError` for a key not in ``known`` or a value of the wrong type."""
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"{source}: unknown parameter {key!r}{hint} "
                                 f"(known keys are those of params/default.yaml)")
        _check_type(key, value, known[key], source)


# counts that are "auto" (follow the machine, memlib/machine.py) or a positive integer
AUTO_COUNT_KEYS = ("zoo_workers", "torch_threads")


def _check_type(key: str, value: Any, reference: Any, source: str) -> None:
    if reference is None or value is None:
        return
    if key in AUTO_COUNT_KEYS:
        if not is_count(value):
            raise ParameterError(f"{source}: parameter {key!r} should be 'auto' or a positive "
                                 f"integer, got {value!r}")
        return
    numeric = (int, float)
    ok = (isinstance(value, bool) == isinstance(reference, bool)) and (
        isinstance(value, type(reference))
        or (isinstance(reference, numeric) and isinstance(value, numeric)
            and not (isinstance(reference, int) and isinstance(value, float)
                     and not float(value).is_integer())))
    if not ok:
        raise ParameterError(f"{source}: parameter {key!r} should be {type(reference).__name__} "
                             f"(like {reference!r}), got {type(value).__name__} {value!r}")


def load_params(profile: str = "default", *, path: str | os.PathLike | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameters of a profile (or a YAML file), with overrides applied and validated.

    Args:
        profile: ``default``, ``smoke`` or ``full`` (a file ``params/<profile>.yaml``).
        path: a YAML file used instead of the profile (only keys of ``default.yaml``).
        overrides: individual values that win over the file.
    """
    known = schema()
    if path is not None:
        source = Path(path)
    else:
        if profile not in PROFILES and not (params_dir() / f"{profile}.yaml").exists():
            raise ParameterError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        source = params_dir() / f"{profile}.yaml"
    values = _read_yaml(source)
    check_keys(values, known, str(source))
    merged = {**known, **values}
    if overrides:
        check_keys(overrides, known, "override")
        merged.update(overrides)
    int_keys = {k for k, v in known.items() if isinstance(v, int) and not isinstance(v, bool)}
    for key in int_keys & merged.keys():
        if isinstance(merged[key], float):
            merged[key] = int(merged[key])
    return merged


def write_params(path: str | os.PathLike, profile: str = "default",
                 **overrides: Any) -> Path:
    """Write a profile's parameters with ``overrides`` applied (and validated) to a YAML file.

    For ``--params FILE`` / ``params_file``: e.g. the smoke profile with its own
    ``figures_dir``, as the determinism test and ``make bench`` run it. Every key is written,
    so the file does not depend on the profile files staying the same.
    """
    values = load_params(profile, overrides=overrides)
    path = Path(path)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


# What papermill can inject (``-p`` gives str, int, float, bool or None; ``-y``/``-f`` YAML gives
# lists and mappings of them): only globals holding one of these can be parameters.
INJECTABLE_TYPES = (str, int, float, bool, type(None), list, tuple, dict)
# The global names each namespace held when notebook_params first succeeded in it, by id(namespace);
# the namespace itself is kept too, so that its id cannot be reused by another (a kernel has one).
_SEEN_NAMES: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}
_SEEN_MAX = 16


def _is_resolved_params(value: Any, known: Mapping[str, Any]) -> bool:
    """A dict holding every known key: a parameter dict that notebook_params returned (``P``)."""
    return isinstance(value, dict) and set(known) <= set(value)


def check_exact_keys(values: Mapping[str, Any], doc: Mapping[str, str], where: str,
                     noun: str, listing: str) -> None:
    """Refuse a mapping whose keys are not exactly ``doc``'s (a recipe, a family's
    hyper-parameters): one ParameterError naming what is missing and what is unknown, then
    ``(<listing>: key = what it means, …)``. ``noun`` names the keys (``keys``,
    ``hyper-parameters``)."""
    missing, unknown = sorted(set(doc) - set(values)), sorted(set(values) - set(doc))
    if missing or unknown:
        raise ParameterError(f"{where}: " + "; ".join(
            p for p in (f"missing {noun} {missing}" if missing else "",
                        f"unknown {noun} {unknown}" if unknown else "") if p)
            + f" ({listing}: {', '.join(f'{k} = {v}' for k, v in doc.items())})")


def notebook_params(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve a notebook's parameters from its global namespace.

    Call it in the cell after the ``parameters`` cell (and papermill's injected cell). It reads
    ``profile`` (and optional ``params_file``), takes every known key that papermill injected as
    an override, and rejects any other injected name, so ``-p encodr ...`` fails loudly.

    Which globals count (so that re-running the setup cell by hand works, docs/lab.md):

    * papermill injects plain values only (:data:`INJECTABLE_TYPES`), so a global holding
      anything else — a module, function, class, numpy array, DataFrame, a ``Study`` — is
      never a parameter, known name or not (notebook 00's array ``test`` is not the ``test``
      spec);
    * a dict holding every known key is a resolved parameter dict (``P`` of an earlier run of
      the cell) and is skipped;
    * a known key holding a plain value is an override (also one typed into the parameters
      cell by hand);
    * an unknown name holding a plain value is an error (``-p tokn mean``), unless it was first
      defined after notebook_params first succeeded in this namespace: papermill injects before
      that first call, so such a name (``FLAG``, ``m``, …) comes from the notebook's own cells.
      The names seen at the first successful call are remembered for that namespace object (a copy of
      it starts afresh). A typo typed into the parameters cell after the first run is
      therefore not caught: restart the kernel to have it checked.
    """
    known = schema()
    profile = namespace.get("profile", "default")
    params_file = namespace.get("params_file")
    entry = _SEEN_NAMES.get(id(namespace))
    seen = entry[1] if entry is not None and entry[0] is namespace else None
    overrides, unknown = {}, []
    for name, value in namespace.items():
        if name.startswith("_") or name in _IPYTHON_NAMES or name in NOTEBOOK_CONTROL_KEYS:
            continue
        if not isinstance(value, INJECTABLE_TYPES) or _is_resolved_params(value, known):
            continue
        if name in known:
            overrides[name] = value
        elif seen is None or name in seen:
            unknown.append(name)
    if unknown:
        check_keys({unknown[0]: None}, known, "notebook parameters")
    params = load_params(profile, path=params_file, overrides=overrides)
    check_cells_fit(params)          # before the notebook's first expensive cell
    params = away_from_committed_figures(params)
    if seen is None:                 # the first success in this namespace: what papermill injected
        _SEEN_NAMES.pop(id(namespace), None)
        while len(_SEEN_NAMES) >= _SEEN_MAX:
            _SEEN_NAMES.pop(next(iter(_SEEN_NAMES)))
        _SEEN_NAMES[id(namespace)] = (namespace, frozenset(namespace))
    return params


# Keys that never change a number (docs/reproducibility.md: threads and workers), so a run that
# changes only these is still on its profile; every other key is part of what a figure shows.
NUMBER_NEUTRAL_KEYS = ("figures_dir", "torch_threads", "zoo_workers")
# Where a run off its profile writes when it names no figures_dir of its own (docs/tweaking.md).
OFF_PROFILE_ROOT = "out"


def off_profile_keys(params: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ from the profile that ``params["profile"]`` names (sorted);
    empty for a run on its profile, and for a profile that is not one of :data:`PROFILES`."""
    if params.get("profile") not in PROFILES:
        return []
    return _changed_keys(params, load_params(params["profile"]))


def _changed_keys(params: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in params if k not in NUMBER_NEUTRAL_KEYS and params[k] != base.get(k))


def away_from_committed_figures(params: dict[str, Any]) -> dict[str, Any]:
    """A run off its profile never writes the profile's own ``figures_dir`` (the committed
    ``figures/`` for ``default``): if any key differs from the profile (:func:`off_profile_keys`)
    while ``figures_dir`` is still the profile's, it becomes ``out/<profile>-<key>-<value>…``
    (one folder per change, the name cut to 60 characters plus a hash when long) and a line says
    so. A ``figures_dir`` of your own is kept. Returns ``params`` (changed in place)."""
    if params.get("profile") not in PROFILES:
        return params
    base = load_params(params["profile"])
    changed = _changed_keys(params, base)
    if not changed or params["figures_dir"] != base["figures_dir"]:
        return params
    slug = "-".join(f"{k}-{params[k]}" for k in changed)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", slug)
    if len(slug) > 60:
        digest = hashlib.sha256(repr([(k, params[k]) for k in changed]).encode()).hexdigest()[:8]
        slug = f"{slug[:51]}-{digest}"
    params["figures_dir"] = f"{OFF_PROFILE_ROOT}/{params['profile']}-{slug}"
    print(f"memlib: {', '.join(changed)} off the {params['profile']} profile: writing to "
          f"{params['figures_dir']}/, not {base['figures_dir']}/ "
          f"(set figures_dir to choose; docs/tweaking.md)")
    return params


# Sizes the notebooks fit cells on (T) and score (generated sets), by profile key; the arithmetic
# of check_cells_fit (docs/tweaking.md#values-known-not-to-work).
T_SIZE_KEYS = ("control_n_train", "own_reference_n")        # + gradient_sizes when gradients run
M_SIZE_KEYS = ("copy_m", "control_m", "mixture_m", "zoo_n_samples", "gradient_n_samples",
               "sensitivity_m")


def check_cells_fit(params: Mapping[str, Any]) -> None:
    """Refuse, before any expensive cell, a cell count that the profile's own set sizes make
    impossible: k-means cannot fit ``n_cells`` cells on a T of fewer points, and no cell can be
    kept (it needs more than :data:`memlib.ct.MIN_CELL_POINTS` generated points) in a generated
    set of at most that many. Data-dependent failures (a cell without test points, cells too
    small on one layer) are only known after embedding; docs/tweaking.md lists the measured ones.
    Raises ParameterError naming the keys to change."""
    from .ct import MIN_CELL_POINTS

    k = int(params["n_cells"])
    t_sizes = {key: int(params[key]) for key in T_SIZE_KEYS}
    if params.get("gradient_families"):
        t_sizes["gradient_sizes"] = min(int(v) for v in params["gradient_sizes"])
    small_t = {key: v for key, v in t_sizes.items() if v < k}
    if small_t:
        named = ", ".join(f"{key} = {v}" for key, v in small_t.items())
        raise ParameterError(f"n_cells = {k} cannot be fitted: a T of {named} point(s) has fewer "
                             f"points than cells; use n_cells <= {min(small_t.values())} or larger sets "
                             f"(docs/tweaking.md)")
    small_m = {key: int(params[key]) for key in M_SIZE_KEYS if int(params[key]) <= MIN_CELL_POINTS}
    if small_m:
        named = ", ".join(f"{key} = {v}" for key, v in small_m.items())
        raise ParameterError(f"{named}: a generated set of at most {MIN_CELL_POINTS} points keeps no "
                             f"cell (each needs more than {MIN_CELL_POINTS}, memlib.ct.MIN_CELL_POINTS), "
                             f"so C_T is undefined; use more samples (docs/tweaking.md)")
