"""Encoders trained by the study (memlib.trained_encoders; docs/design.md#trained-encoders).

Every training here is the smoke profile's tiny recipe on one torch thread (a few seconds)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memlib import trained_encoders as te
from memlib.data import spec_window
from memlib.errors import EncoderError, ParameterError
from memlib.params import PROFILES, load_params

REPO = Path(__file__).resolve().parent.parent
NAMES = ("fmnist-vit", "fmnist-cnn")


@pytest.fixture(scope="module")
def smoke():
    return load_params("smoke")


@pytest.fixture(scope="module")
def trained(smoke, cache_dir):
    """Both smoke encoders trained once into the session cache: {name: (resolved, manifest)}."""
    return {name: te.train_or_load(name, te.recipes(smoke)[name], cache_dir=cache_dir,
                                   device="cpu", progress=False, threads=1) for name in NAMES}


# --- determinism and the cache ----------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_training_is_deterministic(name, smoke, trained, tmp_path):
    """The same recipe trained twice (two caches, same machine, same thread count) gives the
    same weights, byte for byte, the same key and the same measured numbers. Both trainings are
    made here: the session cache's entry may come from the smoke notebooks (notebook 06 trains
    on the kernel's thread count, which changes the last bits, not the key)."""
    resolved, _ = trained[name]
    runs = [te.train_or_load(name, te.recipes(smoke)[name], cache_dir=tmp_path / d, device="cpu",
                             progress=False, threads=1) for d in ("a", "b")]
    (again, first), (twice, second) = runs
    assert again == twice == resolved
    a = (te.entry_folder(name, first["key"], tmp_path / "a") / te.WEIGHTS_FILE).read_bytes()
    b = (te.entry_folder(name, second["key"], tmp_path / "b") / te.WEIGHTS_FILE).read_bytes()
    assert a == b
    for k in ("test_accuracy", "epoch_loss", "epoch_accuracy", "n_params", "weights_sha256"):
        assert first[k] == second[k], k


def test_another_seed_is_another_entry(smoke, trained, tmp_path):
    recipe = dict(te.recipes(smoke)["fmnist-cnn"], seed=1)
    resolved, m = te.train_or_load("fmnist-cnn", recipe, cache_dir=tmp_path, device="cpu",
                                   progress=False, threads=1)
    assert resolved != trained["fmnist-cnn"][0]
    assert m["weights_sha256"] != trained["fmnist-cnn"][1]["weights_sha256"]


def test_manifest_records_what_was_measured(smoke, trained):
    for name, (resolved, m) in trained.items():
        r = te.recipes(smoke)[name]
        assert resolved == f"{name}@{m['key']}" and m["weights_id"] == f"trained:{m['key']}"
        assert m["recipe"] == r and m["n_train"] == 512 and m["n_eval"] == 300
        assert m["n_layers"] == (r["depth"] if r["kind"] == "vit" else sum(r["stages"]))
        assert m["dim"] == r["width"] and m["torch_threads"] >= 1 and m["precision"] == "float32"
        assert m["train_seconds"] > 0 and m["train_cpu_seconds"] > 0 and m["cpu"]
        assert len(m["epoch_loss"]) == r["epochs"] and m["epoch_loss"][-1] < m["epoch_loss"][0]
        # two epochs on 512 images: far from good, but above chance (0.1) on held-out images
        assert 0.2 < m["test_accuracy"] <= 1.0


