"""The projected store (memlib.projected): C_T, curves and attribution from it equal the full
features' (bit for bit in float32), its sizes, and its keys."""
from __future__ import annotations

import numpy as np
import pytest

import memlib.ct_inputs
import memlib.features
import memlib.projected
from memlib import fingerprint
from memlib.ct import fit_reference
from memlib.data import load_images
from memlib.encoders import build_encoder
from memlib.errors import CacheError, InputError
from memlib.features import embed
from memlib.projected import bytes_per_image, embed_projected, fit_basis, project

TINY = "timm:vit_tiny_patch16_224+random"      # 12 blocks × 192-d, random weights


@pytest.fixture(scope="module")
def sets():
    train = load_images("fashion-mnist:train[:200]")
    test = load_images("fashion-mnist:test[:120]")
    gens = [load_images("fashion-mnist:train[:90]", name="copies"),          # copies of T
            load_images("fashion-mnist:test[200:290]", name="fresh")]
    return train, test, gens


@pytest.fixture(scope="module")
def encoder():
    return build_encoder(TINY, 32, "cpu", precision="float32")   # compared bit for bit: never bf16


LAYERS = (0, 5, 11)     # the engine is run on three of the twelve layers (time)


@pytest.fixture(scope="module")
def stores(sets, encoder, tmp_path_factory):
    """Full and projected (float32, float16) features of the sets, with row blocks of 64
    instead of 8,192 so that these small sets span several chunks."""
    with pytest.MonkeyPatch.context() as mp:
        for module in (memlib.ct_inputs, memlib.features, memlib.projected):
            mp.setattr(module, "CHUNK_ROWS", 64)
        root = tmp_path_factory.mktemp("projected")
        return {dtype: _full_and_projected(root, sets, encoder, dtype)
                for dtype in ("float32", "float16")}, root


def _full_and_projected(root, sets, encoder, dtype):
    """(T, P, [Q]) full features, the same projected (T from its full entry, P and Q straight
    from the images into a cache without full entries), and the basis."""
    train, test, gens = sets
    kw = dict(image_size=32, batch_size=16, cache_dir=root, progress=False)
    t_full = embed(train, encoder, **kw)
    p_full = embed(test, encoder, **kw)
    q_full = [embed(g, encoder, **kw) for g in gens]
    basis = fit_basis(t_full, pca_dim=64, cache_dir=root, progress=False)
    t_proj = project(t_full, basis, dtype=dtype, cache_dir=root, progress=False)
    other = root / "only-projected"
    p_proj = embed_projected(test, encoder, basis, dtype=dtype, **{**kw, "cache_dir": other})
    q_proj = [embed_projected(g, encoder, basis, dtype=dtype, **{**kw, "cache_dir": other})
              for g in gens]
    assert not (other / "features").exists()
    return (t_full, p_full, q_full), (t_proj, p_proj, q_proj), basis


def _layers(feats):
    return [feats.layers[l] for l in LAYERS]


def test_float32_store_gives_identical_ct_curves_and_attribution(stores):
    full, proj, basis = stores[0]["float32"]
    assert proj[0].dim == 64 and len(proj[0]) == 12 and proj[1].n == 120
    with pytest.MonkeyPatch.context() as mp:   # the engine's row blocks as when the store was made
        mp.setattr(memlib.ct_inputs, "CHUNK_ROWS", 64)
        ref_full = fit_reference(_layers(full[0]), _layers(full[1]), pca_dim=64)
        ref_proj = fit_reference(_layers(proj[0]), _layers(proj[1]), pca_dim=64)
        curves_full = ref_full.curves([_layers(q) for q in full[2]])
        curves_proj = ref_proj.curves([_layers(q) for q in proj[2]])
        d_full = ref_full.layer_distances(_layers(full[2][0]))
        d_proj = ref_proj.layer_distances(_layers(proj[2][0]))
        boot_full = ref_full.curve_bootstrap(_layers(full[2][1]), n_boot=20, seed=1)
        boot_proj = ref_proj.curve_bootstrap(_layers(proj[2][1]), n_boot=20, seed=1)
    assert np.isfinite(curves_full).all()
    assert curves_full[0].mean() < -2 < curves_full[1].mean() + 4   # copies far below fresh
    np.testing.assert_array_equal(curves_proj, curves_full)
    np.testing.assert_array_equal(d_proj.dist, d_full.dist)
    np.testing.assert_array_equal(d_proj.cells, d_full.cells)
    for a, b in zip(boot_full, boot_proj):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    labels = np.array(["copy", "fresh"])
    a_full = fingerprint.attribute(curves_full, curves_full, labels)
    a_proj = fingerprint.attribute(curves_proj, curves_proj, labels)
    assert list(a_full.labels) == list(a_proj.labels) == ["copy", "fresh"]
    np.testing.assert_array_equal(a_full.distances, a_proj.distances)


