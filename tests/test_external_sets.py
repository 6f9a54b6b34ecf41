"""The `full` profile's path: notebooks 03 and 04 score external sample folders (one folder or
.npz per model run) with a timm encoder, without code changes. A tiny random-init ViT and a few
dozen Fashion-MNIST images stand in for DINOv2-L/14 and published samples."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from memlib.data import load_fashion_mnist

REPO = Path(__file__).resolve().parent.parent


def test_notebooks_03_04_score_external_folders(tmp_path):
    images, _ = load_fashion_mnist("train")
    sets = {}
    for run in range(2):                      # two runs of one "published model": folders of PNGs
        folder = tmp_path / f"ext-run{run}"
        folder.mkdir()
        for i, im in enumerate(images[40000 + 60 * run: 40000 + 60 * (run + 1)]):
            Image.fromarray(im).save(folder / f"{i:03d}.png")
        sets.setdefault("published", []).append(str(folder))
    np.savez(tmp_path / "single.npz", images=images[41000:41060])   # a model with one set only
    sets["single"] = str(tmp_path / "single.npz")
    out = tmp_path / "figures"
    env = {**os.environ, "MEMLIB_CACHE": os.environ.get("MEMLIB_CACHE", str(REPO / ".cache" / "memlib"))}
    for nb in ("03_layer_trends", "04_fingerprinting"):
        code = ("import papermill; papermill.execute_notebook("
                f"'notebooks/{nb}.ipynb', '{tmp_path}/{nb}.ipynb', parameters=dict(profile='smoke', "
                f"figures_dir='{out}', encoder='timm:vit_tiny_patch16_224+random', external_sets={sets!r}, "
                "query_sizes=[30, 60]), progress_bar=False, kernel_name='python3')")
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    trends = pd.read_csv(out / "layer_trends.csv")
    assert {"published", "single"} <= set(trends.architecture)
    ext = trends[(trends.architecture == "published") & (trends.token == "cls") & (trends.reference == "public")]
    assert len(ext) == 2 * 12 and ext.ct.notna().all()
    accuracy = pd.read_csv(out / "fingerprint_accuracy.csv")
    assert set(accuracy[accuracy.corruption == "none"].query_size) == {30, 60}
