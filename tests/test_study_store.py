"""Study with feature_store: projected (the full profile's default): the public reference, its
curves, bootstraps and distances equal those of the full store (float32 store: exactly), the
sets scored only by C_T get projected entries and no full one, and settings the projected store
cannot serve are refused before anything is embedded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memlib.data import load_images
from memlib.errors import ParameterError
from memlib.params import load_params
from memlib.store import read_json
from memlib.study import Study

SETS = {"reference_train": "fashion-mnist:train[:80]", "test": "fashion-mnist:test[:50]"}
GENS = {"copies": "fashion-mnist:train[:48]", "fresh": "fashion-mnist:test[100:148]"}


def _params(tmp_path, store, **extra):
    """The smoke profile's tiny random ViT (12 blocks × 192-d) at 32 px, in float32 (compared
    bit for bit), on small sets; pca_dim 16 < 192, so the projected store has a basis; one
    cell, so that every layer of these small sets has a C_T (a cell needs more than 20 points)."""
    values = dict(figures_dir=str(tmp_path / "figures"), device="cpu", precision="float32",
                  batch_size=32, pca_dim=16, n_cells=1, n_bootstrap=10, feature_store=store, **SETS)
    return load_params("smoke", overrides={**values, **extra})


def _study(tmp_path, monkeypatch, store, **extra):
    monkeypatch.setenv("MEMLIB_CACHE", str(tmp_path / f"cache-{store}"))
    return Study(_params(tmp_path, store, **extra))


@pytest.fixture(scope="module")
def gens():
    return {name: load_images(spec, name=name) for name, spec in GENS.items()}


@pytest.fixture(scope="module")
def full(tmp_path_factory, gens):
    """The full store's numbers (computed once for the module)."""
    with pytest.MonkeyPatch.context() as mp:
        return _score(_study(tmp_path_factory.mktemp("full"), mp, "full"), gens)


def _score(study, gens):
    """What the notebooks read from the public reference for sets scored only by C_T."""
    ref = study.reference()
    feats = [study.ct_features(g.images, name=name) for name, g in gens.items()]
    rows = [study.curve_rows(ref, f, set=name) for name, f in zip(gens, feats)]
    return dict(curves=ref.curves(feats), rows=rows,
                dist=ref.layer_distances(feats[0]),
                subsets=ref.subset_curves(ref.layer_distances(feats[1]), [np.arange(24), np.arange(24, 48)]),
                boot=ref.curve_bootstrap(feats[1], n_boot=15, seed=3))


def _full_entries(root):
    """n_images of every full feature entry under the cache ``root``, sorted."""
    return sorted(read_json(m)["n_images"] for m in (root / "features").glob("*/meta.json"))


def _projected_entries(root):
    """(n_images, stored dim) of every projected entry under ``root``, sorted."""
    return sorted((read_json(m)["n_images"], read_json(m)["dim"])
                  for m in (root / "projected").glob("*/*/meta.json"))


def test_projected_store_gives_the_full_stores_ct_and_writes_only_projections(tmp_path, monkeypatch, gens, full):
    study = _study(tmp_path, monkeypatch, "projected", projected_dtype="float32")
    proj = _score(study, gens)
    assert np.isfinite(full["curves"]).any()
    np.testing.assert_array_equal(proj["curves"], full["curves"])
    for a, b in zip(proj["rows"], full["rows"]):                         # curve_rows: ct, band, n_gen
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    np.testing.assert_array_equal(proj["dist"].dist, full["dist"].dist)
    np.testing.assert_array_equal(proj["dist"].cells, full["dist"].cells)
    np.testing.assert_array_equal(proj["subsets"], full["subsets"])
    for a, b in zip(proj["boot"], full["boot"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    root = tmp_path / "cache-projected"
    # only T has a full entry (the basis is fit from it); P_n and the generated sets were
    # embedded straight into the projected store: 16 values a layer, one entry each (and T's)
    assert _full_entries(root) == [80]
    assert _projected_entries(root) == [(48, 16), (48, 16), (50, 16), (80, 16)]
    assert study.ct_features(gens["fresh"].images, name="fresh").dim == 16

    # the same reference scores full features too (a set another analysis embeds in full),
    # projecting them as the store does: the full store's numbers again
    ref = study.reference()
    full_feats = [study.features(g.images, name=name) for name, g in gens.items()]
    assert full_feats[0].dim == 192
    np.testing.assert_array_equal(ref.curves(full_feats), full["curves"])
    assert ref.n_layers == 12 and ref.variant == "ct"


def test_float16_store_is_close(tmp_path, monkeypatch, gens, full):
    proj = _score(_study(tmp_path, monkeypatch, "projected", projected_dtype="float16"), gens)
    ok = np.isfinite(full["curves"])
    assert (np.isfinite(proj["curves"]) == ok).all()
    assert np.abs(proj["curves"][ok] - full["curves"][ok]).max() < 0.05


def test_bad_combinations_are_refused_before_embedding(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="pca_dim: null"):
        _study(tmp_path, monkeypatch, "projected", **{"pca_dim": None})
    with pytest.raises(ParameterError, match="projected_dtype"):
        _study(tmp_path, monkeypatch, "projected", projected_dtype="int8")
    with pytest.raises(ParameterError, match="feature_store must be one of"):
        _study(tmp_path, monkeypatch, "projecte")
    study = _study(tmp_path, monkeypatch, "projected")
    for variant in ("ct_modified", "ct_test"):
        with pytest.raises(ParameterError, match=f"{variant} fits its PCA on another set"):
            study.reference(variant=variant)
    assert not (tmp_path / "cache-projected").exists()            # nothing was embedded
    # raw pixels have no feature cache: the key does not apply to them
    Study({**_params(tmp_path, "projected", pca_dim=None), "encoder": "pixels"})


def test_profiles_and_the_sensitivity_grid():
    from memlib.sensitivity_eval import setting_study
    assert load_params("default")["feature_store"] == "full"
    full = load_params("full")
    assert full["feature_store"] == "projected" and full["projected_dtype"] == "float16"
    # the grid varies what a basis is keyed by (pca_dim null included): always full features
    s = setting_study({**full, "device": "cpu", "precision": "float32"}, {"pca_dim": None})
    assert s.params["feature_store"] == "full" and not s.projected_store


def test_an_encoder_no_wider_than_pca_dim_keeps_its_full_features(tmp_path, monkeypatch, gens):
    """Nothing to project when the features are at most pca_dim wide (a small trained encoder in
    notebook 06): the projected store falls back to the full one and writes no projection."""
    study = _study(tmp_path, monkeypatch, "projected", pca_dim=192)        # the tiny ViT is 192-d
    assert study.projected_store and not study.projects()
    got = _score(study, gens)
    np.testing.assert_array_equal(got["curves"], _score(_study(tmp_path, monkeypatch, "full", pca_dim=192), gens)["curves"])
    assert _projected_entries(tmp_path / "cache-projected") == []
