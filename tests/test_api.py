"""The public API of ``import memlib`` (docs/api.md): its example runs, its inputs are read
alike whatever form they come in, imports stay lazy, and the kernels' plain defaults equal
params/default.yaml."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import memlib

REPO = Path(__file__).resolve().parent.parent
TINY = dict(encoder="timm:vit_tiny_patch16_224+random", image_size=32)
TRAIN, TEST = "fashion-mnist:train[30000:30400]", "fashion-mnist:test[:300]"


def test_kernel_defaults_equal_the_default_profile():
    from memlib import ct, ct_inputs

    profile = yaml.safe_load((REPO / "params" / "default.yaml").read_text())
    plain = {"n_cells": ct_inputs.DEFAULT_N_CELLS, "pca_dim": ct_inputs.DEFAULT_PCA_DIM,
             "seed": ct_inputs.DEFAULT_SEED}
    assert plain == {k: profile[k] for k in plain}
    for kernel in (ct.ct_score, ct.fit_reference):
        defaults = {name: p.default for name, p in inspect.signature(kernel).parameters.items()}
        assert {k: defaults[k] for k in plain} == plain, kernel.__name__


def test_no_kernel_reads_a_profile():
    """ct and ct_inputs import nothing that reads YAML (the defaults are plain numbers)."""
    for name in ("ct.py", "ct_inputs.py"):
        text = (REPO / "memlib" / name).read_text()
        assert "load_params" not in text and "yaml" not in text.lower().replace("default.yaml", ""), name


def test_profiles_are_package_data_and_params_is_their_one_copy():
    from memlib.locations import profiles_dir

    assert profiles_dir() == REPO / "memlib" / "profiles"
    assert (REPO / "params").is_symlink() and (REPO / "params").resolve() == profiles_dir()
    assert sorted(p.stem for p in profiles_dir().glob("*.yaml")) == ["default", "full", "smoke"]


def test_import_is_lazy_and_exports_resolve():
    code = ("import sys, memlib; heavy = [m for m in ('numpy', 'torch', 'pandas') if m in sys.modules];"
            "print(heavy, memlib.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    assert out[0] == "[]", out
    from importlib.metadata import version
    assert out[1] == version("memlib")
    for name in memlib.__all__:
        assert getattr(memlib, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        memlib.nope


def test_the_api_example_runs(cache_dir, tmp_path, monkeypatch):
    """docs/api.md's example, executed as written; then its numbers are checked."""
    text = (REPO / "docs" / "api.md").read_text()
    block = re.search(r"## Example\n.*?```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 14
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "docs/api.md", "exec"), namespace)
    curve, fresh, report = namespace["curve"], namespace["fresh_curve"], namespace["report"]
    assert curve.shape == (12,) and fresh.shape == (12,)
    assert (curve < -5).all(), curve                      # exact copies: copying at every layer
    assert (np.abs(fresh) < 3).all(), fresh               # fresh images: about 0
    shares = report.share_flagged()
    assert (shares["share_flagged"] == 1.0).all()         # every copy flagged at every layer
    assert list(report.layers) == list(range(13))         # layer 0 = raw pixels


def test_every_image_form_gives_the_same_set(tmp_path):
    """A spec, an ADM-style arr_0 .npz (NHWC uint8), a numpy array, a torch NCHW tensor (uint8
    and float in [0, 1]) and a folder of PNGs are the same pixels."""
    import torch
    from PIL import Image

    rgb = np.repeat(memlib.load_images("fashion-mnist:test[:12]").images, 3, axis=-1)   # (12,28,28,3)
    np.savez(tmp_path / "adm.npz", arr_0=rgb)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(rgb):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    tensor = torch.from_numpy(rgb).permute(0, 3, 1, 2)
    forms = [tmp_path / "adm.npz", str(folder), rgb, tensor, tensor.float() / 255.0]
    for form in forms:
        got = memlib.load_images(form).images
        assert got.dtype == np.uint8 and got.shape == (12, 28, 28, 3), type(form)
        np.testing.assert_array_equal(got, rgb)
    with pytest.raises(memlib.MemlibError, match="expected a folder"):
        memlib.load_images([1, 2, 3])


def test_ct_curve_on_features_equals_the_kernel(rng):
    """Features in any form (list of (N, D) arrays, a float (L, N, D) array) go straight to
    the kernel: the same numbers as memlib.ct.ct_curve with the same settings."""
    from memlib.ct import ct_curve

    train, test = rng.normal(size=(2, 300, 16)), rng.normal(size=(2, 200, 16))
    gen = np.concatenate([train[:, :60] + 0.01, rng.normal(size=(2, 90, 16))], axis=1)
    expected = ct_curve(train, test, gen, n_cells=3, pca_dim=8, seed=0)
    got = memlib.ct_curve(list(train), list(test), gen.astype(np.float32), pca_dim=8)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert (got < -2).all()


def test_settings_are_checked_against_the_profile():
    with pytest.raises(memlib.MemlibError, match="'image_sise'.*image_size"):
        memlib.embed("fashion-mnist:test[:4]", image_sise=32)
