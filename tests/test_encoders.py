"""Encoders: the converted offline weights reproduce the ONNX graph; controls; registry errors."""
import numpy as np
import pytest
import torch

from memlib.encoders import build_encoder, compute_precision, offline_onnx_path, resample_pos_embed
from memlib.errors import EncoderError


@pytest.fixture(scope="module")
def onnx_blocks():
    """Per-block residual stream of the original ONNX graph (onnxruntime) on 4 random inputs."""
    import onnx
    import onnx.helper as h
    import onnxruntime as ort
    model = onnx.load(str(offline_onnx_path()))
    names = [f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in range(12)]
    for n in names:
        model.graph.output.append(h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(4, 3, 224, 224)).astype(np.float32)
    return x, sess.run(names, {"input_image": x})


def test_offline_weights_match_onnx_graph(cache_dir, onnx_blocks):
    x, reference = onnx_blocks
    enc = build_encoder("dinov2-s-offline", 224, device="cpu", precision="float32")   # the exact path
    ours = enc.block_outputs(torch.from_numpy(x))
    assert len(ours) == 12
    for layer, (a, b) in enumerate(zip(ours, reference)):
        diff = np.abs(a.numpy() - b).max()
        assert diff <= 1e-4 * max(1.0, np.abs(b).max() / 10), f"block {layer + 1}: max |Δ| {diff}"


def test_pos_embed_resampling_is_plain_bicubic():
    pos = torch.randn(1, 1 + 37 * 37, 8)
    out = resample_pos_embed(pos, 8)
    assert out.shape == (1, 65, 8)
    assert torch.equal(out[:, 0], pos[:, 0])
    grid = pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    aa = torch.nn.functional.interpolate(grid, size=(8, 8), mode="bicubic", antialias=True)
    assert not torch.allclose(out[:, 1:], aa.permute(0, 2, 3, 1).reshape(1, 64, 8))


def test_features_do_not_depend_on_batch_size(cache_dir, fmnist_small):
    enc = build_encoder("dinov2-s-offline", 56, device="cpu", precision="float32")
    images = fmnist_small.images[:12]
    whole = enc.layer_tokens(images)
    parts = [enc.layer_tokens(images[i:i + 5]) for i in range(0, 12, 5)]
    for tok in ("cls", "mean"):
        for layer in range(12):
            joined = np.concatenate([p[tok][layer] for p in parts])
            np.testing.assert_allclose(joined, whole[tok][layer], rtol=1e-4, atol=1e-4)


def test_controls_differ_from_pretrained_and_are_deterministic(cache_dir, fmnist_small):
    images = fmnist_small.images[:4]
    build = lambda name: build_encoder(name, 56, "cpu", precision="float32")   # exact: equal weights, equal features
    base = build("dinov2-s-offline").layer_tokens(images)["cls"][-1]
    for suffix in ("+shuffled", "+random"):
        a = build("dinov2-s-offline" + suffix).layer_tokens(images)["cls"][-1]
        b = build("dinov2-s-offline" + suffix).layer_tokens(images)["cls"][-1]
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - base).max() > 0.1


def test_random_control_has_mixing_blocks():
    enc = build_encoder("timm:vit_tiny_patch16_224+random", 32, "cpu")
    gammas = [m.gamma for m in enc.model.modules() if hasattr(m, "gamma")]
    assert all(torch.all(g == 1) for g in gammas)


def test_shuffled_keeps_weight_multiset(cache_dir):
    a = build_encoder("dinov2-s-offline", 56, "cpu").model.state_dict()
    b = build_encoder("dinov2-s-offline+shuffled", 56, "cpu").model.state_dict()
    for key in ("blocks.3.attn.qkv.weight", "blocks.0.ls1.gamma"):
        assert not torch.equal(a[key], b[key])
        assert torch.equal(a[key].flatten().sort().values, b[key].flatten().sort().values)


@pytest.mark.parametrize("name, message", [
    ("clip-vit", "unknown encoder"),
    ("timm:not_a_model_xyz", "no model"),
    ("timm:resnet18+random", "not a VisionTransformer"),
])
def test_bad_encoder_names(name, message):
    with pytest.raises(EncoderError, match=message):
        build_encoder(name, 32, "cpu")


