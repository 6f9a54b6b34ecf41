"""The feature cache: keys cover every parameter, writes are atomic, re-runs reuse entries."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from memlib.data import ImageSet, load_images
from memlib.encoders import build_encoder
from memlib.errors import CacheError, InputError
from memlib.features import embed, feature_key, load_features

TINY = "timm:vit_tiny_patch16_224+random"


@pytest.fixture(scope="module")
def tiny_set():
    return load_images("fashion-mnist:test[:40]")


def test_embed_shapes_and_reuse(tmp_path, tiny_set):
    f = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False)
    assert len(f) == 12 and f[0].shape == (40, 192) and f[0].dtype == np.float32
    entries = list((tmp_path / "features").iterdir())
    assert len(entries) == 1
    mtime = (entries[0] / "meta.json").stat().st_mtime_ns
    g = embed(tiny_set, TINY, image_size=32, token="mean", cache_dir=tmp_path, progress=False)
    assert (entries[0] / "meta.json").stat().st_mtime_ns == mtime  # read, not recomputed
    assert not np.array_equal(f[5], g[5])


def test_cached_features_equal_direct_computation(tmp_path, tiny_set):
    """float32, the exact path: batches of 7 from the cache = one pass over all 40 images, to
    float16's rounding (measured: 7e-7 apart before it, on the AMD EPYC)."""
    enc = build_encoder(TINY, 32, "cpu", precision="float32")
    f = embed(tiny_set, enc, image_size=32, cache_dir=tmp_path, batch_size=7, progress=False)
    direct = enc.layer_tokens(tiny_set.images)["cls"]
    for layer in (0, 11):
        np.testing.assert_allclose(f[layer], direct[layer].astype(np.float16), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("batch_size", [7, 40])
def test_bf16_features_lie_within_the_bf16_bound(tmp_path, tiny_set, batch_size):
    """bf16 features, cached at batch size 7 or 40, against float32 in one pass and against
    bf16 in one pass of all 40 (the batch-size dependence seen on the Intel Xeon's AMX), within
    the bound from bf16's 8-bit mantissa and the depth (tests/precision_bounds.py), never
    compared for equality."""
    from precision_bounds import assert_within_bf16_bound
    bf16 = build_encoder(TINY, 32, "cpu", precision="bfloat16")
    f = embed(tiny_set, bf16, image_size=32, cache_dir=tmp_path, batch_size=batch_size, progress=False)
    assert f.meta["precision"] == "bfloat16-autocast" and f.meta["batch_size"] == batch_size
    exact = build_encoder(TINY, 32, "cpu", precision="float32").layer_tokens(tiny_set.images)
    one_pass = bf16.layer_tokens(tiny_set.images)
    for layer in range(12):
        assert_within_bf16_bound(f[layer], exact["cls"][layer], layer)
        assert_within_bf16_bound(f[layer], one_pass["cls"][layer], layer)
    assert np.abs(f[11] - exact["cls"][11]).max() > 0      # bf16 did round


def test_batch_size_is_part_of_the_entry(tmp_path, tiny_set):
    """One entry per batch size (docs/reproducibility.md#batch-size-rule), for both precisions."""
    for precision in ("float32", "bfloat16"):
        keys = {embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, batch_size=b,
                      precision=precision, device="cpu", progress=False).meta["key"] for b in (7, 16, 7)}
        assert len(keys) == 2
    assert len(list((tmp_path / "features").iterdir())) == 4


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_bad_batch_size_fails_before_any_work(tmp_path, tiny_set, bad):
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, batch_size=bad, progress=False)
    assert not (tmp_path / "features").exists()


def test_key_changes_with_every_parameter(tiny_set):
    base = dict(images=tiny_set, encoder_name=TINY, weights_id="w", image_size=32, final_norm=False)
    k0, _ = feature_key(**base)
    other = tiny_set.subset(slice(0, 39))
    changed = [dict(base, images=other), dict(base, encoder_name=TINY + "x"),
               dict(base, weights_id="v"), dict(base, image_size=48), dict(base, final_norm=True),
               dict(base, precision="bfloat16-autocast"),    # a GPU run's features differ
               dict(base, batch_size=7)]                     # so do another batch size's
    keys = {feature_key(**c)[0] for c in changed}
    assert k0 not in keys and len(keys) == len(changed)
    flipped = ImageSet(tiny_set.images.copy(), tiny_set.ids)
    flipped.images[0, 0, 0, 0] ^= 1
    assert feature_key(**dict(base, images=flipped))[0] != k0


def test_cpu_entries_record_their_compute_precision(tmp_path, tiny_set, monkeypatch):
    import memlib.encoders as encoders
    monkeypatch.setattr(encoders, "native_bf16_cpu", lambda flags=None: False)   # auto → float32
    f = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False, device="cpu")
    assert f.meta["precision"] == "float32"
    enc = build_encoder(TINY, 32, "cpu")
    assert enc.precision == "float32"
    g = embed(tiny_set, enc, image_size=32, cache_dir=tmp_path, progress=False)
    assert g.meta["key"] == f.meta["key"]          # the same entry, built or named


