"""The compute floor's FLOP counts (bench/floor_flops.py) against hand formulas, the ledger route
of bench/compute_floor.py, and the image estimate's response to the profile
(docs/performance.md#the-compute-floor)."""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("timm")
from bench import compute_floor, floor_flops, floor_images  # noqa: E402
from memlib.params import load_params  # noqa: E402

TINY = "timm:vit_tiny_patch16_224+random"
REPO = Path(__file__).resolve().parent.parent


def test_tiny_vit_flops_equal_the_hand_formula():
    """ViT-Ti/16 at 32 px: 2×2 patches + CLS = 5 tokens, D = 192, MLP 768, 12 blocks. The
    counted linear layers and patch conv plus 4·T²·D attention equal 2·T·(4D² + 2DH) + 4·T²·D
    per block + 2·P·(3·16²)·D to 1e-9 (biases and norms are in neither)."""
    got = floor_flops.vit_flops(TINY, 32)
    assert (got["tokens"], got["dim"], got["blocks"]) == (5, 192, 12)
    hand = floor_flops.hand_vit_flops(blocks=12, tokens=5, dim=192, mlp_hidden=768, patch_in=3 * 16 * 16, n_patches=4)
    assert got["matmul"] == pytest.approx(hand, rel=1e-9)
    assert got["attention"] == 12 * 4 * 5 * 5 * 192
    assert 0 < got["elementwise"] < 0.1 * got["matmul"]   # norms, GELU, adds: a few % of the matmuls


def test_default_encoder_flops_at_112px():
    """DINOv2-S/14 at 112 px (65 tokens, D = 384): 2.867 GFLOP per image, the hand formula."""
    got = floor_flops.vit_flops("dinov2-s-offline", 112)
    hand = floor_flops.hand_vit_flops(blocks=12, tokens=65, dim=384, mlp_hidden=1536, patch_in=3 * 14 * 14, n_patches=64)
    assert got["tokens"] == 65 and got["matmul"] == pytest.approx(hand, rel=1e-9)
    assert got["matmul"] == pytest.approx(2.867e9, rel=1e-3)


def test_vae_training_step_is_forward_plus_backward_by_hand():
    """One step of the conv VAE (width 32, latent 16, 28×28, batch 64): the backward pass costs
    twice the forward pass, except the input gradient of the first conv, which autograd skips:
    64 · 2 · (3 · MACs − MACs(conv1)). MACs per image: conv1 14²·32·1·16, conv2 7²·64·32·16,
    enc linear 3136·32, dec linear 16·3136, convT1 7²·64·32·16, convT2 14²·32·1·16. A batch of
    16 (the gradient's 16-image models) costs exactly a quarter."""
    hp = {"latent": 16, "width": 32, "steps": 1, "batch": 64, "lr": 0.002, "beta": 1.0}
    conv1 = 14 * 14 * 32 * 16
    macs = conv1 + 7 * 7 * 64 * 32 * 16 + 3136 * 32 + 16 * 3136 + 7 * 7 * 64 * 32 * 16 + 14 * 14 * 32 * 16
    step = floor_flops.zoo_train_step_flops("vae", hp, n_train=10_000)
    assert step["matmul"] == pytest.approx(64 * 2 * (3 * macs - conv1), rel=1e-9)
    small = floor_flops.zoo_train_step_flops("vae", hp, n_train=16)
    assert small["matmul"] == pytest.approx(step["matmul"] / 4, rel=1e-9)
    sample = floor_flops.zoo_sample_flops("vae", hp, n=1000, probe=8)   # decoder only
    dec = 16 * 3136 + 7 * 7 * 64 * 32 * 16 + 14 * 14 * 32 * 16
    assert sample["matmul"] == pytest.approx(1000 * 2 * dec, rel=1e-9)


