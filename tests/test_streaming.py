"""Streaming images (memlib.data.ImageStream), chunked feature entries that resume after
SIGKILL (memlib.chunked), concurrent writers of one entry, and entries of the format before
chunking still being read."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memlib.data import ImageStream, load_images, open_images
from memlib.encoders import build_encoder
from memlib.errors import InputError
from memlib.features import embed, embed_shard, entry_job, load_features

TINY = "timm:vit_tiny_patch16_224+random"
KW = dict(image_size=32, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def encoder():
    """float32: entries are compared byte for byte, which bf16 never is (docs/reproducibility.md)."""
    return build_encoder(TINY, 32, "cpu", precision="float32")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same 48 Fashion-MNIST images as an in-memory set, an .npz, a compressed float .npz
    and a folder of PNGs."""
    root = tmp_path_factory.mktemp("sources")
    images = load_images("fashion-mnist:test[:48]")
    np.savez(root / "set.npz", images=images.images)
    np.savez_compressed(root / "float.npz", images=images.images.astype(np.float32) / 255.0)
    (root / "pngs").mkdir()
    for i, im in enumerate(images.images[..., 0]):
        Image.fromarray(im).save(root / "pngs" / f"{i:03d}.png")
    return images, root


def _entry_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.npy"))}


class _Recording:
    """An ImageStream that records the rows of every read."""

    def __init__(self, stream):
        self.stream, self.reads = stream, []

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __len__(self):
        return len(self.stream)

    def read(self, start, stop):
        self.reads.append((start, stop))
        return self.stream.read(start, stop)


def test_stream_equals_loaded_set(sources):
    images, root = sources
    for spec in ("set.npz", "float.npz", "pngs"):
        stream = open_images(root / spec)
        assert isinstance(stream, ImageStream)
        assert len(stream) == 48 and stream.image_shape == (28, 28, 1)
        assert stream.content_hash == images.content_hash
        np.testing.assert_array_equal(stream.read(10, 30), images.images[10:30])
        assert [s for s, _ in stream.batches(20)] == [0, 20, 40]
    assert not isinstance(open_images("fashion-mnist:test[:5]"), ImageStream)
    with pytest.raises(InputError, match="no 'images'"):
        np.savez(root / "bad.npz", other=images.images)
        ImageStream(root / "bad.npz")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(root / "pngs" / "zzz.png")
    try:
        with pytest.raises(InputError, match="mixed sizes"):
            ImageStream(root / "pngs").read(40, 49)
    finally:
        (root / "pngs" / "zzz.png").unlink()


def test_streamed_embedding_reads_batches_and_equals_in_memory(sources, encoder, tmp_path):
    images, root = sources
    stream = _Recording(ImageStream(root / "pngs"))
    streamed = embed(stream, encoder, cache_dir=tmp_path / "a", chunk_rows=16, **KW)
    assert max(stop - start for start, stop in stream.reads) <= 8     # one batch at a time
    assert sorted(stream.reads) == [(s, s + 8) for s in range(0, 48, 8)]
    in_memory = embed(images, encoder, cache_dir=tmp_path / "b", **KW)
    assert streamed.meta["key"] == in_memory.meta["key"]               # same content key
    a = tmp_path / "a" / "features" / streamed.meta["key"]
    b = tmp_path / "b" / "features" / in_memory.meta["key"]
    assert _entry_bytes(a) == _entry_bytes(b)                          # chunked == one chunk
    assert not list((tmp_path / "a" / "features").glob(".*"))          # no partial left


_KILL_SCRIPT = """
import sys, time
from memlib.data import ImageStream
from memlib.encoders import build_encoder
from memlib.features import embed
enc = build_encoder("{tiny}", 32, "cpu", precision="float32")
forward = enc.layer_tokens
def slow(batch, **kw):
    time.sleep(0.25)
    return forward(batch, **kw)
enc.layer_tokens = slow
embed(ImageStream(sys.argv[1]), enc, image_size=32, batch_size=8, chunk_rows=8,
      cache_dir=sys.argv[2], progress=False)
"""