def test_image_size_must_fit_patch():
    with pytest.raises(EncoderError, match="multiple"):
        build_encoder("timm:vit_tiny_patch16_224+random", 40, "cpu")


def test_offline_download_is_explained(monkeypatch):
    import huggingface_hub.constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EncoderError, match="Offline|offline"):
        build_encoder("timm:vit_tiny_patch16_224", 32, "cpu")


@pytest.mark.parametrize("native, device, requested, computed", [
    (False, "cpu", "auto", "float32"), (True, "cpu", "auto", "bfloat16-autocast"),
    (True, "cpu", "float32", "float32"), (False, "cpu", "bfloat16", "bfloat16-autocast"),
    (False, "cuda", "auto", "bfloat16-autocast"), (True, "cuda", "float32", "float32"),
    (False, "cuda:1", "bfloat16", "bfloat16-autocast"),
])
def test_compute_precision(native, device, requested, computed, monkeypatch):
    import memlib.encoders as encoders
    monkeypatch.setattr(encoders, "native_bf16_cpu", lambda flags=None: native)
    assert compute_precision(device, requested) == computed


@pytest.mark.parametrize("flags, native", [
    ({"avx2", "avx512f", "avx512_bf16"}, True),          # AMD Zen 4 / Intel Cooper Lake
    ({"avx512f", "amx_tile", "amx_bf16"}, True),         # Intel Sapphire Rapids
    ({"avx2", "avx512f", "avx512_vnni"}, False),         # no bf16 dot products
    (set(), False),                                      # no /proc/cpuinfo
])
def test_native_bf16_cpu_reads_the_flags(flags, native):
    from memlib.encoders import native_bf16_cpu
    assert native_bf16_cpu(frozenset(flags)) is native


@pytest.mark.parametrize("value, native", [("0", False), ("1", True)])
def test_native_bf16_env_takes_the_other_cpu_kinds_path(value, native, monkeypatch):
    """MEMLIB_NATIVE_BF16 (what `make test-float32` sets) wins over /proc/cpuinfo for auto,
    never over an explicit precision or explicit flags."""
    from memlib.encoders import native_bf16_cpu
    monkeypatch.setenv("MEMLIB_NATIVE_BF16", value)
    assert native_bf16_cpu() is native
    assert compute_precision("cpu", "auto") == ("bfloat16-autocast" if native else "float32")
    assert compute_precision("cpu", "float32") == "float32"
    assert native_bf16_cpu(frozenset({"avx512_bf16"})) is True


def test_bad_native_bf16_env_is_one_clear_error(monkeypatch):
    from memlib.encoders import native_bf16_cpu
    monkeypatch.setenv("MEMLIB_NATIVE_BF16", "yes")
    with pytest.raises(EncoderError, match="MEMLIB_NATIVE_BF16 must be 0 or 1"):
        native_bf16_cpu()


@pytest.mark.parametrize("bad", ["bf16", "fp16", "float16", "", None])
def test_bad_precision_is_rejected_before_building(bad, monkeypatch):
    import memlib.encoders as encoders
    monkeypatch.setattr(encoders, "_build_offline", lambda *a, **k: pytest.fail("built a model"))
    with pytest.raises(EncoderError, match="precision must be one of auto, float32, bfloat16"):
        build_encoder("dinov2-s-offline", 56, "cpu", precision=bad)
    with pytest.raises(EncoderError, match="precision must be one of"):
        compute_precision("cpu", bad)


def test_bfloat16_autocast_on_cpu_stays_close_to_float32(cache_dir, fmnist_small):
    """The GPU path's arithmetic (bf16 autocast), run on the CPU: the same features to ~1 %."""
    images = fmnist_small.images[:8]
    f32 = build_encoder("dinov2-s-offline", 56, "cpu", precision="float32")
    bf16 = build_encoder("dinov2-s-offline", 56, "cpu", precision="bfloat16")
    assert (f32.precision, bf16.precision) == ("float32", "bfloat16-autocast")
    a, b = f32.layer_tokens(images), bf16.layer_tokens(images)
    for tok in ("cls", "mean"):
        for layer in range(12):
            x, y = a[tok][layer], b[tok][layer]
            assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
            rel = np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1)
            cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
            assert 1e-4 < rel.max() < 0.05, (tok, layer, rel.max())   # rounded, but not far
            assert cos.min() > 0.999, (tok, layer, cos.min())
