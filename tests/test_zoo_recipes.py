"""Zoo training recipes (memlib.zoo.recipes): a recipe overrides an architecture's hyper-parameters,
is recorded in every manifest and in the cache key of its models, shares the default recipe's
seed windows, and leaves the cache key of every existing model byte for byte as it was."""
import pytest

from memlib import zoo
from memlib.errors import ParameterError
from memlib.params import load_params

TINY_VAE = {"latent": 4, "width": 8, "steps": 3, "batch": 16, "lr": 1e-3, "beta": 1.0}


def tiny_params(**extra):
    p = {"zoo_train": "fashion-mnist:train[:64]", "zoo_memorize_train": "fashion-mnist:train[:32]",
         "test": "fashion-mnist:test[:40]", "device": "cpu", "zoo_families": ["kde", "vae"],
         "zoo_seeds": [0, 1], "zoo_n_samples": 12, "zoo_memorize_families": [],
         "zoo_memorize_seeds": [0], "zoo_copy_quantile": 0.01,
         "zoo_hparams": {"kde": {"sigma": 0.1}, "vae": TINY_VAE},
         "zoo_memorize_hparams": {}, "zoo_threads": 1, "zoo_workers": 1,
         "zoo_recipes": {"vae": {"half-steps": {"steps": 2}, "lr-x2": {"lr": 2e-3}}}}
    p.update(extra)
    return p


# Cache folders of today's models, computed with the code before recipes existed (commit 4aff029)
# for a fixed data hash: a recipe-aware cache_folder must give exactly these names.
BEFORE_RECIPES = {
    ("default", "kde", "standard", 1): "kde-standard-s1-ee57ca2b95b845c9",
    ("default", "vae", "standard", 1): "vae-standard-s1-ba8342c0164be981",
    ("default", "diffusion", "standard", 1): "diffusion-standard-s1-15977caaebfc80e1",
    ("default", "pixelcnn", "standard", 1): "pixelcnn-standard-s1-357ac37581ba012c",
    ("default", "diffusion-narrow", "standard", 1): "diffusion-narrow-standard-s1-97af47f8e011ff5a",
    ("default", "kde", "memorize", 0): "kde-memorize-s0-298801a3edd97466",
    ("smoke", "vae-mlp", "standard", 1): "vae-mlp-standard-s1-f0799e32574c545e",
}


@pytest.mark.parametrize("case", sorted(BEFORE_RECIPES))
def test_default_recipe_keys_are_byte_identical_to_before(case, tmp_path):
    profile, arch, variant, seed = case
    p = load_params(profile)
    got = zoo.cache_folder(arch, variant, seed, p, tmp_path, data_hash="0" * 16)
    assert got.name == BEFORE_RECIPES[case]
    # adding recipes to the profile changes no default model's key either
    with_recipes = {**p, "zoo_recipes": {arch: {"other": dict([next(_changed(p["zoo_hparams"][arch]))])}}}
    assert zoo.cache_folder(arch, variant, seed, with_recipes, tmp_path, data_hash="0" * 16).name == BEFORE_RECIPES[case]


def _changed(hp):
    """One (key, value) pair that differs from hp."""
    for k, v in hp.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            yield k, v * 2
        elif v == "ml":
            yield k, 0.1


def test_recipe_hparams_variant_names_and_key():
    p = tiny_params()
    assert zoo.recipe_variant("default") == "standard"
    assert zoo.recipe_variant("half-steps") == "recipe-half-steps"
    assert zoo.recipe_of("recipe-lr-x2") == "lr-x2"
    assert [zoo.recipe_of(v) for v in ("standard", "memorize", "n16")] == ["default"] * 3
    assert zoo.zoo_hparams("vae", "recipe-half-steps", p) == {**TINY_VAE, "steps": 2}
    assert zoo.zoo_hparams("vae", "recipe-lr-x2", p) == {**TINY_VAE, "lr": 2e-3}
    assert zoo.zoo_hparams("vae", "standard", p) == TINY_VAE
    a = zoo.cache_folder("vae", "standard", 0, p, "/c", data_hash="h")
    b = zoo.cache_folder("vae", "recipe-half-steps", 0, p, "/c", data_hash="h")
    c = zoo.cache_folder("vae", "recipe-lr-x2", 0, p, "/c", data_hash="h")
    assert len({a, b, c}) == 3 and b.name.startswith("vae-recipe-half-steps-s0-")
    # the same overrides under another recipe name are another model: the name is in the key
    renamed = tiny_params(zoo_recipes={"vae": {"fewer-steps": {"steps": 2}}})
    assert zoo.cache_folder("vae", "recipe-fewer-steps", 0, renamed, "/c", data_hash="h").name[-16:] != b.name[-16:]


