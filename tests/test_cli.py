"""The command line, run as a user runs it: `python -m memlib ...` in a subprocess.

Bad inputs must end with exit code 2 and exactly one line on stderr, `memlib: error: ...`,
naming the culprit, never a traceback. A small real `ct` and `embed` run check the outputs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = "timm:vit_tiny_patch16_224+random"     # 12 blocks, D=192, no download
TRAIN = "fashion-mnist:train[30000:30400]"
TEST = "fashion-mnist:test[:300]"
CT_COLUMNS = ["gen", "encoder", "token", "variant", "layer", "ct", "ct_lo", "ct_hi", "n_train",
              "n_test", "n_gen"]


@pytest.fixture(scope="module")
def cli_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture
def cli(cli_cache):
    """Run ``python -m memlib ARGS`` with an isolated cache; returns the CompletedProcess.

    One intra-op thread: these inputs are tiny, and on a busy 2-core machine torch/OpenMP
    thread teams make them several times slower (the results do not depend on it).
    """
    def run(*args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "MEMLIB_CACHE": str(cli_cache), "PYTHONUNBUFFERED": "1",
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
        return subprocess.run([sys.executable, "-m", "memlib", *map(str, args)], cwd=REPO,
                              env=full_env, capture_output=True, text=True, timeout=timeout)
    return run


def assert_one_line_error(proc: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit code 2, stderr is exactly one `memlib: error:` line containing every ``expected``."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, f"exit code {proc.returncode}; stderr:\n{proc.stderr}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("memlib: error: "), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


# --- help ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command, mentions", [
    ([], ["ct", "embed", "zoo", "run-notebooks", "encoders", "copies", "attribute",
          "fingerprint", "--profile", "fashion-mnist", "Ctrl-C", "SIGINT", "kill -TERM",
          "--json", "exit codes", "0 done", "2 a bad", "130 interrupted", "1 an unexpected"]),
    (["copies"], ["GEN", "--train", "--test", "--quantile", "--out", "--encoder", "--image-size",
                  "--token", "--precision", "--profile", "--params", "copies.csv", "summary.csv",
                  "gallery.png", "0 = raw pixels", "Wilson", "low-level", "semantic", "exact",
                  "--json"]),
    (["attribute"], ["GEN", "--db", "--out", "--encoder", "--image-size", "--token",
                     "--precision", "fingerprint_db", "unknown", "refused", "--json",
                     "precision (float32 vs bf16) is accepted"]),
    (["fingerprint", "add"], ["NAME", "GEN", "--family", "--architecture", "--model-seed",
                              "--db", "--encoder"]),
    (["ct"], ["--train", "--test", "--gen", "--out", "--encoder", "--image-size", "--variant",
              "--n-bootstrap", "--n-cells", "--seed", "--profile", "ct_lo", "--json",
              "exit codes"]),
    (["embed"], ["--out", "--encoder", "--image-size", "--token", "--batch-size", "--device",
                 "--precision", "bfloat16", "layerNN.npy", "meta.json"]),
    (["zoo"], ["list", "train", "sample", "--family", "--seed", "--out", "--recipe"]),
    (["run-notebooks"], ["--kernel", "--profile", "names"]),
])
def test_help(cli, command, mentions):
    proc = cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for word in mentions:
        assert word in proc.stdout, f"`{' '.join(command)} --help` does not mention {word}"


def test_encoders_lists_names(cli):
    proc = cli("encoders")
    assert proc.returncode == 0, proc.stderr
    assert "dinov2-s-offline" in proc.stdout and "pixels" in proc.stdout


# --- bad inputs --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "empty").mkdir()
    corrupt = root / "corrupt"
    corrupt.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(corrupt / "a_good.png")
    (corrupt / "b_broken.png").write_bytes(b"this is not a png")
    mixed = root / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(mixed / "small.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mixed / "large.png")
    np.savez(root / "no_images.npz", features=np.zeros((4, 28, 28), np.uint8))
    nan = np.full((4, 28, 28), 0.5, np.float32)
    nan[2, 3, 3] = np.nan
    np.savez(root / "nan.npz", images=nan)
    params = root / "params"
    params.mkdir()
    (params / "default.yaml").write_text((REPO / "params" / "default.yaml").read_text())
    (params / "typo.yaml").write_text("seed: 1\nimage_sise: 56\n")
    return root


def test_path_that_does_not_exist(cli, tmp_path):
    assert_one_line_error(cli("embed", tmp_path / "nowhere", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "nowhere", "no such file")


def test_empty_folder(cli, bad_inputs, tmp_path):
    assert_one_line_error(cli("embed", bad_inputs / "empty", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "empty", "no images")


def test_corrupt_image_is_named(cli, bad_inputs, tmp_path):
    assert_one_line_error(cli("embed", bad_inputs / "corrupt", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "b_broken.png")


def test_npz_without_images(cli, bad_inputs, tmp_path):
    assert_one_line_error(cli("embed", bad_inputs / "no_images.npz", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "no_images.npz", "'images'", "features")


def test_mixed_image_sizes_are_named(cli, bad_inputs, tmp_path):
    assert_one_line_error(cli("embed", bad_inputs / "mixed", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "mixed sizes", "small.png", "large.png")


def test_nan_pixels(cli, bad_inputs, tmp_path):
    assert_one_line_error(cli("embed", bad_inputs / "nan.npz", "--encoder", "pixels",
                              "--out", tmp_path / "o"), "nan.npz", "NaN")


def test_unknown_encoder_lists_known_ones(cli, tmp_path):
    line = assert_one_line_error(cli("embed", "fashion-mnist:test[:4]", "--encoder", "dinov3-x",
                                     "--out", tmp_path / "o"), "dinov3-x")
    assert "dinov2-s-offline" in line and "timm:" in line


def test_unknown_profile(cli):
    assert_one_line_error(cli("--profile", "huge", "encoders"), "unknown profile 'huge'",
                          "default", "smoke")


def test_profile_after_the_command_is_used(cli):
    """`run-notebooks --profile smoke` is how the Makefile calls it: the flag must be honoured."""
    assert_one_line_error(cli("encoders", "--profile", "huge"), "unknown profile 'huge'")
    assert_one_line_error(cli("run-notebooks", "--profile", "huge"), "unknown profile 'huge'")
    assert cli("encoders", "--profile", "smoke").returncode == 0


def test_params_file_with_unknown_key_is_named(cli, bad_inputs):
    assert_one_line_error(cli("--profile", "typo", "encoders",
                              env={"MEMLIB_PARAMS_DIR": str(bad_inputs / "params")}),
                          "'image_sise'", "image_size")


@pytest.mark.parametrize("args, expected", [
    (["ct", "--train", "x"], "required"),
    (["ct", "--train", "a", "--test", "b", "--gen", "c", "--out", "o", "--variant", "nope"],
     "--variant"),
    (["frobnicate"], "frobnicate"),
    ([], "COMMAND"),
])
def test_usage_errors_are_one_line(cli, args, expected):
    assert_one_line_error(cli(*args), expected)


# --- real runs -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gen_sets(tmp_path_factory):
    """200 fresh training-distribution images and 200 exact copies of images in TRAIN."""
    from memlib.data import load_images

    root = tmp_path_factory.mktemp("gen-sets")
    train = load_images(TRAIN).images
    fresh = load_images("fashion-mnist:train[50000:50200]").images
    np.savez(root / "fresh.npz", images=fresh[..., 0])
    np.savez(root / "copies.npz", images=train[:200, ..., 0])
    return root / "fresh.npz", root / "copies.npz"


def run_ct(cli, gen_sets, out, *encoder_args):
    fresh, copies = gen_sets
    proc = cli("ct", "--train", TRAIN, "--test", TEST, "--gen", fresh, "--gen", copies,
               *encoder_args, "--n-bootstrap", 10, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == CT_COLUMNS
    assert set(table["gen"]) == {str(fresh), str(copies)}
    assert (table["variant"] == "ct").all() and (table["token"] == "cls").all()
    assert (table["n_train"] == 400).all() and (table["n_test"] == 300).all()
    assert (table["n_gen"] == 200).all()
    assert (table["ct_lo"] <= table["ct"] + 1e-3).all()
    assert (table["ct"] <= table["ct_hi"] + 1e-3).all()
    return table[table["gen"] == str(fresh)], table[table["gen"] == str(copies)]


def test_ct_on_a_random_vit(cli, gen_sets, tmp_path):
    pytest.importorskip("memlib.ct")
    fresh, copies = run_ct(cli, gen_sets, tmp_path / "ct.csv", "--encoder", TINY,
                           "--image-size", 32)
    for part in (fresh, copies):
        assert sorted(part["layer"]) == list(range(1, 13))
        assert (part["encoder"] == TINY).all()
    assert (copies["ct"] < -5).all(), copies[["layer", "ct"]]
    assert (copies["ct_hi"] < -3).all(), copies[["layer", "ct_hi"]]
    assert (fresh["ct"].abs() < 3).all(), fresh[["layer", "ct"]]


def test_ct_on_pixels(cli, gen_sets, tmp_path):
    pytest.importorskip("memlib.ct")
    fresh, copies = run_ct(cli, gen_sets, tmp_path / "ct.csv", "--encoder", "pixels")
    assert list(fresh["layer"]) == [1] and list(copies["layer"]) == [1]
    assert (fresh["encoder"] == "pixels").all()
    assert copies["ct"].iloc[0] < -5
    assert abs(fresh["ct"].iloc[0]) < 3


def test_embed_writes_every_layer_and_meta(cli, tmp_path):
    out = tmp_path / "feats"
    proc = cli("embed", "fashion-mnist:test[:40]", "--encoder", TINY, "--image-size", 32,
               "--batch-size", 16, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in (out / "cls").iterdir())
    assert names == [f"layer{l:02d}.npy" for l in range(12)]
    for name in names:
        arr = np.load(out / "cls" / name, allow_pickle=False)
        assert arr.shape == (40, 192) and arr.dtype == np.float16
        assert np.isfinite(arr).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_layers"] == 12
    assert meta["encoder"] == TINY and meta["image_size"] == 32
    from memlib.encoders import native_bf16_cpu
    assert meta["precision"] == ("bfloat16-autocast" if native_bf16_cpu() else "float32")   # auto on the CPU


def test_embed_precision_flag(cli, tmp_path):
    out = tmp_path / "bf16"
    proc = cli("embed", "fashion-mnist:test[:16]", "--encoder", TINY, "--image-size", 32,
               "--precision", "bfloat16", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "meta.json").read_text())["precision"] == "bfloat16-autocast"


def test_params_file_flag_rejects_unknown_key(cli, tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 1\ntokn: mean\n")
    assert_one_line_error(cli("encoders", "--params", str(f)), "'tokn'", "token")


def test_run_notebooks_reads_the_params_file(cli, tmp_path):
    """`run-notebooks --params FILE` validates and uses the file, not the profile."""
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 1\nfigures_dir: somewhere\ntokn: mean\n")
    assert_one_line_error(cli("run-notebooks", "--params", str(f)), "'tokn'", "token")
    assert_one_line_error(cli("run-notebooks", "--params", str(tmp_path / "none.yaml")),
                          "none.yaml", "does not exist")


def test_zoo_sample_recipe_trains_and_writes_only_that_recipe(cli, tmp_path):
    """`zoo sample --recipe NAME` trains and samples the recipe-NAME models of zoo_recipes (each
    seed), nothing else; their manifests record the recipe; an unknown recipe is one line."""
    f = tmp_path / "recipes.yaml"
    f.write_text("zoo_train: 'fashion-mnist:train[:200]'\nzoo_families: [kde, gmm]\nzoo_seeds: [0, 1]\n"
                 "zoo_n_samples: 20\nzoo_memorize_families: []\nzoo_workers: 1\n"
                 "zoo_hparams: {kde: {sigma: 0.2}, gmm: {pca_dim: 5, n_components: 2, covariance: diag, "
                 "reg_covar: 0.001, max_iter: 5}}\nzoo_memorize_hparams: {}\n"
                 "zoo_recipes: {kde: {narrow: {sigma: 0.05}, wide: {sigma: 0.3}}}\n")
    out = tmp_path / "out"
    proc = cli("zoo", "sample", "--params", f, "--recipe", "narrow", "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(x.name for x in out.glob("*.npz")) == ["kde-recipe-narrow-s0.npz", "kde-recipe-narrow-s1.npz"]
    listed = cli("zoo", "list", "--params", f, "--recipe", "narrow", "--recipe", "wide")
    assert listed.returncode == 0, listed.stderr
    rows = [dict(kv.split("=", 1) for kv in line.split("  ")) for line in listed.stdout.splitlines()]
    assert [(r["variant"], r["recipe"], r["seed"], r["sampled"]) for r in rows] == [
        ("recipe-narrow", "narrow", "0", "True"), ("recipe-narrow", "narrow", "1", "True"),
        ("recipe-wide", "wide", "0", "False"), ("recipe-wide", "wide", "1", "False")]
    assert_one_line_error(cli("zoo", "sample", "--params", f, "--recipe", "nope"), "'nope'", "narrow, wide")


# --- copies --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted_gen(tmp_path_factory):
    """60 exact copies of TRAIN's first images followed by 100 fresh images."""
    from memlib.data import load_images

    path = tmp_path_factory.mktemp("planted") / "planted.npz"
    train = load_images(TRAIN).images[:60, ..., 0]
    fresh = load_images("fashion-mnist:train[50000:50100]").images[..., 0]
    np.savez(path, images=np.concatenate([train, fresh]))
    return path


