"""Image-set loading: specs, folders, npz, and the errors users meet."""
import numpy as np
import pytest
from PIL import Image

from memlib.data import ImageSet, load_fashion_mnist, load_images, to_uint8
from memlib.errors import InputError, ParameterError


def test_fashion_mnist_shapes_and_balance():
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


def test_spec_slicing_and_sampling_are_deterministic():
    a = load_images("fashion-mnist:train[100:110]")
    full, _ = load_fashion_mnist("train")
    assert np.array_equal(a.images[..., 0], full[100:110])
    assert a.ids[0] == "fashion-mnist:train/100"
    s1, s2 = load_images("fashion-mnist:test@50", seed=3), load_images("fashion-mnist:test@50", seed=3)
    assert np.array_equal(s1.ids, s2.ids)
    assert not np.array_equal(s1.ids, load_images("fashion-mnist:test@50", seed=4).ids)


def test_folder_with_class_subfolders(tmp_path, rng):
    for cls in ("b", "a"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.PNG")
    s = load_images(tmp_path)
    assert s.images.shape == (6, 8, 8, 3)
    assert s.ids[0] == "a/0.PNG" and s.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_npz_images_and_arr0(tmp_path, rng):
    x = rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", arr_0=x)
    assert np.array_equal(load_images(tmp_path / "a.npz").images, x)
    np.savez(tmp_path / "b.npz", images=x[..., 0])
    assert load_images(tmp_path / "b.npz").images.shape == (5, 8, 8, 1)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such file"),
    (lambda p: p, "no images"),
])
def test_missing_and_empty(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        load_images(make(tmp_path))


def test_corrupt_file_is_named(tmp_path, rng):
    Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.png"):
        load_images(tmp_path)


def test_mixed_sizes_are_named(tmp_path, rng):
    Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 255, (9, 8), dtype=np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(InputError, match="mixed sizes.*b.png"):
        load_images(tmp_path)


def test_npz_without_images_and_with_pickle(tmp_path):
    np.savez(tmp_path / "x.npz", other=np.zeros(3))
    with pytest.raises(InputError, match="no 'images' or 'arr_0'"):
        load_images(tmp_path / "x.npz")
    np.savez(tmp_path / "p.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickle"):
        load_images(tmp_path / "p.npz")


def test_bad_pixels():
    with pytest.raises(InputError, match="NaN"):
        to_uint8(np.array([[np.nan]]))
    with pytest.raises(InputError, match="span"):
        to_uint8(np.array([[300.0]]))
    assert to_uint8(np.array([[0.0, 1.0]])).tolist() == [[0, 255]]


def test_unknown_dataset_and_bad_slice():
    with pytest.raises(InputError, match="unknown dataset"):
        load_images("imagenet:train")
    with pytest.raises(InputError, match="slice"):
        load_images("fashion-mnist:train[5]")


def test_missing_dataset_explains(monkeypatch, tmp_path):
    import memlib.data as data
    monkeypatch.setattr(data, "FASHION_MNIST_DIRS", (str(tmp_path),))
    monkeypatch.setattr(data, "_FMNIST_CACHE", {})
    monkeypatch.delenv("MEMLIB_DATA", raising=False)
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist:train")


def test_checksum_mismatch(monkeypatch, tmp_path):
    import shutil
    import memlib.data as data
    from memlib.errors import ChecksumError
    src = data.fashion_mnist_dir()
    for name in data.FASHION_MNIST_SHA256:
        shutil.copy(src / name, tmp_path / name)
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "ab") as f:
        f.write(b"x")
    monkeypatch.setenv("MEMLIB_DATA", str(tmp_path))
    monkeypatch.setattr(data, "_FMNIST_CACHE", {})
    with pytest.raises(ChecksumError, match="sha256"):
        load_fashion_mnist("test")


def test_imageset_rejects_bad_shapes():
    with pytest.raises(InputError, match="shape"):
        ImageSet(np.zeros((2, 4, 4, 2), np.uint8), ["a", "b"])
    with pytest.raises(InputError, match="empty"):
        ImageSet(np.zeros((0, 4, 4), np.uint8), [])


def test_seed_windows_and_overlaps():
    from memlib.data import shift_spec, spec_window, windows_overlap
    assert shift_spec("fashion-mnist:train[:10000]", 2) == "fashion-mnist:train[20000:30000]"
    assert shift_spec("cifar10:train[100:200]", 1) == "cifar10:train[200:300]"
    assert spec_window("fashion-mnist:test[:2000]") == ("fashion-mnist", "test", 0, 2000)
    for bad in ("fashion-mnist:train", "fashion-mnist:train[5:]", "fashion-mnist:train[:10]@5", "/data/folder"):
        with pytest.raises(ParameterError):
            spec_window(bad)
    assert windows_overlap("fashion-mnist:train[0:100]", "fashion-mnist:train[99:200]")
    assert not windows_overlap("fashion-mnist:train[0:100]", "fashion-mnist:train[100:200]")
    assert not windows_overlap("fashion-mnist:train[0:100]", "fashion-mnist:test[0:100]")
    assert windows_overlap("fashion-mnist:train", "fashion-mnist:train[50000:51000]")   # the whole split
    assert windows_overlap("fashion-mnist:train[:500]@100", "fashion-mnist:train[400:401]")
    assert not windows_overlap("/data/samples", "fashion-mnist:train[0:100]")