def test_sigkill_resumes_at_last_complete_chunk(sources, encoder, tmp_path):
    images, root = sources
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT.format(tiny=TINY),
                             str(root / "set.npz"), str(cache)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            done = list(cache.glob("features/.*.partial/done/chunk_*"))
            if len(done) >= 2:
                break
            assert proc.poll() is None, "the embedding process ended before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = next(cache.glob("features/.*.partial"))
    n_done = len(list((partial / "done").iterdir()))
    assert 2 <= n_done < 6                                  # 48 images = 6 chunks of 8
    folder, _ = entry_job(ImageStream(root / "set.npz"), encoder, image_size=32, final_norm=False,
                          batch_size=8, device="cpu", precision="float32", cache_dir=cache)
    assert not folder.exists()                              # nothing finished to trust

    embedded = []
    forward = encoder.layer_tokens

    def counting(batch, **kw):
        embedded.append(len(batch))
        return forward(batch, **kw)

    encoder.layer_tokens = counting
    try:
        resumed = embed(ImageStream(root / "set.npz"), encoder, cache_dir=cache, chunk_rows=8, **KW)
    finally:
        del encoder.layer_tokens
    assert sum(embedded) == 48 - 8 * n_done               # only the unfinished chunks
    fresh = embed(images, encoder, cache_dir=tmp_path / "fresh", **KW)
    assert _entry_bytes(folder) == _entry_bytes(tmp_path / "fresh" / "features" / fresh.meta["key"])
    assert resumed.n == 48 and not partial.exists()


_WRITER_SCRIPT = """
import sys
from memlib.data import ImageStream
from memlib.features import embed
f = embed(ImageStream(sys.argv[1]), "{tiny}", image_size=32, batch_size=8, chunk_rows=8,
          device="cpu", precision="float32", cache_dir=sys.argv[2], progress=False)
print(f.meta["key"])
"""


def test_two_concurrent_writers_of_one_entry(sources, encoder, tmp_path):
    images, root = sources
    cache = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT.format(tiny=TINY),
                               str(root / "set.npz"), str(cache)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    keys = {out.strip() for out, _ in outs}
    assert len(keys) == 1
    key = keys.pop()
    single = embed(images, encoder, cache_dir=tmp_path / "single", **KW)
    assert single.meta["key"] == key
    assert _entry_bytes(cache / "features" / key) == _entry_bytes(tmp_path / "single" / "features" / key)
    assert [p.name for p in (cache / "features").iterdir()] == [key]   # no partial or temp left


def test_entry_of_the_format_before_chunking_is_read(sources, encoder, tmp_path):
    """An entry as the one-piece writer left it (meta.json + arrays, no manifest or done/)
    is read as it is, without a forward pass."""
    images, _ = sources
    made = embed(images, encoder, cache_dir=tmp_path, **KW)
    folder = tmp_path / "features" / made.meta["key"]
    for extra in ("manifest.json", "done"):
        p = folder / extra
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    forward = encoder.layer_tokens
    encoder.layer_tokens = None     # any forward pass would fail
    try:
        again = embed(images, encoder, cache_dir=tmp_path, **KW)
    finally:
        encoder.layer_tokens = forward
        del encoder.layer_tokens
    np.testing.assert_array_equal(again[3], made[3])
    assert load_features(folder, "mean").n == 48


def test_shards_fill_one_entry(sources, encoder, tmp_path):
    images, _ = sources
    assert embed_shard(images, encoder, (1, 3), cache_dir=tmp_path, chunk_rows=8, **KW) is False
    assert embed_shard(images, encoder, (0, 3), cache_dir=tmp_path, chunk_rows=8, **KW) is False
    assert embed_shard(images, encoder, (2, 3), cache_dir=tmp_path, chunk_rows=8, **KW) is True
    whole = embed(images, encoder, cache_dir=tmp_path / "one", **KW)
    key = whole.meta["key"]
    assert _entry_bytes(tmp_path / "features" / key) == _entry_bytes(tmp_path / "one" / "features" / key)
    with pytest.raises(InputError, match="shard"):
        embed_shard(images, encoder, (3, 3), cache_dir=tmp_path, **KW)