def test_copies_flags_exact_copies_at_every_layer_and_fresh_images_almost_nowhere(
        cli, planted_gen, tmp_path):
    out = tmp_path / "copies"
    proc = cli("copies", planted_gen, "--train", TRAIN, "--test", TEST, "--encoder", TINY,
               "--image-size", 32, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    table = pd.read_csv(out / "copies.csv")
    assert list(table.columns) == ["sample", "layer", "distance", "nearest_train", "flagged",
                                   "sample_id", "train_id"]
    assert len(table) == 160 * 13 and sorted(table.layer.unique()) == list(range(13))
    exact, fresh = table[table["sample"] < 60], table[table["sample"] >= 60]
    assert exact.flagged.all() and (exact.distance == 0).all()
    assert (exact.nearest_train == exact["sample"]).all()
    assert (exact.train_id == "fashion-mnist:train/" + (30000 + exact["sample"]).astype(str)).all()
    assert fresh.groupby("layer").flagged.mean().max() <= 0.1
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.layer) == list(range(13)) and summary.space[0] == "pixels"
    assert (summary.n_flagged >= 60).all() and (summary.n_gen == 160).all()
    assert ((summary.share_lo <= summary.share_flagged)
            & (summary.share_flagged <= summary.share_hi)).all()
    assert (summary.ct < 0).all() and (summary.ct_lo <= summary.ct + 1e-3).all()
    assert (summary.expected_if_no_copying == 0.01).all()
    assert (out / "gallery.png").stat().st_size > 20_000
    assert "exact 60" in proc.stdout


