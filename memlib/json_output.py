"""``--json`` of the command line: one JSON document on stdout.

Every document holds ``command``, ``memlib_version``, ``provenance`` (what computed the
features: encoder, weights id, forward-pass precision, device, image size, token, final norm)
and ``settings``, then the command's numbers. NaN (an undefined C_T) is written as ``null``;
numpy scalars and arrays become plain numbers and lists. docs/api.md#json-output shows one.
"""
from __future__ import annotations

import json
import math
from typing import Any

from .version import memlib_version


def provenance(settings: dict[str, Any]) -> dict[str, Any]:
    """What computes the features under the CLI's encoder ``settings`` (keys ``encoder``,
    ``image_size``, ``token``, ``final_norm``, ``device``, ``precision``): the precision as
    computed on this machine (``float32`` or ``bfloat16-autocast``; None for raw pixels)."""
    from .encoders import compute_precision, pick_device, weights_id

    if settings["encoder"] == "pixels":
        return dict(encoder="pixels", weights_id="none", precision=None, device="cpu",
                    image_size=None, token=None, final_norm=None)
    device = pick_device(settings["device"])
    return dict(encoder=settings["encoder"], weights_id=weights_id(settings["encoder"]),
                precision=compute_precision(device, settings["precision"]), device=str(device),
                image_size=int(settings["image_size"]), token=settings["token"],
                final_norm=bool(settings["final_norm"]))


def document(command: str, encoder_settings: dict[str, Any], /, **content: Any) -> dict[str, Any]:
    """The document of one command: header fields, ``content`` (e.g. ``settings``, the numbers)
    and the :func:`provenance` of ``encoder_settings``."""
    return {"command": command, "memlib_version": memlib_version(), **content,
            "provenance": provenance(encoder_settings)}


def plain(value: Any) -> Any:
    """``value`` with numpy types as Python ones, NaN/inf as None, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return plain(value.item())
    return value


def dumps(doc: dict[str, Any]) -> str:
    """The document as strict JSON (``allow_nan=False``: NaN is already None)."""
    return json.dumps(plain(doc), indent=2, allow_nan=False)


def records(table) -> list[dict[str, Any]]:
    """A pandas DataFrame as a list of row dicts (NaN as None)."""
    return plain(table.to_dict(orient="records"))