def test_cached_weights_are_checked(smoke, trained, tmp_path):
    import shutil
    resolved, m = trained["fmnist-cnn"]
    folder = te.entry_folder("fmnist-cnn", m["key"], tmp_path)
    shutil.copytree(te.entry_folder("fmnist-cnn", m["key"], None), folder)
    raw = bytearray((folder / te.WEIGHTS_FILE).read_bytes())
    raw[-1] ^= 1
    (folder / te.WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(Exception, match="sha256"):
        te.build(resolved, 28, "cpu", cache_dir=tmp_path)


# --- registry: names, features, controls ---------------------------------------------------------

def test_build_encoder_and_weights_id(smoke, trained, fmnist_small):
    from memlib.encoders import build_encoder, weights_id
    for name, (resolved, m) in trained.items():
        enc = build_encoder(resolved, 28, device="cpu", precision="float32")
        same = build_encoder(name, 28, device="cpu", precision="float32",
                             recipe=te.recipes(smoke)[name])
        assert enc.name == same.name == resolved
        assert enc.weights_id == weights_id(resolved) == f"trained:{m['key']}"
        tokens = enc.layer_tokens(fmnist_small.images[:16])
        again = same.layer_tokens(fmnist_small.images[:16])
        assert len(tokens["cls"]) == enc.n_layers == m["n_layers"]
        assert all(t.shape == (16, m["dim"]) and t.dtype == np.float32 for t in tokens["mean"])
        for a, b in zip(tokens["cls"], again["cls"]):
            np.testing.assert_array_equal(a, b)
        normed = enc.layer_tokens(fmnist_small.images[:16], final_norm=True)["cls"][-1]
        np.testing.assert_allclose(enc.apply_final_norm(tokens["cls"][-1]), normed, rtol=1e-5, atol=1e-5)
        assert weights_id(resolved + "+shuffled") == f"trained:{m['key']}+shuffled-seed0"


def test_cnn_layers_are_pooled_blocks(trained, fmnist_small):
    """CNN: one layer per residual block, the feature is the block output averaged over space;
    cls and mean are that same array."""
    import torch

    from memlib.encoders import build_encoder
    enc = build_encoder(trained["fmnist-cnn"][0], 28, device="cpu", precision="float32")
    images = fmnist_small.images[:8]
    tokens = enc.layer_tokens(images)
    maps = enc.block_outputs(enc.preprocess(images))
    assert [tuple(m.shape[2:]) for m in maps] == [(14, 14), (7, 7)]   # stem stride 2, stages [1, 1]
    for t_cls, t_mean, m in zip(tokens["cls"], tokens["mean"], maps):
        np.testing.assert_array_equal(t_cls, t_mean)
        np.testing.assert_allclose(t_cls, m.float().mean((2, 3)).numpy(), rtol=1e-6)
    assert isinstance(enc.model.norm, torch.nn.BatchNorm1d)


def test_controls_of_a_trained_encoder(trained, fmnist_small):
    from memlib.encoders import build_encoder, weights_id
    resolved = trained["fmnist-cnn"][0]
    base = build_encoder(resolved, 28, device="cpu", precision="float32")
    for suffix in ("+shuffled", "+random"):
        enc = build_encoder(resolved + suffix, 28, device="cpu", precision="float32")
        assert enc.name == resolved + suffix and enc.weights_id == weights_id(resolved + suffix)
        assert not np.allclose(enc.layer_tokens(fmnist_small.images[:8])["cls"][-1],
                               base.layer_tokens(fmnist_small.images[:8])["cls"][-1])


def test_feature_cache_is_keyed_by_the_weights(trained, fmnist_small, cache_dir):
    from memlib.features import embed
    resolved, m = trained["fmnist-vit"]
    feats = embed(fmnist_small.subset(slice(0, 32)), resolved, image_size=28, batch_size=16,
                  device="cpu", precision="float32", cache_dir=cache_dir, progress=False)
    assert feats.meta["weights"] == f"trained:{m['key']}" and feats.meta["encoder"] == resolved
    assert len(feats) == m["n_layers"] and feats[0].shape == (32, m["dim"])


def test_native_size_and_names_without_recipe(trained, tmp_path):
    from memlib.encoders import build_encoder
    resolved = trained["fmnist-vit"][0]
    with pytest.raises(EncoderError, match="native 28 px"):
        build_encoder(resolved, 112, device="cpu")
    with pytest.raises(EncoderError, match="unknown encoder 'fmnist-vit'.*trained_encoders"):
        build_encoder("fmnist-vit", 28, device="cpu")
    with pytest.raises(EncoderError, match="not in the cache.*encoders --train"):
        te.build(resolved, 28, "cpu", cache_dir=tmp_path)
    smoke = load_params("smoke")
    assert te.native_image_size("fmnist-vit+shuffled", smoke) == 28
    assert te.native_image_size("dinov2-s-offline", smoke) is None


# --- data windows ---------------------------------------------------------------------------------

def _interval(spec):
    name, split, start, stop = spec_window(spec)
    return name, split, start, stop


@pytest.mark.parametrize("profile", PROFILES)
def test_encoder_windows_overlap_no_generator_or_reference(profile):
    """Every encoder's train and eval window shares no image with any zoo seed's window (the
    gradient models train on their first images), the memorising subset, T, the test set, fresh
    images or the sensitivity grid's second T, in every profile."""
    params = load_params(profile)
    used = te.check_encoder_windows(params)
    whats = {what for what, _ in used}
    assert {"reference_train", "test", "fresh", "zoo_memorize_train"} <= whats
    assert sum(w.startswith("zoo seed") for w in whats) == len(set(params["zoo_seeds"]) | set(params["gradient_seeds"]))
    if profile != "full":
        assert "sensitivity_grid.reference_split" in whats
    for name, r in te.recipes(params).items():
        for key in ("train", "eval"):
            d, split, a0, a1 = _interval(r[key])
            for what, spec in used:
                e, split2, b0, b1 = _interval(spec)
                assert (d, split) != (e, split2) or a1 <= b0 or b1 <= a0, (profile, name, key, what, spec)


def test_default_windows_are_the_documented_ones():
    params = load_params("default")
    used = dict((spec, what) for what, spec in te.used_windows(params))
    assert "fashion-mnist:train[20000:30000]" in used            # seed 2
    assert "fashion-mnist:train[30000:35000]" in used            # sensitivity's second T
    for r in te.recipes(params).values():
        assert r["train"] == "fashion-mnist:train[35000:50000]"   # ends where T begins


@pytest.mark.parametrize("train, eval_, names", [
    ("fashion-mnist:train[30000:36000]", None, "sensitivity_grid.reference_split"),
    ("fashion-mnist:train[25000:36000]", None, "zoo seed 2"),
    ("fashion-mnist:train[44000:51000]", None, "reference_train"),
    (None, "fashion-mnist:test[1000:3000]", "overlaps test"),
    ("fashion-mnist:train[59000:61000]", None, "ends past"),
])
def test_overlapping_windows_are_refused(train, eval_, names):
    params = copy.deepcopy(load_params("default"))
    recipe = params["trained_encoders"]["fmnist-vit"]
    recipe.update({k: v for k, v in (("train", train), ("eval", eval_)) if v})
    with pytest.raises(ParameterError, match=names.replace(".", r"\.")):
        te.check_encoder_windows(params)
    with pytest.raises(ParameterError):
        te.resolve("fmnist-vit", params, train=False)


# --- recipes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"kind": "mlp"}, "kind must be one of vit, cnn"),
    ({"heads": 3}, "width = 32 is not valid"),
    ({"patch": 5}, "patch = 5 is not valid"),
    ({"lr": 0}, "lr = 0 is not valid"),
    ({"epochs": 0}, "epochs = 0 is not valid"),
    ({"batch": True}, "batch = True is not valid"),
    ({"mlp_ratio": "wide"}, "mlp_ratio = 'wide' is not valid"),
    ({"depht": 2}, r"unknown keys \['depht'\]"),
    ({"train": "some/folder"}, "train: some/folder: expected a dataset spec"),
    ({"eval": "fashion-mnist:test[5000:]"}, "expected a plain"),
])
def test_bad_vit_recipes_fail_before_training(change, message, smoke, monkeypatch):
    import memlib.encoder_training as training
    monkeypatch.setattr(training, "train_classifier", lambda *a, **k: pytest.fail("trained"))
    recipe = dict(te.recipes(smoke)["fmnist-vit"], **change)
    with pytest.raises(ParameterError, match=message):
        te.train_or_load("fmnist-vit", recipe, device="cpu", progress=False)


