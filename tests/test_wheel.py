"""memlib as an installed wheel, outside this checkout (issue 33).

Builds the wheel from a copy of the sources, installs it (no dependencies) into a fresh
virtual environment in a temporary folder, and runs it from there: ``import memlib,
memlib.zoo``, ``memlib --help`` and ``memlib ct --json`` on three folders of PNGs with a
random-initialised tiny ViT. The fresh environment reads its dependencies (numpy, torch, timm,
...) from this interpreter's site-packages through a ``.pth`` line, which adds the folder to
``sys.path`` without running its ``.pth`` files, so the checkout's editable install stays
invisible: no network, about 30 s.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = "timm:vit_tiny_patch16_224+random"


def _run(*cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


def _setuptools_ok() -> bool:
    """setuptools >= 77 (pyproject.toml's build requirement) is installed here."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return int(version("setuptools").split(".")[0]) >= 77
    except PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin folder, work folder) with the freshly built wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "memlib", src / "memlib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    # offline with this environment's setuptools when it is new enough (torch pulls in a
    # recent one); else pip fetches pyproject's build requirement from PyPI
    offline = ["--no-build-isolation", "--no-index"] if _setuptools_ok() else []
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q", "-w", root / "dist",
         src, cwd=root)
    wheels = list((root / "dist").glob("memlib-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=root).stdout.strip())
    deps = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                        *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "memlib_test_deps.pth").write_text("\n".join(deps) + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "-q", wheels[0], cwd=root)
    work = root / "work"
    work.mkdir()
    return dict(python=python, bin=venv / "bin", work=work, wheel=wheels[0], purelib=purelib)


def _env(installed) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEMLIB_PARAMS_DIR")}
    return {**env, "PATH": f"{installed['bin']}{os.pathsep}{env.get('PATH', '')}",
            "MEMLIB_CACHE": str(installed["work"] / "cache"), "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def test_the_wheel_ships_every_subpackage_and_the_profiles(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "memlib").rglob("__init__.py")}
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    for profile in ("default", "smoke", "full"):
        assert f"memlib/profiles/{profile}.yaml" in names


def test_import_outside_the_checkout(installed):
    code = ("import memlib, memlib.zoo, memlib.zoo.families.kde; "
            "from memlib.locations import profiles_dir, checkout_root, cache_root; "
            "from memlib.params import load_params; "
            "print(memlib.__file__); print(checkout_root()); print(profiles_dir()); "
            "print(load_params('smoke')['encoder']); print(memlib.__version__)")
    out = _run(installed["python"], "-c", code, cwd=installed["work"],
               env=_env(installed)).stdout.splitlines()
    assert Path(out[0]).is_relative_to(installed["purelib"]), out[0]   # the wheel, not the checkout
    assert out[1] == "None"
    assert Path(out[2]) == installed["purelib"] / "memlib" / "profiles"
    assert out[3] == TINY
    assert out[4] == "0.1.0"


def test_console_script_help(installed):
    proc = _run(installed["bin"] / "memlib", "--help", cwd=installed["work"], env=_env(installed))
    assert "exit codes" in proc.stdout and "--json" in proc.stdout and "attribute" in proc.stdout


def test_ct_runs_on_folders_outside_the_checkout(installed):
    """Exact copies of the training folder score C_T << 0 at every layer; fresh images ~0."""
    from PIL import Image

    from memlib.data import load_images

    work = installed["work"]
    sets = {"train": load_images("fashion-mnist:train[30000:30300]").images,
            "test": load_images("fashion-mnist:test[:200]").images,
            "fresh": load_images("fashion-mnist:train[50000:50150]").images}
    sets["copies"] = sets["train"][:150]
    for name, images in sets.items():
        (work / name).mkdir()
        for i, img in enumerate(images[..., 0]):
            Image.fromarray(img).save(work / name / f"{i:04d}.png")
    proc = _run(installed["bin"] / "memlib", "ct", "--train", "train", "--test", "test",
                "--gen", "copies", "--gen", "fresh", "--encoder", TINY, "--image-size", 32,
                "--n-bootstrap", 10, "--json", cwd=work, env=_env(installed))
    doc = json.loads(proc.stdout)
    assert doc["memlib_version"] == "0.1.0" and doc["provenance"]["encoder"] == TINY
    assert doc["settings"]["n_train"] == 300 and doc["settings"]["n_test"] == 200
    copies, fresh = doc["sets"]
    assert copies["gen"] == "copies" and copies["layer"] == list(range(1, 13))
    assert max(copies["ct"]) < -5, copies["ct"]
    assert max(abs(c) for c in fresh["ct"]) < 3, fresh["ct"]
    assert not (work / "figures").exists()            # nothing written besides the cache
    assert np.isfinite(copies["ct_lo"]).all()


def test_run_notebooks_outside_the_checkout_says_what_is_missing(installed, tmp_path):
    """The notebook runner is the one command that needs the checkout: one line, exit 2,
    nothing written."""
    proc = subprocess.run([str(installed["bin"] / "memlib"), "run-notebooks", "--profile", "smoke"],
                          cwd=tmp_path, env=_env(installed), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("memlib: error: no notebooks in ") and "checkout" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
