"""Training recipes: one architecture trained with other hyper-parameters (Study v3, claims 3–4).

A *recipe* is a named set of overrides of an architecture's ``zoo_hparams`` (absolute values,
e.g. ``{steps: 600}`` for half of 1,200 steps, ``{lr: 0.004}``, ``{batch: 128}``, for diffusion
``{sample_steps: 8}``), given in the profile as ``zoo_recipes: {architecture: {name: {hparam:
value}}}``. Today's models are the recipe ``default`` (no overrides). A recipe model is the zoo
variant ``recipe-<name>`` (:func:`recipe_variant`): it trains on the *same* seed windows as the
default recipe (:func:`memlib.zoo.seed_train_spec`; seed s of every recipe trains on seed s's
window), so a default model and a recipe model of one seed differ only by the recipe; folds
that hold a seed out therefore keep every recipe of that seed out of the references
(docs/design.md, "Study v3 groundwork: claims 3–4"). The recipe is part of the cache key of a
recipe model; the key of a default model is unchanged (:func:`memlib.zoo.cache_folder`).
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import ParameterError

DEFAULT_RECIPE = "default"
RECIPE_PREFIX = "recipe-"
_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")


def recipe_variant(name: str) -> str:
    """The zoo variant of recipe ``name``: ``standard`` for ``default``, else ``recipe-<name>``."""
    if name == DEFAULT_RECIPE:
        return "standard"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(f"recipe name {name!r}: use lower-case letters, digits, '.' and '-' "
                             f"(e.g. half-steps, lr-x2, sampler-8)")
    return RECIPE_PREFIX + name


def recipe_of(variant: str) -> str:
    """The recipe of a zoo variant: ``<name>`` for ``recipe-<name>``, ``default`` for every other
    variant (``standard``, ``memorize`` and ``n<size>`` keep their own, older overrides)."""
    return variant[len(RECIPE_PREFIX):] if is_recipe_variant(variant) else DEFAULT_RECIPE


def is_recipe_variant(variant: str) -> bool:
    """True for ``recipe-<name>`` variants."""
    return isinstance(variant, str) and variant.startswith(RECIPE_PREFIX) and \
        bool(_NAME.fullmatch(variant[len(RECIPE_PREFIX):]))


def recipe_table(params: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``params["zoo_recipes"]`` checked: {architecture: {recipe: {hparam: value}}}; every
    architecture has ``zoo_hparams``, every name is valid and not ``default``, every override
    names one of the architecture's hyper-parameters and changes its value (a recipe equal to
    the default would be the same model under another key). Missing or null key: {}."""
    table = params.get("zoo_recipes") or {}
    if not isinstance(table, dict):
        raise ParameterError(f"zoo_recipes must be a mapping architecture -> recipe -> overrides, "
                             f"got {type(table).__name__}")
    base_table = params["zoo_hparams"] or {}
    out = {}
    for arch, recipes in table.items():
        if arch not in base_table:
            raise ParameterError(f"zoo_recipes: architecture {arch!r} has no zoo_hparams entry")
        if not isinstance(recipes, dict) or not recipes:
            raise ParameterError(f"zoo_recipes[{arch!r}] must be a non-empty mapping recipe -> overrides")
        base = base_table[arch]
        out[arch] = {}
        for name, overrides in recipes.items():
            if name == DEFAULT_RECIPE:
                raise ParameterError(f"zoo_recipes[{arch!r}]: 'default' is today's zoo_hparams; "
                                     f"give the other recipes only")
            recipe_variant(name)
            if not isinstance(overrides, dict) or not overrides:
                raise ParameterError(f"zoo_recipes[{arch!r}][{name!r}] must be a non-empty mapping "
                                     f"hparam -> value")
            unknown = sorted(set(overrides) - set(base))
            if unknown:
                raise ParameterError(f"zoo_recipes[{arch!r}][{name!r}]: {unknown} are not "
                                     f"hyper-parameters of {arch} ({', '.join(base)})")
            if all(base[k] == v for k, v in overrides.items()):
                raise ParameterError(f"zoo_recipes[{arch!r}][{name!r}] changes nothing: it equals "
                                     f"the default recipe")
            out[arch][name] = dict(overrides)
    return out


def recipe_overrides(architecture: str, variant: str, params: dict[str, Any]) -> dict[str, Any]:
    """The overrides of a ``recipe-<name>`` variant of ``architecture`` ({} for any other
    variant); ParameterError when the profile has no such recipe for that architecture."""
    if not is_recipe_variant(variant):
        return {}
    name = recipe_of(variant)
    known = recipe_table(params).get(architecture, {})
    if name not in known:
        raise ParameterError(f"zoo: architecture {architecture!r} has no recipe {name!r} in zoo_recipes "
                             f"(has: {', '.join(known) or 'none'})")
    return known[name]


def recipe_models(params: dict[str, Any], *, include_default: bool = False) -> list[tuple[str, str, int]]:
    """Every (architecture, ``recipe-<name>``, seed) of ``zoo_recipes``, seeds ``zoo_seeds``
    (the default recipe's windows, :func:`memlib.zoo.check_seed_windows`), in the order
    architecture, recipe, seed. ``include_default``: also each recipe architecture's
    ``standard`` models first (its default recipe), so the list holds every training run a
    cross-recipe study compares. ParameterError for a bad table or an architecture not in
    ``zoo_families`` (the default recipe must be in the zoo too)."""
    from .cache import check_seed_windows, zoo_hparams

    table = recipe_table(params)
    seeds = [int(s) for s in params["zoo_seeds"]]
    out = []
    for arch, recipes in table.items():
        if arch not in params["zoo_families"]:
            raise ParameterError(f"zoo_recipes: {arch!r} is not in zoo_families; its default recipe "
                                 f"must be trained too")
        names = ([DEFAULT_RECIPE] if include_default else []) + list(recipes)
        out += [(arch, recipe_variant(r), s) for r in names for s in seeds]
    for arch, variant, _ in out:
        zoo_hparams(arch, variant, params)  # validates early
    check_seed_windows(params)
    return out