@pytest.mark.parametrize("change, message", [
    ({"stages": []}, "stages = \\[\\] is not valid"),
    ({"stages": [2, 0]}, "stages"),
    ({"stem_stride": 3}, "stem_stride = 3 is not valid"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"patch": 4}, r"unknown keys \['patch'\]"),
])
def test_bad_cnn_recipes_fail_before_training(change, message, smoke):
    recipe = dict(te.recipes(smoke)["fmnist-cnn"], **change)
    with pytest.raises(ParameterError, match=message):
        te.check_recipe("fmnist-cnn", recipe)


def test_missing_keys_and_batch_larger_than_the_data(smoke, monkeypatch):
    import memlib.encoder_training as training
    monkeypatch.setattr(training, "train_classifier", lambda *a, **k: pytest.fail("trained"))
    recipe = dict(te.recipes(smoke)["fmnist-cnn"])
    del recipe["width"]
    with pytest.raises(ParameterError, match=r"missing keys \['width'\].*width = int"):
        te.check_recipe("fmnist-cnn", recipe)
    with pytest.raises(ParameterError, match="batch 600 is larger than train"):
        te.train_or_load("fmnist-cnn", dict(te.recipes(smoke)["fmnist-cnn"], batch=600),
                         device="cpu", progress=False)


