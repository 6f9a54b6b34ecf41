"""Controlled copies keep what they claim to keep and destroy what they claim to destroy;
corruptions (copies.corrupt) keep shape and dtype and change the pixels as asked."""
import numpy as np
import pytest

from memlib import copies
from memlib.copies import kde_samples, make_copies, mix, mix_plan, mix_rows, pick_sources, tile_shuffle
from memlib.data import load_fashion_mnist
from memlib.errors import InputError, ParameterError


@pytest.fixture(scope="module")
def fmnist():
    train, ytrain = load_fashion_mnist("train")
    test, ytest = load_fashion_mnist("test")
    return train[:3000], ytrain[:3000], test[:300], ytest[:300]


def _corr(a, b):
    """Mean per-image Pearson correlation of pixels (layout similarity)."""
    return float(np.mean([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)]))


def test_exact_equals_sources(fmnist):
    src = fmnist[0][:20]
    out = make_copies("exact", src, strength=0.7, seed=3)
    assert out.dtype == np.uint8 and np.array_equal(out, src) and out is not src


@pytest.mark.parametrize("kind", copies.KINDS)
def test_shape_dtype_determinism(fmnist, kind):
    src = fmnist[0][:20]
    a = make_copies(kind, src, strength=0.5, seed=3)
    assert a.shape == src.shape and a.dtype == np.uint8
    assert np.array_equal(a, make_copies(kind, src, strength=0.5, seed=3))
    if kind != "exact":
        assert not np.array_equal(a, make_copies(kind, src, strength=0.5, seed=4))
    assert np.array_equal(make_copies(kind, src, strength=0.0, seed=3), src)  # strength 0 = identity


@pytest.mark.parametrize("kind", ["low-level", "low-level-phase"])
def test_low_level_keeps_histogram_not_layout(fmnist, kind):
    src = fmnist[0][:200]
    out = make_copies(kind, src, strength=1.0, seed=1)
    for a, b in zip(src, out):
        assert np.array_equal(np.sort(a, axis=None), np.sort(b, axis=None))  # same pixel multiset
    assert _corr(src, out) < 0.5, "layout survived"
    # an unrelated image with the same class mix correlates about as much: the layout is gone
    assert _corr(src, out) < _corr(src, fmnist[0][200:400]) + 0.15


@pytest.mark.parametrize("kind", ["low-level", "low-level-phase"])
def test_low_level_strength_is_a_dose(fmnist, kind):
    src = fmnist[0][:200]
    corr = [_corr(src, make_copies(kind, src, strength=s, seed=1)) for s in (0.1, 0.25, 0.5, 1.0)]
    assert corr == sorted(corr, reverse=True) and corr[0] > 0.8 and corr[-1] < 0.5, corr


def test_tile_grid_is_off_the_token_grid():
    # every pixel value names its source position; no output block on the aligned 7-px grid
    # may equal an aligned source block, because the grid always has a non-zero random offset
    img = np.arange(28 * 28, dtype=np.int32).reshape(1, 28, 28, 1)
    blocks = lambda a: {a[r:r + 7, c:c + 7].tobytes() for r in range(0, 28, 7) for c in range(0, 28, 7)}  # noqa: E731
    for seed in range(20):
        out = tile_shuffle(img, fraction=1.0, tile=7, seed=seed)[0, ..., 0]
        assert np.array_equal(np.sort(out, axis=None), img.ravel())
        assert not blocks(out) & blocks(img[0, ..., 0])


def test_tile_must_divide_the_image(fmnist):
    with pytest.raises(ParameterError, match="divide"):
        make_copies("low-level", fmnist[0][:2], strength=1.0, tile=5)


def test_low_level_works_on_colour_images():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for kind in ("low-level", "low-level-phase", "high-level"):
        out = make_copies(kind, rgb, strength=1.0, seed=0, tile=8)
        assert out.shape == rgb.shape and out.dtype == np.uint8
    out = make_copies("low-level", rgb, strength=1.0, seed=0, tile=8)
    for ch in range(3):
        assert np.array_equal(np.sort(out[0, ..., ch], axis=None), np.sort(rgb[0, ..., ch], axis=None))


@pytest.mark.parametrize("kind", ["high-level", "high-level-affine", "high-level-photo", "high-level-blur"])
def test_high_level_keeps_class(fmnist, kind):
    from sklearn.neighbors import KNeighborsClassifier
    train, ytrain, test, ytest = fmnist
    clf = KNeighborsClassifier(5).fit(train.reshape(len(train), -1), ytrain)
    base = (clf.predict(test.reshape(len(test), -1)) == ytest).mean()
    out = make_copies(kind, test, strength=1.0, seed=0)
    assert (out != test).any(axis=(1, 2)).mean() > 0.9, "most copies must differ from their source"
    acc = (clf.predict(out.reshape(len(out), -1)) == ytest).mean()
    assert acc > 0.5 and acc > base - 0.3, f"class kept only {acc:.2f} of the time (chance 0.10)"


def test_high_level_strength_moves_pixels_more(fmnist):
    src = fmnist[0][:200]
    dist = [np.abs(make_copies("high-level", src, strength=s, seed=0).astype(int) - src).mean()
            for s in (0.25, 0.5, 1.0, 1.5)]
    assert dist == sorted(dist), dist


def test_high_level_components_share_draws():
    p1 = copies.jitter_parameters(50, 1.0, seed=7)
    p2 = copies.jitter_parameters(50, 0.5, seed=7)
    assert np.allclose(p2["angle"], 0.5 * p1["angle"]) and np.allclose(p2["blur"], 0.5 * p1["blur"])