def test_bfloat16_gets_its_own_entry(tmp_path, tiny_set):
    f = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False, device="cpu",
              precision="float32")
    g = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False, device="cpu",
              precision="bfloat16")
    assert g.meta["precision"] == "bfloat16-autocast" and g.meta["key"] != f.meta["key"]
    assert len(list((tmp_path / "features").iterdir())) == 2
    h = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False, device="cpu",
              precision="float32")
    assert h.meta["key"] == f.meta["key"]             # the same float32 entry
    assert 0 < np.abs(f[11] - g[11]).max() < 0.1 * np.abs(f[11]).max()


def test_final_norm_changes_features(tmp_path, tiny_set):
    a = embed(tiny_set, TINY, image_size=32, cache_dir=tmp_path, progress=False)
    b = embed(tiny_set, TINY, image_size=32, final_norm=True, cache_dir=tmp_path, progress=False)
    assert np.abs(a[3] - b[3]).max() > 0.1


def test_final_norm_of_cached_cls_equals_embedding_with_the_norm(tmp_path, tiny_set):
    """Encoder.apply_final_norm on the cached raw last-layer CLS token = the final-norm
    embedding's last layer (notebook 04's dgm-eval-style baseline), up to float16 caching."""
    raw = embed(tiny_set, TINY, image_size=32, precision="float32", cache_dir=tmp_path, progress=False)
    normed = embed(tiny_set, TINY, image_size=32, final_norm=True, precision="float32", cache_dir=tmp_path,
                   progress=False)
    enc = build_encoder(TINY, 32, "cpu", precision="float32")
    got = enc.apply_final_norm(raw[len(raw) - 1])
    assert got.shape == normed[len(normed) - 1].shape and got.dtype == np.float32
    np.testing.assert_allclose(got, normed[len(normed) - 1], atol=5e-3)     # measured 1.8e-3 of |x| <= 3.6
    assert np.abs(got - raw[len(raw) - 1]).max() > 0.1          # the norm did something


def test_interrupted_write_leaves_no_entry(tmp_path):
    """SIGKILL a process mid-embedding: no entry is readable, and a re-run completes it."""
    script = textwrap.dedent(f"""
        import sys
        from memlib.data import load_images
        from memlib.features import embed
        s = load_images("fashion-mnist:test[:3000]")
        embed(s, "dinov2-s-offline", image_size=56, cache_dir=sys.argv[1], batch_size=16, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    features = tmp_path / "features"
    deadline = time.time() + 120
    partial = lambda: any(features.glob(".*.partial/cls/layer11.npy"))   # memlib.chunked's layout
    while time.time() < deadline and not partial():
        time.sleep(0.2)
    time.sleep(1.0)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial() and still_running, "the embedding was not caught mid-way"
    assert not any(p for p in features.iterdir() if not p.name.startswith(".")), "a partial entry is visible"
    with pytest.raises(CacheError):
        load_features(next(features.iterdir()))
    s = load_images("fashion-mnist:test[:64]")
    f = embed(s, TINY, image_size=32, cache_dir=tmp_path, progress=False)
    assert f[0].shape == (64, 192)


def test_unwritable_cache_is_explained(tmp_path, tiny_set):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")  # a file where the cache folder should be: fails even for root
        cache = blocker / "cache"
    else:
        cache = tmp_path / "ro"
        cache.mkdir(mode=0o500)
    with pytest.raises(CacheError, match="MEMLIB_CACHE"):
        embed(tiny_set, TINY, image_size=32, cache_dir=cache, progress=False)


def test_bad_token(tmp_path, tiny_set):
    with pytest.raises(InputError, match="token"):
        embed(tiny_set, TINY, image_size=32, token="avg", cache_dir=tmp_path)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_determinism_across_processes(tmp_path, precision):
    """Two processes embed the same images at the same batch size: float32 byte-identical;
    bf16 within its bound (tests/precision_bounds.py) and never compared for equality."""
    from precision_bounds import assert_within_bf16_bound
    script = ("import sys, numpy as np; from memlib.data import load_images; from memlib.features import embed;"
              "f = embed(load_images('fashion-mnist:test[:16]'), 'dinov2-s-offline', image_size=56,"
              f" precision={precision!r}, cache_dir=sys.argv[1], progress=False); np.save(sys.argv[2], f[11])")
    for i in range(2):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / f"c{i}"), str(tmp_path / f"{i}.npy")],
                       check=True)
    a, b = np.load(tmp_path / "0.npy"), np.load(tmp_path / "1.npy")
    if precision == "float32":
        assert np.array_equal(a, b)
    else:
        assert_within_bf16_bound(a, b, layer=11)
