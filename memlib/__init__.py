"""memlib: layer-wise data-copying (C_T) scores of ViT embeddings.

The public functions (docs/api.md has an example)::

    import memlib
    curve = memlib.ct_curve("train/", "test/", "samples.npz")   # (L,) C_T per layer
    ref = memlib.fit_reference(train, test)                      # a fitted memlib.ct.Reference
    feats = memlib.embed(images)                                 # per-layer features
    copies = memlib.find_copies(gen, train, test)                # nearest training image per layer
    report = memlib.attribute(gen, memlib.load_database("db/"))  # which known model made gen
    params = memlib.load_params("default")                       # a profile's settings

Imports are lazy: ``import memlib`` loads neither numpy nor torch; the first use of a function
loads what it needs.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "load_params": "memlib.api", "load_images": "memlib.api", "embed": "memlib.api",
    "fit_reference": "memlib.api", "ct_curve": "memlib.api", "find_copies": "memlib.api",
    "load_database": "memlib.api", "attribute": "memlib.api",
    "Reference": "memlib.ct", "LayerFeatures": "memlib.features", "ImageSet": "memlib.data",
    "Database": "memlib.fingerprint_db", "AttributionReport": "memlib.fingerprint_db",
    "CopyReport": "memlib.copy_report", "MemlibError": "memlib.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from .version import memlib_version
        return memlib_version()
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'memlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