def test_the_ledger_gives_exact_counts_per_notebook(tmp_path):
    """A ledger's lines are attributed to notebooks by the committed timings and counted; a line
    of an earlier run in the same cache is left out."""
    import pandas as pd
    params = load_params("default")
    timings = pd.read_csv(compute_floor.REPO / params["figures_dir"] / "executed" / "timings.csv")
    end = {nb: pd.Timestamp(t) for nb, t in zip(timings.notebook, timings.finished)}   # the committed run
    took = dict(zip(timings.notebook, timings.seconds))
    at = lambda nb, share: (end[nb] - pd.Timedelta(seconds=share * took[nb])).isoformat()   # inside nb's run
    when = [(5000, at("01_ct_sanity", 0.75)), (2000, at("01_ct_sanity", 0.25)), (500, at("02_memorization_levels", 0.5)),
            (999, (end["00_ct_by_hand"] - pd.Timedelta(days=1)).isoformat())]    # the last: an earlier run
    lines = [dict(encoder="dinov2-s-offline", image_size=112, precision="bfloat16-autocast", n_images=n,
                  n_entry=n, seconds=1.0, kind="features", key=f"k{i}", finished=t, pid=1)
             for i, (n, t) in enumerate(when)]
    path = tmp_path / "embed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    table = compute_floor.vit_work(params, path).set_index("notebook")
    assert table.loc["01_ct_sanity", "n_images"] == 7000 and table.loc["02_memorization_levels", "n_images"] == 500
    assert set(table.source) == {"ledger"} and set(table.index) == {"01_ct_sanity", "02_memorization_levels"}
    assert table.loc["01_ct_sanity", "flops"] == pytest.approx(7000 * 2.867e9, rel=1e-3)


def test_the_estimate_follows_the_profile():
    """Twice the samples per zoo model: notebook 03 embeds (27 standard + 2 memorize) × 1000
    more images, notebook 04 the same (its corrupted pool is capped by robust_n), the rest the same."""
    params = load_params("default")
    base = {(r["notebook"], r["encoder"], r["image_size"]): r["n_images"] for r in floor_images.estimate(params)}
    more = {(r["notebook"], r["encoder"], r["image_size"]): r["n_images"]
            for r in floor_images.estimate({**params, "zoo_n_samples": 2 * params["zoo_n_samples"]})}
    n_sets = len(params["zoo_families"]) * len(params["zoo_seeds"]) + len(params["zoo_memorize_families"])
    diff = {k: more[k] - base[k] for k in base if more[k] != base[k]}
    assert diff == {("03_layer_trends", params["encoder"], params["image_size"]): n_sets * params["zoo_n_samples"]}


def _run(wall, notebook_seconds, zoo_cpu=None, ledger=None):
    import pandas as pd
    return dict(wall_seconds=wall, commit="abc1234", ledger=ledger,
                timings=pd.DataFrame({"notebook": ["03_layer_trends"], "seconds": [notebook_seconds]}),
                zoo_cost=None if zoo_cpu is None else pd.DataFrame(
                    {"architecture": ["vae"] * len(zoo_cpu), "train_cpu_seconds": zoo_cpu,
                     "sample_seconds": [1.0] * len(zoo_cpu)}))


def test_floor_table_adds_the_parts_and_divides():
    """ViT FLOPs over the bf16 rate, zoo FLOPs over the fp32 rate, summed per notebook and over
    the run; the ratio is each kind's measured seconds over its floor (zoo: CPU-s over 2
    workers); a kind without a zoo_cost.csv has no measured zoo seconds."""
    import pandas as pd
    rates = {"amd": {"bf16": 100.0, "fp32": 50.0}, "intel": {"bf16": 1000.0, "fp32": 200.0}}
    vit = pd.DataFrame([dict(notebook="03_layer_trends", encoder="e", image_size=112, n_images=10,
                             flops=1e12, how="", source="estimate")])
    zoo_t = pd.DataFrame([dict(architecture="vae", stage="train", models=3, flops=1e12, how="")])
    runs = {"amd": _run(3000.0, 120.0, zoo_cpu=[30.0, 50.0]), "intel": _run(2400.0, 60.0)}
    t = compute_floor.floor_table(vit, zoo_t, rates, runs).set_index("part")
    nb = t.loc["notebook 03_layer_trends"]
    assert nb.amd_floor_s == pytest.approx(10 + 20) and nb.intel_floor_s == pytest.approx(1 + 5)
    assert nb.amd_ratio == pytest.approx(120 / 30) and nb.intel_ratio == pytest.approx(60 / 6)
    assert t.loc["zoo vae train", "amd_measured_s"] == 40 and t.loc["zoo vae train", "amd_ratio"] == pytest.approx(2.0)
    assert np.isnan(t.loc["zoo vae train", "intel_measured_s"])
    assert t.loc["whole run", "amd_floor_s"] == pytest.approx(30)
    assert t.loc["whole run", "intel_ratio"] == pytest.approx(2400 / 6)
    alone = compute_floor.floor_table(vit, zoo_t, rates, {"intel": runs["intel"]}).set_index("part")
    assert np.isnan(alone.loc["whole run", "amd_measured_s"]) and np.isnan(alone.loc["whole run", "amd_ratio"])


