"""Zoo: every family trains and samples; seeds reproduce; the cache is reused and trusted only when complete."""
from pathlib import Path

import numpy as np
import pytest

from memlib import store, zoo
from memlib.zoo.families.pixelcnn import _PixelNet
from memlib.data import load_fashion_mnist
from memlib.errors import InputError, ParameterError
from memlib.params import load_params

# a few steps of each family: enough to exercise the code paths, not to learn anything
TINY = {
    "kde": {"sigma": 0.1},
    "gmm": {"pca_dim": 8, "n_components": 3, "covariance": "full", "reg_covar": 1e-3, "max_iter": 20},
    "vae": {"latent": 4, "width": 8, "steps": 3, "batch": 16, "lr": 1e-3, "beta": 1.0},
    "gan": {"latent": 8, "width": 8, "steps": 3, "batch": 16, "lr": 2e-4},
    "diffusion": {"width": 8, "steps": 3, "batch": 16, "lr": 1e-3, "ema": 0.9, "timesteps": 50,
                  "sample_steps": 3},
    "pixelcnn": {"kernel": 5, "width": 8, "depth": 1, "n_mix": 2, "steps": 3, "batch": 8, "lr": 1e-3},
    "vae-mlp": {"latent": 4, "width": 8, "hidden": 16, "steps": 3, "batch": 16, "lr": 1e-3, "beta": 1.0},
    "gan-shallow": {"latent": 8, "width": 8, "steps": 3, "batch": 16, "lr": 2e-4},
    "diffusion-narrow": {"width": 8, "steps": 3, "batch": 16, "lr": 1e-3, "ema": 0.9, "timesteps": 50,
                         "sample_steps": 2},
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on shared cores: one thread avoids waits on a descheduled sibling thread."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def train():
    return load_fashion_mnist("train")[0][:64]


def tiny_params(**extra):
    p = {"zoo_train": "fashion-mnist:train[:64]", "zoo_memorize_train": "fashion-mnist:train[:32]",
         "test": "fashion-mnist:test[:40]", "device": "cpu", "zoo_families": ["kde", "vae"],
         "zoo_seeds": [0, 1], "zoo_n_samples": 12, "zoo_memorize_families": ["kde"],
         "zoo_memorize_seeds": [0], "zoo_copy_quantile": 0.01, "zoo_hparams": TINY,
         "zoo_memorize_hparams": {"kde": {"sigma": 0.0}}, "zoo_threads": 1, "zoo_workers": 1}
    p.update(extra)
    return p


def test_registry_has_six_families():
    assert set(zoo.FAMILIES) >= set(TINY) and len(zoo.FAMILIES) >= 6
    for name, cls in zoo.FAMILIES.items():
        assert cls.name == name and cls.hparams_doc


@pytest.mark.parametrize("family", sorted(TINY))
def test_family_trains_and_samples(train, family):
    m = zoo.train_model(family, train, seed=0, hparams=TINY[family], progress=False, device="cpu", threads=1)
    x, extras = m.sample(10)
    assert x.shape == (10, 28, 28) and x.dtype == np.uint8
    assert x.std() > 0, "samples are constant"
    assert np.isfinite(m.losses).all() and m.train_seconds >= 0
    if family == "kde":
        assert extras["source_index"].shape == (10,)
    # same seed -> identical samples (fresh model object, fresh training)
    again = zoo.train_model(family, train, seed=0, hparams=TINY[family], progress=False, device="cpu", threads=1)
    assert np.array_equal(again.sample(10)[0], x)
    other = zoo.train_model(family, train, seed=1, hparams=TINY[family], progress=False, device="cpu", threads=1)
    assert not np.array_equal(other.sample(10)[0], x)


def test_state_round_trip_gives_same_samples(train):
    for family in ("gmm", "pixelcnn"):
        m = zoo.train_model(family, train, seed=0, hparams=TINY[family], progress=False, device="cpu", threads=1)
        clone = zoo.FAMILIES[family](TINY[family], m.model.device)
        clone.load_state(m.model.state(), train)
        m2 = zoo.TrainedModel(family, clone, TINY[family], 0, [], 0.0)
        assert np.array_equal(m.sample(8)[0], m2.sample(8)[0])


def test_hparams_are_checked(train):
    with pytest.raises(ParameterError, match="missing"):
        zoo.train_model("vae", train, seed=0, hparams={"latent": 4})
    with pytest.raises(ParameterError, match="unknown hyper-parameters"):
        zoo.train_model("kde", train, seed=0, hparams={"sigma": 0.1, "bandwidth": 2})
    with pytest.raises(ParameterError, match="unknown zoo family"):
        zoo.train_model("flowmatch", train, seed=0, hparams={})
    with pytest.raises(InputError, match="multiple of 4"):
        zoo.train_model("kde", np.zeros((4, 30, 30), np.uint8), seed=0, hparams={"sigma": 0.1})
    with pytest.raises(InputError, match="uint8"):
        zoo.train_model("kde", np.zeros((4, 28, 28)), seed=0, hparams={"sigma": 0.1})


@pytest.mark.parametrize("family", ["gmm", "vae", "gan", "diffusion", "pixelcnn", "vae-mlp", "gan-shallow",
                                    "diffusion-narrow"])
def test_colour_images(family):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    m = zoo.train_model(family, rgb, seed=0, hparams=TINY[family], progress=False, device="cpu", threads=1)
    x, _ = m.sample(4)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8


@pytest.fixture
def vae_fits(monkeypatch):
    """Counts the VAE fits run in this test (each call of ``VAE.fit``)."""
    fits = []
    fit = zoo.FAMILIES["vae"].fit

    def counting_fit(self, images, progress):
        fits.append(len(images))
        return fit(self, images, progress)

    monkeypatch.setattr(zoo.FAMILIES["vae"], "fit", counting_fit)
    return fits


def test_cache_reuse_and_resume(tmp_path, vae_fits):
    p = tiny_params()
    first = zoo.zoo_samples("vae", 0, "standard", p, tmp_path, progress=False)
    assert vae_fits == [64]
    assert first.images.shape == (12, 28, 28) and first.images.dtype == np.uint8
    man = first.manifest
    for key in ("family", "variant", "seed", "hparams", "data_hash", "loss_summary", "train_seconds",
                "sample_seconds", "n_samples", "copy_rate", "nn_ratio", "pixel_fd"):
        assert key in man, key
    assert man["family"] == "vae" and man["n_samples"] == 12 and man["hparams"] == TINY["vae"]
    assert (first.folder / "model.safetensors").exists() and (first.folder / "manifest-n12.json").exists()

    second = zoo.zoo_samples("vae", 0, "standard", p, tmp_path, progress=False)
    assert len(vae_fits) == 1, "a finished model was retrained"
    assert np.array_equal(second.images, first.images) and second.manifest == man

    # samples without a manifest are not trusted: they are redrawn (from the stored model)
    (first.folder / "manifest-n12.json").unlink()
    store.write_npz(first.folder / "samples-n12.npz", images=np.zeros((12, 28, 28), np.uint8))
    third = zoo.zoo_samples("vae", 0, "standard", p, tmp_path, progress=False)
    assert len(vae_fits) == 1
    assert np.array_equal(third.images, first.images)

    # weights without train.json are not trusted: the model is retrained (same seed, same result)
    (first.folder / "train.json").unlink()
    (first.folder / "manifest-n12.json").unlink()
    fourth = zoo.zoo_samples("vae", 0, "standard", p, tmp_path, progress=False)
    assert len(vae_fits) == 2
    assert np.array_equal(fourth.images, first.images)

    # another sample size reuses the model
    more = zoo.zoo_samples("vae", 0, "standard", p, tmp_path, n_samples=20, progress=False)
    assert len(vae_fits) == 2 and more.images.shape == (20, 28, 28)


def test_cache_key_changes_with_hparams_seed_and_data(tmp_path):
    p = tiny_params()
    base = zoo.cache_folder("vae", "standard", 0, p, tmp_path)
    hp = {**TINY, "vae": {**TINY["vae"], "steps": 4}}
    assert zoo.cache_folder("vae", "standard", 0, tiny_params(zoo_hparams=hp), tmp_path) != base
    assert zoo.cache_folder("vae", "standard", 1, p, tmp_path) != base
    assert zoo.cache_folder("vae", "standard", 0, tiny_params(zoo_train="fashion-mnist:train[1:65]"), tmp_path) != base
    assert base.name.startswith("vae-standard-s0-")


def test_memorize_variant_copies(tmp_path):
    p = tiny_params()
    s = zoo.zoo_samples("kde", 0, "memorize", p, tmp_path, progress=False)
    assert s.manifest["variant"] == "memorize" and s.manifest["n_train"] == 32
    assert s.manifest["hparams"] == {"sigma": 0.0}
    assert s.manifest["copy_rate"] == 1.0 and s.manifest["exact_copy_rate"] == 1.0
    train = load_fashion_mnist("train")[0][:32]
    assert np.array_equal(s.images, train[s.extras["source_index"]])


def test_zoo_models_list_train_sample(tmp_path):
    p = tiny_params()
    models = zoo.zoo_models(p)
    assert models == [("kde", "standard", 0), ("kde", "standard", 1), ("vae", "standard", 0),
                      ("vae", "standard", 1), ("kde", "memorize", 0)]
    rows = zoo.zoo_list(p, tmp_path)
    assert len(rows) == 5 and not any(r["trained"] or r["sampled"] for r in rows)
    trained = zoo.zoo_train(p, families=["kde"], seeds=[1], cache_dir=tmp_path, progress=False)
    assert [(r["family"], r["seed"]) for r in trained] == [("kde", 1)]
    out = tmp_path / "export"
    sampled = zoo.zoo_sample(p, families=["kde"], variants=["memorize"], cache_dir=tmp_path, out=out,
                             progress=False)
    assert len(sampled) == 1 and (out / "kde-memorize-s0.npz").exists()
    rows = {(r["family"], r["variant"], r["seed"]): r for r in zoo.zoo_list(p, tmp_path)}
    assert rows["kde", "standard", 1]["trained"] and not rows["kde", "standard", 1]["sampled"]
    assert rows["kde", "standard", 1]["train_spec"] == "fashion-mnist:train[64:128]"      # seed 1's own window
    assert rows["kde", "memorize", 0]["train_spec"] == p["zoo_memorize_train"]
    assert rows["kde", "memorize", 0]["sampled"] and rows["kde", "memorize", 0]["copy_rate"] == 1.0
    with pytest.raises(ParameterError, match="not in this profile"):
        zoo.zoo_train(p, families=["gan"], cache_dir=tmp_path)


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_profiles_define_a_valid_zoo(profile):
    try:
        p = load_params(profile)
    except ParameterError as exc:
        pytest.skip(f"profile {profile}: {exc}")
    models = zoo.zoo_models(p)  # validates every family's hyper-parameters
    assert models and {f for f, _, _ in models} <= set(zoo.FAMILIES)
    if profile == "default":
        standard = {f for f, v, _ in models if v == "standard"}
        assert len(standard) >= 9 and len(p["zoo_seeds"]) >= 3 and p["zoo_n_samples"] >= 1000
        assert len({zoo.family_of(a) for a in standard}) < len(standard)      # some family has 2 architectures
        assert len({f for f, v, _ in models if v == "memorize"}) >= 2


def test_pixelcnn_is_causal_and_sampling_matches_training():
    import torch
    torch.manual_seed(0)
    net = _PixelNet(5, 16, 1, 2, (28, 28, 1))
    for prm in net.parameters():  # random, non-zero weights everywhere (pos and ctx start at 0)
        torch.nn.init.normal_(prm, std=0.3)
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    ctx = net.row_context(x, range(28)).repeat_interleave(28, dim=1)
    params = net(net.windows(net.pad(x)), slice(None), ctx)  # (2, 784, 6)
    for p in (0, 29, 200, 417, 783):
        grad, = torch.autograd.grad(params[0, p].sum(), x, retain_graph=True)
        seen = grad[0, 0].flatten().abs() > 0
        assert not seen[p:].any(), f"position {p} sees pixels at or after itself"
        assert p < 30 or seen[:p].any()
    # the one-position sampling path gives the same numbers as the full forward pass
    with torch.no_grad():
        canvas = net.pad(x.detach())
        w = net.sampling_weights()
        for i, j in [(0, 0), (3, 17), (27, 27)]:
            row_ctx = net.row_context(x.detach(), range(i, i + 1))[:, 0]
            assert torch.allclose(net.step(canvas, i, j, row_ctx, w), params[:, i * 28 + j], atol=1e-5)


@pytest.mark.slow
def test_parallel_workers_match_sequential(tmp_path):
    p = tiny_params()
    par = zoo.zoo_sample(p, families=["kde"], variants=["standard"], cache_dir=tmp_path / "a", workers=2,
                         progress=False)
    seq = zoo.zoo_sample(p, families=["kde"], variants=["standard"], cache_dir=tmp_path / "b", workers=1,
                         progress=False)
    assert [(r["family"], r["seed"]) for r in par] == [("kde", 0), ("kde", 1)]
    for a, b in zip(par, seq):
        x = store.read_npz(Path(a["folder"]) / "samples-n12.npz")["images"]
        y = store.read_npz(Path(b["folder"]) / "samples-n12.npz")["images"]
        assert np.array_equal(x, y)


@pytest.mark.slow
def test_results_do_not_depend_on_the_worker_count(tmp_path):
    """The same zoo at 2 and at 4 worker processes: identical samples, metrics and weights
    (each worker computes with zoo_threads = 1, whatever the machine's cores)."""
    p = tiny_params(zoo_families=["kde", "gmm", "vae", "gan", "diffusion", "pixelcnn"], zoo_seeds=[0])
    runs = {w: zoo.zoo_sample(p, variants=["standard"], cache_dir=tmp_path / f"w{w}", workers=w, progress=False)
            for w in (2, 4)}
    timing = {"train_seconds", "train_cpu_seconds", "sample_seconds", "sample_cpu_seconds", "folder"}
    assert len(runs[2]) == len(runs[4]) == 6
    for a, b in zip(runs[2], runs[4]):
        assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
        for name in ("samples-n12.npz", "model.safetensors"):
            assert (Path(a["folder"]) / name).read_bytes() == (Path(b["folder"]) / name).read_bytes(), \
                f"{a['family']}: {name} differs between 2 and 4 workers"


def test_architectures_belong_to_families_and_differ_from_them(train):
    assert {a: zoo.family_of(a) for a in ("vae-mlp", "gan-shallow", "diffusion-narrow", "kde")} == {
        "vae-mlp": "vae", "gan-shallow": "gan", "diffusion-narrow": "diffusion", "kde": "kde"}
    assert all(zoo.family_of(a) in zoo.FAMILIES for a in zoo.FAMILIES)      # every family is registered
    with pytest.raises(ParameterError, match="unknown zoo architecture"):
        zoo.family_of("vae-transformer")
    for arch, base in (("vae-mlp", "vae"), ("gan-shallow", "gan")):
        a = zoo.train_model(arch, train, seed=0, hparams=TINY[arch], progress=False, device="cpu", threads=1)
        b_hp = {k: v for k, v in TINY[arch].items() if k in zoo.FAMILIES[base].hparams_doc}
        b = zoo.train_model(base, train, seed=0, hparams=b_hp, progress=False, device="cpu", threads=1)
        assert set(a.model.state()) != set(b.model.state())               # a different network


def test_each_seed_trains_on_its_own_window():
    p = tiny_params(reference_train="fashion-mnist:train[50000:50100]", fresh="fashion-mnist:train[55000:55100]")
    assert [zoo.seed_train_spec(p, s) for s in (0, 1, 2)] == [
        "fashion-mnist:train[:64]", "fashion-mnist:train[64:128]", "fashion-mnist:train[128:192]"]
    assert zoo.train_spec("standard", p, 1) == "fashion-mnist:train[64:128]"
    assert zoo.train_spec("n16", p, 1) == "fashion-mnist:train[64:80]"
    assert zoo.train_spec("memorize", p, 1) == p["zoo_memorize_train"]
    zoo.check_seed_windows(p)
    for key, bad in (("reference_train", "fashion-mnist:train[100:200]"), ("fresh", "fashion-mnist:train[0:10]")):
        with pytest.raises(ParameterError, match=f"overlaps {key}"):
            zoo.check_seed_windows({**p, key: bad})
    with pytest.raises(ParameterError, match="overlaps test"):
        zoo.check_seed_windows({**p, "zoo_train": "fashion-mnist:test[:64]"})
    with pytest.raises(ParameterError, match="past the end"):
        zoo.check_seed_windows({**p, "zoo_train": "fashion-mnist:train[:30000]", "zoo_seeds": [0, 2]})
    with pytest.raises(ParameterError, match="seed 5 .* overlaps reference_train"):   # a bad profile: too many seeds
        zoo.zoo_models({**load_params("default"), "zoo_seeds": [0, 1, 2, 3, 4, 5]})
    with pytest.raises(ParameterError, match="start:stop"):
        zoo.seed_train_spec({**p, "zoo_train": "fashion-mnist:train"}, 1)


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_profiles_keep_seeds_t_and_fresh_apart(profile):
    from memlib.data import windows_overlap
    p = load_params(profile)
    zoo.check_seed_windows(p)
    windows = [zoo.seed_train_spec(p, s) for s in p["zoo_seeds"]]
    assert len(set(windows)) == len(windows)
    assert not any(windows_overlap(a, b) for i, a in enumerate(windows) for b in windows[i + 1:])
    assert not any(windows_overlap(w, p[k]) for w in windows for k in ("reference_train", "test", "fresh"))


def test_manifest_records_the_seed_window(tmp_path):
    p = tiny_params(zoo_families=["kde"], zoo_memorize_families=[])
    manifests = {s: zoo.zoo_samples("kde", s, "standard", p, cache_dir=tmp_path, progress=False).manifest
                 for s in (0, 1)}
    assert manifests[0]["train_spec"] == "fashion-mnist:train[:64]"
    assert manifests[1]["train_spec"] == "fashion-mnist:train[64:128]"
    assert manifests[0]["data_hash"] != manifests[1]["data_hash"]


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_second_architectures_cost_no_more_than_their_base(profile):
    """A second architecture trains no longer than its family's base (steps × batch, and DDIM
    steps for diffusion), so adding it keeps make figures inside its budget (measured times:
    the zoo manifests / figures/zoo_cost.csv)."""
    p = load_params(profile)
    for arch in p["zoo_families"]:
        base = zoo.family_of(arch)
        if base == arch:
            continue
        a, b = zoo.zoo_hparams(arch, "standard", p), zoo.zoo_hparams(base, "standard", p)
        assert a["steps"] * a["batch"] <= b["steps"] * b["batch"], arch
        assert a["width"] <= b["width"] and a.get("sample_steps", 0) <= b.get("sample_steps", 0), arch
