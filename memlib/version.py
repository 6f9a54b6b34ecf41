"""memlib's version, as installed (a wheel or an editable checkout); recorded in every JSON
output and fingerprint database manifest."""
from __future__ import annotations


def memlib_version() -> str:
    """The installed distribution's version (pyproject.toml), or ``"unknown"`` when memlib
    runs from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("memlib")
    except PackageNotFoundError:   # pragma: no cover - a bare source tree on PYTHONPATH
        return "unknown"
