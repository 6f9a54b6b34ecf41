"""The memorization gradient (Study v2, claim 1): variants n<size> train on the first size
images of zoo_train, with their own hyper-parameter overrides, and the small ones copy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memlib import zoo
from memlib.data import head_spec, load_fashion_mnist, load_images
from memlib.errors import ParameterError
from memlib.params import load_params


@pytest.mark.parametrize("spec,n,want", [
    ("fashion-mnist:train[:10000]", 16, "fashion-mnist:train[:16]"),
    ("fashion-mnist:train", 64, "fashion-mnist:train[:64]"),
    ("cifar10:train[100:5000]", 16, "cifar10:train[100:116]"),
    ("fashion-mnist:test[5:21]", 16, "fashion-mnist:test[5:21]"),
])
def test_head_spec_known_answers(spec, n, want):
    assert head_spec(spec, n) == want


def test_head_spec_is_the_first_n_images():
    first = load_images(head_spec("fashion-mnist:train[30:1000]", 7)).images
    np.testing.assert_array_equal(first.reshape(7, 28, 28), load_fashion_mnist("train")[0][30:37])


@pytest.mark.parametrize("spec,n,match", [
    ("fashion-mnist:train[:10]", 16, "holds 10 images, fewer than the 16"),
    ("fashion-mnist:train@500", 16, "dataset spec"),
    ("/tmp/some/folder", 16, "dataset spec"),
    ("samples.npz", 16, "dataset spec"),
    ("fashion-mnist:train[-100:]", 16, "plain"),
    ("fashion-mnist:train[::2]", 16, "plain"),
    ("fashion-mnist:train", 0, "n must be"),
])
def test_head_spec_errors(spec, n, match):
    with pytest.raises(ParameterError, match=match):
        head_spec(spec, n)


def _params(**extra):
    p = load_params("smoke", overrides={"device": "cpu", "zoo_workers": 1, **extra})
    return p


def test_gradient_variants_hparams_spec_and_models():
    p = _params(gradient_families=["gmm", "kde"], gradient_sizes=[16, 64], gradient_seeds=[0, 1],
                gradient_hparams={"gmm": {"n_components": 5}})
    assert zoo.gradient_models(p) == [("gmm", "n16", 0), ("gmm", "n16", 1), ("gmm", "n64", 0),
                                      ("gmm", "n64", 1), ("kde", "n16", 0), ("kde", "n16", 1),
                                      ("kde", "n64", 0), ("kde", "n64", 1)]
    assert zoo.train_spec("n16", p) == "fashion-mnist:train[:16]"
    assert zoo.zoo_hparams("gmm", "n16", p) == {**p["zoo_hparams"]["gmm"], "n_components": 5}
    assert zoo.zoo_hparams("kde", "n64", p) == p["zoo_hparams"]["kde"]       # no override
    assert zoo.zoo_hparams("gmm", "standard", p) == p["zoo_hparams"]["gmm"]
    assert zoo.gradient_size("n256") == 256 and zoo.gradient_size("n0") is None
    assert zoo.gradient_size("memorize") is None
    with pytest.raises(ParameterError, match="n<size>"):
        zoo.zoo_hparams("gmm", "n16x", p)
    with pytest.raises(ParameterError, match="fewer than"):
        zoo.gradient_models(_params(gradient_sizes=[16, 5000]))   # smoke zoo_train holds 1,000


def test_a_small_gradient_model_copies_its_own_training_images(tmp_path):
    p = _params(gradient_families=["gmm"], gradient_sizes=[16, 64])
    folders = {zoo.cache_folder("gmm", v, 0, p, tmp_path) for v in ("n16", "n64", "standard")}
    assert len(folders) == 3                                  # one cache entry per training set
    rows = zoo.zoo_sample(p, models=zoo.gradient_models(p), cache_dir=tmp_path, n_samples=50,
                          progress=False)
    assert [r["variant"] for r in rows] == ["n16", "n64"]
    s16 = zoo.zoo_samples("gmm", 0, "n16", p, tmp_path, n_samples=50, progress=False)
    assert s16.manifest["n_train"] == 16 and s16.manifest["train_spec"] == "fashion-mnist:train[:16]"
    # with 16 images the mixture has a component per image: its samples sit on them
    assert s16.manifest["copy_rate"] >= 0.9
    with pytest.raises(ParameterError, match="either models or"):
        zoo.zoo_sample(p, families=["gmm"], models=zoo.gradient_models(p), cache_dir=tmp_path)


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_profiles_define_a_valid_gradient(profile):
    p = load_params(profile)
    models = zoo.gradient_models(p)
    assert models and {f for f, _, _ in models} <= set(zoo.FAMILIES)
    if profile == "default":        # two neural families plus KDE and GMM (docs/design.md, Study v2)
        assert {"diffusion", "vae", "gmm", "kde"} <= {f for f, _, _ in models}


def test_train_list_and_select_the_gradient(tmp_path):
    p = _params(gradient_families=["gmm", "kde"], gradient_sizes=[16, 64])
    assert zoo.select_models(p, ["kde"], None, ["n64"], gradient=True) == [("kde", "n64", 0)]
    assert zoo.select_models(p, ["kde"], None, None) == [m for m in zoo.zoo_models(p) if m[0] == "kde"]
    with pytest.raises(ParameterError, match="not in this profile's memorization gradient"):
        zoo.select_models(p, None, None, ["n256"], gradient=True)
    with pytest.raises(ParameterError, match="either models or"):
        zoo.zoo_train(p, seeds=[0], models=zoo.gradient_models(p), cache_dir=tmp_path)
    trained = zoo.zoo_train(p, models=[("kde", "n16", 0)], cache_dir=tmp_path, progress=False)
    assert [(r["family"], r["variant"]) for r in trained] == [("kde", "n16")]
    info = json.loads((Path(trained[0]["folder"]) / "train.json").read_text())
    assert info["n_train"] == 16 and info["train_spec"] == "fashion-mnist:train[:16]"
    rows = {(r["family"], r["variant"]): r for r in zoo.zoo_list(p, tmp_path, gradient=True)}
    assert set(rows) == {("gmm", "n16"), ("gmm", "n64"), ("kde", "n16"), ("kde", "n64")}
    assert rows["kde", "n16"]["trained"] and not rows["kde", "n16"]["sampled"]
    assert not rows["gmm", "n64"]["trained"]
    zoo.zoo_sample(p, models=[("kde", "n16", 0)], cache_dir=tmp_path,
                   n_samples=p["gradient_n_samples"], progress=False)
    row = next(r for r in zoo.zoo_list(p, tmp_path, gradient=True) if r["variant"] == "n16"
               and r["family"] == "kde")
    assert row["sampled"] and row["n_train"] == 16 and row["n_samples"] == p["gradient_n_samples"]
    assert row["copy_rate"] < 0.1                      # KDE with sigma = ml does not copy


def test_cli_zoo_gradient(tmp_path, monkeypatch, capsys):
    from memlib.cli import main

    monkeypatch.setenv("MEMLIB_CACHE", str(tmp_path))
    assert main(["zoo", "sample", "--gradient", "--family", "kde", "--profile", "smoke",
                 "--out", str(tmp_path / "out")]) == 0
    sizes = load_params("smoke")["gradient_sizes"]
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == sorted(
        f"kde-n{n}-s0.npz" for n in sizes)
    capsys.readouterr()
    assert main(["zoo", "list", "--gradient", "--profile", "smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kde = [line for line in lines if line.startswith("family=kde")]
    assert len(kde) == len(sizes) and all("sampled=True" in line for line in kde)
    assert any(line.startswith("family=gmm") and "trained=False" in line for line in lines)