def test_the_recorded_runs_are_read_with_their_ledgers(tmp_path):
    """bench.cross_cpu.record → compute_floor.recorded_runs: each kind's wall time, timings,
    zoo cost and ledger; vit_work_of_runs counts the images once and keeps each kind's seconds."""
    import pandas as pd
    from bench import cross_cpu
    params = load_params("default")
    start = pd.Timestamp("2026-12-07T10:00:00")
    for cpu, factor in (("AMD EPYC 7B13", 2.0), ("Intel(R) Xeon(R) Processor", 1.0)):
        figures = tmp_path / cpu[:3] / "figures"
        (figures / "executed").mkdir(parents=True)
        pd.DataFrame([dict(claim="1a", value=0.1, ci_low=0.0, ci_high=0.2, verdict="partly")]).to_csv(figures / "claims.csv", index=False)
        pd.DataFrame(dict(notebook=["01_ct_sanity"], seconds=[100.0 * factor],
                          finished=[(start + pd.Timedelta(seconds=100 * factor)).isoformat()])
                     ).to_csv(figures / "executed" / "timings.csv", index=False)
        (figures / "provenance.json").write_text(json.dumps({"git": {"commit": "abc1234def"}, "machine": {"cpu": cpu}}))
        pd.DataFrame({"architecture": ["vae"], "train_cpu_seconds": [10.0 * factor], "sample_seconds": [1.0]}
                     ).to_csv(figures / "zoo_cost.csv", index=False)
        ledger = tmp_path / cpu[:3] / "embed.jsonl"
        ledger.write_text(json.dumps(dict(encoder="dinov2-s-offline", image_size=112, precision="bfloat16-autocast",
                                          n_images=5000, n_entry=5000, seconds=30.0 * factor, kind="features", key="k",
                                          finished=(start + pd.Timedelta(seconds=50)).isoformat(), pid=1)) + "\n")
        cross_cpu.record(figures, wall_seconds=3000 * factor, peak_rss_gb=3.5, command="make figures",
                         out=tmp_path / "cross-cpu", ledger=ledger)
    runs = compute_floor.recorded_runs(tmp_path / "cross-cpu")
    assert set(runs) == {"amd", "intel"} and runs["amd"]["wall_seconds"] == 6000
    assert runs["intel"]["zoo_cost"].train_cpu_seconds.iloc[0] == 10 and runs["amd"]["ledger"].name == "embed-ledger.jsonl"
    vit = compute_floor.vit_work_of_runs(params, runs).set_index("notebook")
    assert vit.loc["01_ct_sanity", "n_images"] == 5000
    assert vit.loc["01_ct_sanity", "amd_measured_s"] == 60 and vit.loc["01_ct_sanity", "intel_measured_s"] == 30


def test_encoders_trained_here_are_counted_on_their_own_networks():
    """The default profile's fmnist-vit (28 px, patch 4: 49 patches + CLS = 50 tokens, width 128,
    MLP 256, 6 blocks) by the hand formula, not at DINOv2-S/14's size; the ledger's name
    (``fmnist-vit@<key>``, ``+shuffled``) finds the recipe. fmnist-cnn: no attention, one
    output per residual block."""
    params = load_params("default")
    vit = floor_flops.encoder_flops("fmnist-vit@0123456789abcdef+shuffled", 28, params)
    hand = floor_flops.hand_vit_flops(blocks=6, tokens=50, dim=128, mlp_hidden=256, patch_in=3 * 4 * 4, n_patches=49)
    assert (vit["tokens"], vit["dim"], vit["blocks"]) == (50, 128, 6)
    assert vit["matmul"] == pytest.approx(hand, rel=1e-9)
    cnn = floor_flops.encoder_flops("fmnist-cnn@0123456789abcdef", 28, params)
    assert cnn["attention"] == 0 and cnn["blocks"] == sum(params["trained_encoders"]["fmnist-cnn"]["stages"])
    assert 0 < cnn["matmul"] < floor_flops.vit_flops("dinov2-s-offline", 28)["matmul"]
    assert floor_flops.encoder_flops("dinov2-s-offline+random", 112, params)["matmul"] == pytest.approx(2.867e9, rel=1e-3)
