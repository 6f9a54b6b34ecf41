"""Where memlib finds its own files: the profiles, the cache, and (only for the notebook
runner) the source checkout.

memlib works the same from an installed wheel and from this repository's checkout:

- The profiles ``default``, ``smoke`` and ``full`` are package data, ``memlib/profiles/*.yaml``
  (the repository's ``params/`` is a symbolic link to that folder: one copy of each file).
  :func:`profiles_dir` finds them for both.
- The cache (features, zoo, converted weights) is ``$MEMLIB_CACHE``; without it, the
  checkout's ``.cache/memlib`` when memlib is imported from a checkout (what ``make`` uses),
  else the user's cache folder (``$XDG_CACHE_HOME/memlib`` or ``~/.cache/memlib``).
- :func:`checkout_root` is the only function that looks above the package. Besides the cache
  default, only the notebook runner (:mod:`memlib.notebooks`, ``make figures``) uses it:
  every other path is an argument or relative to the current folder (docs/api.md).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def profiles_dir() -> Path:
    """``$MEMLIB_PARAMS_DIR`` or the package's ``profiles/`` folder (wheel and checkout alike)."""
    override = os.environ.get("MEMLIB_PARAMS_DIR")
    return Path(override) if override else PACKAGE_DIR / "profiles"


def checkout_root() -> Path | None:
    """The repository checkout memlib is imported from, or None for an installed wheel.

    A checkout is the folder above the package that holds ``pyproject.toml`` and
    ``notebooks/`` (an installed package sits in ``site-packages``, which holds neither).
    """
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def cache_root() -> Path:
    """``$MEMLIB_CACHE``, else ``<checkout>/.cache/memlib`` in a checkout, else
    ``$XDG_CACHE_HOME/memlib`` (default ``~/.cache/memlib``); always absolute."""
    if os.environ.get("MEMLIB_CACHE"):
        return Path(os.environ["MEMLIB_CACHE"]).absolute()
    root = checkout_root()
    if root is not None:
        return (root / ".cache" / "memlib").absolute()
    user = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(user) / "memlib").absolute()