def test_float16_store_is_close(stores):
    full, proj, _ = stores[0]["float16"]
    assert proj[1].layers[0].dtype == np.float16
    curves_full = fit_reference(_layers(full[0]), _layers(full[1])).curves(
        [_layers(q) for q in full[2]])
    curves_proj = fit_reference(_layers(proj[0]), _layers(proj[1])).curves(
        [_layers(q) for q in proj[2]])
    # float16 rounding of the projections (relative 2^-11) moves C_T by a hair, against
    # curves of the two sets that are several units apart at every layer
    assert np.abs(curves_proj - curves_full).max() < 0.05
    assert np.abs(curves_full[0] - curves_full[1]).min() > 1


def test_sizes_on_disk_match_bytes_per_image(stores):
    full, proj, _ = stores[0]["float16"]
    n = full[1].n

    def data_bytes(feats, tokens):
        entry = feats.layers.paths[0].parent.parent
        return sum(np.load(p, mmap_mode="r").nbytes for tok in tokens
                   for p in (entry / tok).glob("*.npy"))

    assert data_bytes(full[1], ("cls", "mean")) == n * bytes_per_image(12, 192)
    assert data_bytes(proj[1], ("cls",)) == n * bytes_per_image(12, 192, pca_dim=64)
    assert bytes_per_image(24, 1024) == 98304 and bytes_per_image(12, 384) == 18432
    assert bytes_per_image(24, 1024, pca_dim=64) == 3072
    assert bytes_per_image(24, 1024, pca_dim=64, dtype="float32") == 6144
    assert bytes_per_image(12, 384, pca_dim=64) == 1536


def test_basis_is_keyed_by_reference_token_and_dim(stores, sets, encoder):
    (t, p, _), _, b64 = stores[0]["float32"]
    root = stores[1]
    assert fit_basis(t, pca_dim=64, cache_dir=root, progress=False).key == b64.key
    assert fit_basis(t, pca_dim=32, cache_dir=root, progress=False).key != b64.key
    assert fit_basis(p, pca_dim=64, cache_dir=root, progress=False).key != b64.key
    t_mean = embed(sets[0], encoder, token="mean", image_size=32, batch_size=16, cache_dir=root,
                   progress=False)
    assert fit_basis(t_mean, pca_dim=64, cache_dir=root, progress=False).key != b64.key
    with pytest.raises(InputError, match="not below"):
        fit_basis(t, pca_dim=192, cache_dir=root)
    with pytest.raises(InputError, match="token"):
        project(t_mean, b64, cache_dir=root)
    with pytest.raises(InputError, match="dtype"):
        project(t, b64, dtype="int8", cache_dir=root)


def test_partial_entry_with_other_settings_is_refused(tmp_path, sets, encoder):
    """An unfinished entry started with another chunk size is refused, never mixed."""
    from memlib.features import embed_shard
    train = sets[0]
    kw = dict(image_size=32, batch_size=16, cache_dir=tmp_path, progress=False)
    assert embed_shard(train, encoder, (0, 2), chunk_rows=64, **kw) is False
    with pytest.raises(CacheError, match="other settings"):
        embed(train, encoder, chunk_rows=32, **kw)
    assert embed(train, encoder, chunk_rows=64, **kw).n == 200
