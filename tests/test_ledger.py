"""The work ledger (memlib/ledger.py): one line per computed feature entry, none per cache hit,
features unchanged by it; appends that never interleave; notebook attribution by time."""
import json
import threading

import numpy as np
import pytest

from memlib import ledger
from memlib.data import load_images
from memlib.features import embed

TINY = "timm:vit_tiny_patch16_224+random"


@pytest.fixture(scope="module")
def tiny_set():
    return load_images("fashion-mnist:test[:16]")


def _embed(images, cache, **kw):
    return embed(images, TINY, image_size=kw.pop("image_size", 32), precision="float32",
                 device="cpu", cache_dir=cache, progress=False, **kw)


def test_computed_entries_are_recorded_and_cache_hits_are_not(tmp_path, tiny_set):
    _embed(tiny_set, tmp_path)
    rows = ledger.read(ledger.ledger_path(tmp_path))
    assert len(rows) == 1
    row = rows[0]
    assert (row["encoder"], row["image_size"], row["precision"]) == (TINY, 32, "float32")
    assert row["n_images"] == row["n_entry"] == 16 and row["kind"] == "features"
    assert row["seconds"] > 0 and set(row) == set(ledger.FIELDS)
    assert (tmp_path / "features" / row["key"] / "meta.json").exists()
    _embed(tiny_set, tmp_path)                     # a cache hit
    _embed(tiny_set, tmp_path, token="mean")       # the same entry, the other token
    assert len(ledger.read(ledger.ledger_path(tmp_path))) == 1
    _embed(tiny_set.subset(slice(0, 8)), tmp_path, image_size=48)   # a new entry
    rows = ledger.read(ledger.ledger_path(tmp_path))
    assert [r["n_images"] for r in rows] == [16, 8] and rows[1]["image_size"] == 48
    assert ledger.totals(rows) == {(TINY, 32, "float32"): {"n_images": 16, "seconds": rows[0]["seconds"], "entries": 1},
                                   (TINY, 48, "float32"): {"n_images": 8, "seconds": rows[1]["seconds"], "entries": 1}}


def test_features_are_the_same_with_and_without_the_ledger(tmp_path, tiny_set, monkeypatch):
    on = _embed(tiny_set, tmp_path / "on")
    monkeypatch.setenv("MEMLIB_LEDGER", "0")
    off = _embed(tiny_set, tmp_path / "off")
    assert ledger.read(ledger.ledger_path(tmp_path / "off")) == []
    assert len(ledger.read(ledger.ledger_path(tmp_path / "on"))) == 1
    for layer in range(len(on)):
        np.testing.assert_array_equal(on[layer], off[layer])


def test_an_unwritable_ledger_never_fails_the_embedding(tmp_path, tiny_set):
    (tmp_path / "ledger").write_text("a file where the ledger folder should be")
    f = _embed(tiny_set, tmp_path)
    assert f.n == 16 and (tmp_path / "ledger").is_file()


def test_concurrent_appends_stay_whole_lines(tmp_path):
    path = tmp_path / "l.jsonl"
    payload = "x" * 3000   # longer than a pipe buffer's atomic unit, still one write to a file

    def writer(w):
        for i in range(50):
            assert ledger.append(path, {"writer": w, "i": i, "pad": payload})

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    got = sorted((r["writer"], r["i"]) for r in map(json.loads, lines))
    assert got == [(w, i) for w in range(4) for i in range(50)]


def test_read_skips_a_truncated_last_line_and_rows_split_by_notebook(tmp_path):
    path = tmp_path / "l.jsonl"
    rows = [{"finished": "2026-12-05T13:20:00+00:00", "n": 1}, {"finished": "2026-12-05T13:30:00+00:00", "n": 2},
            {"finished": "2026-12-05T13:31:00+00:00", "n": 3}, {"finished": "2026-12-05T15:00:00+00:00", "n": 4}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"finished": "2026-')
    assert ledger.read(path) == rows
    ends = [("00", "2026-12-05T13:26:38+00:00"), ("01", "2026-12-05T13:29:09+00:00"),
            ("02", "2026-12-05T13:36:07+00:00")]
    split = ledger.by_window(rows, ends)
    assert [r["n"] for r in split["00"]] == [1] and split["01"] == []
    assert [r["n"] for r in split["02"]] == [2, 3] and [r["n"] for r in split["later"]] == [4]
    split = ledger.by_window(rows, ends, start="2026-12-05T13:26:00+00:00")   # an earlier run's line
    assert [r["n"] for r in split["earlier"]] == [1] and split["00"] == []