# --- command line and the encoders table ---------------------------------------------------------

def test_cli_lists_trained_encoders(trained, capsys):
    from memlib import cli
    assert cli.main(["encoders", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    for name, (resolved, m) in trained.items():
        line = next(l for l in out.splitlines() if l.startswith(name + "  "))
        assert f"test accuracy {m['test_accuracy']:.3f}" in line and resolved in line
        assert "seed 0, 2 epochs on fashion-mnist:train[41000:41512]" in line


def test_cli_copies_with_a_trained_encoder(trained, tmp_path, capsys):
    """`memlib copies --encoder fmnist-vit`: the profile's recipe, the native 28 px, one row per
    sample and layer (pixels + every block), provenance naming the trained weights."""
    from memlib import cli
    resolved, m = trained["fmnist-vit"]
    out = tmp_path / "copies"
    rc = cli.main(["--profile", "smoke", "copies", "fashion-mnist:train[0:90]", "--train",
                   "fashion-mnist:train[0:200]", "--test", "fashion-mnist:test[:120]",
                   "--encoder", "fmnist-vit", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["provenance"]["encoder"] == resolved and doc["provenance"]["weights_id"] == f"trained:{m['key']}"
    assert doc["provenance"]["image_size"] == 28
    assert [row["layer"] for row in doc["layers"]] == list(range(1 + m["n_layers"]))
    assert doc["kinds"]["exact"] == 90     # the samples are training images: copies at every layer
    table = pd.read_csv(out / "copies.csv")
    assert len(table) == 90 * (1 + m["n_layers"]) and table["flagged"].all()
    assert (out / "gallery.png").stat().st_size > 0


def test_cli_refuses_an_image_size_a_trained_encoder_cannot_take(trained, tmp_path, capsys):
    from memlib import cli
    rc = cli.main(["--profile", "smoke", "embed", "fashion-mnist:test[:8]", "--encoder",
                   "fmnist-cnn", "--image-size", "32", "--out", str(tmp_path / "e")])
    assert rc == 2 and "native 28 px" in capsys.readouterr().err


def test_encoders_table(smoke, trained, tmp_path):
    path = tmp_path / "encoders.csv"
    table = te.write_encoders_table(path, smoke, progress=False)
    read = pd.read_csv(path)
    assert list(read.columns) == te.TABLE_COLUMNS and list(read["name"]) == list(NAMES)
    for _, row in read.iterrows():
        m = trained[row["name"]][1]
        assert row["key"] == m["key"] and row["n_params"] == m["n_params"]
        assert row["test_accuracy"] == round(m["test_accuracy"], 4)
        assert row["train_window"] == "fashion-mnist:train[41000:41512]"
        assert json.loads(row["recipe"])["seed"] == 0
    assert table["test_accuracy"].between(0, 1).all()


def test_committed_amd_epyc_table_matches_the_default_recipes():
    """bench/amd-epyc/encoders.csv: the default recipes as they are in the profile, trained once
    on the AMD EPYC (docs/design.md#trained-encoders quotes these numbers)."""
    table = pd.read_csv(REPO / "bench" / "amd-epyc" / "encoders.csv")
    params = load_params("default")
    recipes = te.recipes(params)
    assert list(table["name"]) == list(recipes)
    for _, row in table.iterrows():
        r = recipes[row["name"]]
        assert json.loads(row["recipe"]) == {k: v for k, v in r.items() if k not in ("kind", "train", "eval")}
        assert row["train_window"] == r["train"] and row["eval_window"] == r["eval"]
        assert row["n_train"] == 15000 and row["n_eval"] == 8000
        assert row["test_accuracy"] > 0.8 and "EPYC" in row["cpu"]