def test_recipe_models_share_the_default_seed_windows():
    p = tiny_params()
    assert zoo.recipe_models(p) == [("vae", "recipe-half-steps", 0), ("vae", "recipe-half-steps", 1),
                                    ("vae", "recipe-lr-x2", 0), ("vae", "recipe-lr-x2", 1)]
    assert zoo.recipe_models(p, include_default=True)[:2] == [("vae", "standard", 0), ("vae", "standard", 1)]
    for seed in (0, 1):
        assert zoo.train_spec("recipe-lr-x2", p, seed) == zoo.train_spec("standard", p, seed)
    assert zoo.train_spec("recipe-lr-x2", p, 1) == "fashion-mnist:train[64:128]"
    assert zoo.recipe_models(tiny_params(zoo_recipes={})) == []
    assert zoo.recipe_models({k: v for k, v in tiny_params().items() if k != "zoo_recipes"}) == []


@pytest.mark.parametrize("recipes, match", [
    ({"gan": {"a": {"steps": 1}}}, "no zoo_hparams entry"),
    ({"vae": {"default": {"steps": 1}}}, "'default' is today's"),
    ({"vae": {"Half Steps": {"steps": 1}}}, "lower-case"),
    ({"vae": {"a": {"depth": 1}}}, "not hyper-parameters of vae"),
    ({"vae": {"a": {"steps": 3}}}, "changes nothing"),
    ({"vae": {"a": {}}}, "non-empty"),
    ({"vae": []}, "non-empty mapping"),
])
def test_bad_recipe_tables_are_refused(recipes, match):
    with pytest.raises(ParameterError, match=match):
        zoo.recipe_models(tiny_params(zoo_recipes=recipes))


def test_unknown_recipe_and_architecture_outside_the_zoo_are_refused():
    with pytest.raises(ParameterError, match="no recipe 'lr-half'"):
        zoo.zoo_hparams("vae", "recipe-lr-half", tiny_params())
    with pytest.raises(ParameterError, match="not in zoo_families"):
        zoo.recipe_models(tiny_params(zoo_families=["kde"]))


@pytest.mark.parametrize("profile", ["default", "smoke", "full"])
def test_profiles_recipes_are_valid(profile):
    p = load_params(profile)
    assert zoo.recipe_table(p) == (p.get("zoo_recipes") or {})
    zoo.recipe_models(p)


def test_recipe_is_recorded_in_manifests_and_the_list(tmp_path):
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        p = tiny_params()
        models = [("vae", "standard", 0), ("vae", "recipe-half-steps", 0)]
        rows = zoo.zoo_sample(p, models=models, cache_dir=tmp_path, progress=False, workers=1)
    finally:
        torch.set_num_threads(previous)
    assert [r["recipe"] for r in rows] == ["default", "half-steps"]
    assert [r["hparams"]["steps"] for r in rows] == [3, 2]
    assert rows[0]["train_spec"] == rows[1]["train_spec"] == "fashion-mnist:train[:64]"
    assert rows[0]["loss_summary"]["n_steps"] == 3 and rows[1]["loss_summary"]["n_steps"] == 2
    listed = zoo.zoo_list(p, tmp_path, models=zoo.recipe_models(p, include_default=True))
    assert [(r["recipe"], r["seed"], r["sampled"]) for r in listed] == [
        ("default", 0, True), ("default", 1, False), ("half-steps", 0, True), ("half-steps", 1, False),
        ("lr-x2", 0, False), ("lr-x2", 1, False)]
    from memlib import store
    assert store.read_json(listed[2]["folder"] + "/train.json")["recipe"] == "half-steps"


def test_select_models_picks_recipe_variants():
    p = tiny_params()
    assert zoo.select_models(p, None, None, None, recipes=["lr-x2"]) == [("vae", "recipe-lr-x2", 0),
                                                                         ("vae", "recipe-lr-x2", 1)]
    assert zoo.select_models(p, None, [1], None, recipes=["default", "half-steps"]) == [
        ("vae", "standard", 1), ("vae", "recipe-half-steps", 1)]
    with pytest.raises(ParameterError, match="'fast'.*known: half-steps, lr-x2"):
        zoo.select_models(p, None, None, None, recipes=["fast"])
    with pytest.raises(ParameterError, match="not of the memorization gradient"):
        zoo.select_models(p, None, None, None, recipes=["lr-x2"], gradient=True)
    with pytest.raises(ParameterError, match="known: none"):
        zoo.select_models(tiny_params(zoo_recipes={}), None, None, None, recipes=["default"])