def test_kde_bandwidth(fmnist):
    train = fmnist[0]
    x0, idx = kde_samples(train, sigma=0.0, m=50, seed=0)
    assert np.array_equal(x0, train[idx]) and idx.dtype == np.int64 and 0 <= idx.min() and idx.max() < len(train)
    x1, idx1 = kde_samples(train, sigma=0.1, m=50, seed=0)
    assert np.array_equal(idx, idx1)
    mid = (train[idx1] > 60) & (train[idx1] < 195)  # away from clipping
    diff = (x1.astype(float) - train[idx1])[mid] / 255
    assert 0.08 < diff.std() < 0.12
    x4, _ = kde_samples(train[..., None], sigma=0.1, m=5, seed=0)  # (N, H, W, 1) layout kept
    assert x4.shape == (5, 28, 28, 1)


def test_mix_fraction_and_sources(fmnist):
    cp, fresh = fmnist[0][:100], fmnist[2][:100]
    images, is_copy, src = mix(cp, fresh, 0.25, source_index=np.arange(100) + 1000)
    assert is_copy.sum() == 25 and np.array_equal(images[is_copy], cp[is_copy])
    assert np.array_equal(images[~is_copy], fresh[~is_copy])
    assert src[is_copy].tolist() == (np.flatnonzero(is_copy) + 1000).tolist() and (src[~is_copy] == -1).all()
    for m, rho, k in [(10, 0.25, 3), (10, 0.0, 0), (10, 1.0, 10), (1000, 0.1, 100), (7, 0.5, 4)]:
        assert mix_plan(m, rho).sum() == k
    plans = [mix_plan(200, r) for r in (0.1, 0.25, 0.5, 1.0)]
    assert all((a <= b).all() for a, b in zip(plans, plans[1:]))  # nested in ρ


def test_mix_rows_on_features():
    a, b = np.ones((6, 3)), np.zeros((6, 3))
    out = mix_rows(a, b, mix_plan(6, 0.5))
    assert out.sum(1).tolist() == [3, 3, 3, 0, 0, 0]


def test_pick_sources_distinct_and_seeded():
    s = pick_sources(1000, 200, seed=1)
    assert len(set(s.tolist())) == 200 and np.array_equal(s, pick_sources(1000, 200, seed=1))
    with pytest.raises(InputError):
        pick_sources(10, 20, seed=0)


def test_bad_inputs():
    with pytest.raises(ParameterError, match="kind"):
        make_copies("semantic", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        make_copies("exact", np.zeros((2, 28, 28)))
    with pytest.raises(ParameterError, match="strength"):
        make_copies("high-level", np.zeros((2, 28, 28), np.uint8), strength=-1)
    with pytest.raises(ParameterError, match="ρ"):
        mix(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8), 1.5)
    with pytest.raises(InputError, match="shapes"):
        mix(np.zeros((2, 4, 4), np.uint8), np.zeros((3, 4, 4), np.uint8), 0.5)


# --------------------------------------------------------------------------- corruptions (not copies)


def smooth_images(shape, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[1], : shape[2]] / shape[1]
    out = np.empty(shape, np.uint8)
    for i in range(shape[0]):
        cx, cy = rng.uniform(0.3, 0.7, 2)
        blob = 255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
        out[i] = (blob[..., None] * np.linspace(0.5, 1, shape[3])).astype(np.uint8) \
            if len(shape) == 4 else blob.astype(np.uint8)
    return out


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 32, 32, 3), (3, 28, 28, 1)])
@pytest.mark.parametrize("kind,level", [("jpeg", 30), ("resize", 0.5), ("noise", 10.0)])
def test_corruptions_keep_shape_dtype_and_are_deterministic(shape, kind, level):
    x = smooth_images(shape)
    a, b = copies.corrupt(x, kind, level, seed=1), copies.corrupt(x, kind, level, seed=1)
    assert a.dtype == np.uint8 and a.shape == x.shape
    assert np.array_equal(a, b)
    assert not np.array_equal(a, x)   # it does change the images
    assert np.abs(a.astype(int) - x).mean() < 15


def test_noise_level_and_seed():
    x = np.full((10, 28, 28), 128, np.uint8)
    a = copies.corrupt(x, "noise", 8.0, seed=0)
    assert not np.array_equal(a, copies.corrupt(x, "noise", 8.0, seed=1))
    assert np.std(a.astype(float) - 128) == pytest.approx(8.0, rel=0.05)
    assert np.array_equal(copies.corrupt(x, "noise", 0.0, seed=0), x)


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 32, 32, 3)])
def test_jpeg_100_and_resize_1_are_near_identity(shape):
    x = smooth_images(shape)
    assert np.abs(copies.corrupt(x, "jpeg", 100).astype(int) - x).mean() < 1.0
    assert np.array_equal(copies.corrupt(x, "resize", 1.0), x)
    assert np.abs(copies.corrupt(x, "jpeg", 100).astype(int) - x).mean() < \
        np.abs(copies.corrupt(x, "jpeg", 10).astype(int) - x).mean()


def test_corrupt_rejects_bad_input():
    with pytest.raises(InputError, match="uint8"):
        copies.corrupt(np.zeros((2, 8, 8), np.float32), "noise", 1.0)
    with pytest.raises(InputError, match="unknown corruption"):
        copies.corrupt(np.zeros((2, 8, 8), np.uint8), "blur", 1.0)
    with pytest.raises(InputError, match="quality"):
        copies.corrupt(np.zeros((2, 8, 8), np.uint8), "jpeg", 0)
