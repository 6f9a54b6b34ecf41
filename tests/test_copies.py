"""Controlled copies keep what they claim to keep and destroy what they claim to destroy."""
import numpy as np
import pytest

from memlib.copies import kde_samples, make_copies, mix, tile_shuffle
from memlib.data import load_fashion_mnist
from memlib.errors import InputError


@pytest.fixture(scope="module")
def fmnist():
    train, ytrain = load_fashion_mnist("train")
    test, ytest = load_fashion_mnist("test")
    return train[:3000], ytrain[:3000], test[:300], ytest[:300]


def test_exact_equals_sources(fmnist):
    src = fmnist[0][:20]
    assert np.array_equal(make_copies("exact", src), src)


@pytest.mark.parametrize("strength", [0.25, 0.5, 0.75, 1.0])
def test_low_level_keeps_histogram_not_layout(fmnist, strength):
    src = fmnist[0][:200]
    out = make_copies("low-level", src, strength=strength, seed=1)
    for a, b in zip(src, out):
        assert np.array_equal(np.sort(a, axis=None), np.sort(b, axis=None))
    corr = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(src, out)])
    assert corr < 0.8, f"layout survived (corr {corr:.2f})"


def test_low_level_stronger_destroys_more(fmnist):
    src = fmnist[0][:200]
    corr = [np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1]
                     for a, b in zip(src, make_copies("low-level", src, strength=s, seed=1))])
            for s in (0.25, 1.0)]
    assert corr[1] < corr[0]


def test_tile_grid_offsets_vary():
    img = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    rng = np.random.default_rng(0)
    offsets = {tuple(np.argwhere(tile_shuffle(img, 7, rng) == 0)[0] % 7) for _ in range(30)}
    assert len(offsets) > 1


def test_high_level_keeps_class(fmnist):
    from sklearn.neighbors import KNeighborsClassifier
    train, ytrain, test, ytest = fmnist
    clf = KNeighborsClassifier(5).fit(train.reshape(len(train), -1), ytrain)
    out = make_copies("high-level", test, strength=1.0, seed=0)
    assert not np.array_equal(out, test)
    acc = (clf.predict(out.reshape(len(out), -1)) == ytest).mean()
    assert acc > 0.5, f"class kept only {acc:.2f} of the time (chance 0.10)"


def test_high_level_strength_zero_is_identity(fmnist):
    src = fmnist[0][:10]
    assert np.abs(make_copies("high-level", src, strength=0.0).astype(int) - src).max() <= 1


def test_copies_are_deterministic(fmnist):
    src = fmnist[0][:30]
    for kind in ("low-level", "high-level"):
        assert np.array_equal(make_copies(kind, src, seed=3), make_copies(kind, src, seed=3))
        assert not np.array_equal(make_copies(kind, src, seed=3), make_copies(kind, src, seed=4))


def test_kde_bandwidth(fmnist):
    train = fmnist[0]
    x0, idx = kde_samples(train, sigma=0.0, m=50, seed=0)
    assert np.array_equal(x0, train[idx])
    x1, idx1 = kde_samples(train, sigma=0.2, m=50, seed=0)
    assert np.array_equal(idx, idx1)
    diff = (x1.astype(float) - train[idx1]) / 255
    assert 0.1 < diff.std() < 0.2


def test_mix_fraction_and_sources(fmnist):
    copies, fresh = fmnist[0][:100], fmnist[2][:100]
    images, is_copy, src = mix(copies, fresh, 0.25, source_index=np.arange(100) + 1000)
    assert is_copy.sum() == 25 and np.array_equal(images[:25], copies[:25])
    assert np.array_equal(images[25:], fresh[25:])
    assert src[:25].tolist() == list(range(1000, 1025)) and (src[25:] == -1).all()


def test_bad_inputs():
    with pytest.raises(InputError, match="kind"):
        make_copies("semantic", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        make_copies("exact", np.zeros((2, 28, 28)))
    with pytest.raises(InputError, match="ρ"):
        mix(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8), 1.5)