def test_copies_on_pixels_only(cli, planted_gen, tmp_path):
    out = tmp_path / "px"
    proc = cli("copies", planted_gen, "--train", TRAIN, "--test", TEST, "--encoder", "pixels",
               "--quantile", 0.05, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(out / "copies.csv")
    assert set(table.layer) == {0} and len(table) == 160
    assert table[table["sample"] < 60].flagged.all()
    assert (pd.read_csv(out / "summary.csv").expected_if_no_copying == 0.05).all()


def test_copies_bad_quantile_is_one_line(cli, planted_gen, tmp_path):
    assert_one_line_error(cli("copies", planted_gen, "--train", TRAIN, "--quantile", 5,
                              "--out", tmp_path / "o"), "quantile", "0.01")


def test_attribute_without_a_database_is_one_line(cli, planted_gen, tmp_path):
    assert_one_line_error(cli("attribute", planted_gen, "--db", tmp_path / "nodb"),
                          "nodb", "no manifest.json")


# --- --json and exit codes (docs/api.md#json-output, #exit-codes) ---------------------------------

def _provenance_expected(encoder: str) -> dict:
    from importlib.metadata import version

    from memlib.encoders import compute_precision, weights_id
    return dict(encoder=encoder, weights_id=weights_id(encoder),
                precision=compute_precision("cpu", "auto"), device="cpu"), version("memlib")


def test_ct_json_is_one_document_with_numbers_settings_and_provenance(cli, gen_sets, tmp_path):
    fresh, copies = gen_sets
    out = tmp_path / "ct.csv"
    proc = cli("ct", "--train", TRAIN, "--test", TEST, "--gen", copies, "--gen", fresh,
               "--encoder", TINY, "--image-size", 32, "--n-bootstrap", 10, "--device", "cpu",
               "--json", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)                       # stdout holds the document and nothing else
    assert "C_T per layer" in proc.stderr               # the table went to stderr
    expected, version = _provenance_expected(TINY)
    assert doc["command"] == "ct" and doc["memlib_version"] == version
    assert {k: doc["provenance"][k] for k in expected} == expected
    assert doc["provenance"]["image_size"] == 32 and doc["provenance"]["token"] == "cls"
    assert doc["settings"] == dict(variant="ct", train=TRAIN, test=TEST, n_train=400, n_test=300,
                                   n_cells=3, pca_dim=64, seed=0, n_bootstrap=10, ci=0.95)
    by_gen = {s["gen"]: s for s in doc["sets"]}
    assert set(by_gen) == {str(copies), str(fresh)}
    assert by_gen[str(copies)]["layer"] == list(range(1, 13))
    assert max(by_gen[str(copies)]["ct"]) < -5 and max(map(abs, by_gen[str(fresh)]["ct"])) < 3
    table = pd.read_csv(out)                            # the same numbers as the CSV
    csv_ct = table[table["gen"] == str(copies)].sort_values("layer")["ct"].to_numpy()
    np.testing.assert_allclose(by_gen[str(copies)]["ct"], csv_ct, atol=5e-5)


def test_ct_json_without_out_writes_nothing(cli, gen_sets, tmp_path):
    fresh, _ = gen_sets
    proc = cli("ct", "--train", TRAIN, "--test", TEST, "--gen", fresh, "--encoder", "pixels",
               "--n-bootstrap", 10, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["out"] is None and doc["provenance"]["encoder"] == "pixels"
    assert doc["provenance"]["precision"] is None and len(doc["sets"][0]["ct"]) == 1


def test_ct_needs_out_or_json(cli, gen_sets):
    assert_one_line_error(cli("ct", "--train", TRAIN, "--test", TEST, "--gen", gen_sets[0],
                              "--encoder", "pixels"), "--out", "--json")


def test_copies_json(cli, planted_gen, tmp_path):
    proc = cli("copies", planted_gen, "--train", TRAIN, "--test", TEST, "--encoder", "pixels",
               "--quantile", 0.05, "--out", tmp_path / "px", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["command"] == "copies" and doc["settings"]["quantile"] == 0.05
    assert (doc["n_gen"], doc["n_train"], doc["n_test"]) == (160, 400, 300)
    (layer,) = doc["layers"]          # pixels only: one layer, so every flagged sample is 'exact'
    assert layer["layer"] == 0 and 60 <= layer["n_flagged"] <= 75 and layer["ct"] < 0
    assert doc["kinds"]["exact"] == layer["n_flagged"] and sum(doc["kinds"].values()) == 160
    assert Path(doc["files"]["copies.csv"]).exists()


def test_a_bad_input_with_json_is_exit_2_and_an_error_document(cli, tmp_path):
    proc = cli("attribute", "fashion-mnist:test[:30]", "--db", tmp_path / "nodb", "--json")
    line = assert_one_line_error(proc, "nodb", "no manifest.json")
    doc = json.loads(proc.stdout)
    assert doc == {"error": line.removeprefix("memlib: error: "), "exit_code": 2}


def test_a_usage_error_with_json_leaves_stdout_empty(cli):
    proc = cli("ct", "--json", "--train", "a", "--test", "b", "--gen", "c", "--frobnicate")
    assert_one_line_error(proc, "--frobnicate")
    assert proc.stdout == ""


def test_exit_codes_are_the_documented_ones(monkeypatch, capsys):
    """0 done, 2 bad input (MemlibError), 130 interrupted; a bug is not swallowed (Python's 1)."""
    from memlib import cli as cli_module
    from memlib.errors import InputError

    assert cli_module.EXIT_CODES == {"done": 0, "unexpected error": 1, "bad input": 2,
                                     "interrupted": 130}
    assert cli_module.main(["encoders"]) == 0
    assert "dinov2-s-offline" in capsys.readouterr().out

    def fail(exc):
        def run(args, params):
            raise exc
        return run
    monkeypatch.setattr(cli_module, "cmd_ct", fail(InputError("gen: broken")))
    args = ["ct", "--train", "a", "--test", "b", "--gen", "c", "--json"]
    assert cli_module.main(args) == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2
    monkeypatch.setattr(cli_module, "cmd_ct", fail(KeyboardInterrupt()))
    assert cli_module.main(args) == 130
    monkeypatch.setattr(cli_module, "cmd_ct", fail(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):   # the interpreter then exits with 1
        cli_module.main(args)
    text = (REPO / "docs" / "api.md").read_text()
    for code in ("| 0 |", "| 2 |", "| 130 |", "| 1 |"):
        assert code in text
