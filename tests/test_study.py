"""Study: which images go through which encoder, and that cut rows equal embedded rows."""
from __future__ import annotations

import numpy as np
import pytest

from memlib.data import load_images
from memlib.params import load_params
from memlib.study import Study


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLIB_CACHE", str(tmp_path / "cache"))
    return Study(load_params("smoke", overrides={"figures_dir": str(tmp_path / "figures")}))


def _entries(tmp_path):
    """n_images of every feature cache entry written so far, sorted."""
    from memlib.store import read_json
    return sorted(read_json(m)["n_images"] for m in (tmp_path / "cache" / "features").glob("*/meta.json"))


def test_first_rows_are_cut_from_the_whole_set_with_the_profile_encoder(study, tmp_path):
    images = load_images("fashion-mnist:test[:40]")
    cut = study.features(images, first=10)
    assert _entries(tmp_path) == [40]                      # the whole set, embedded once
    whole = study.features(images)
    for layer in (0, len(whole) - 1):
        np.testing.assert_array_equal(cut[layer], whole[layer][:10])


def test_whole_set_used_false_embeds_only_the_first_rows(study, tmp_path):
    images = load_images("fashion-mnist:test[:40]")
    first = study.features(images, first=10, whole_set_used=False)
    assert first.n == 10 and _entries(tmp_path) == [10]   # the other 30 never embedded
    other = study.features(images, encoder=study.params["encoder"] + "+shuffled", first=10)
    assert other.n == 10 and _entries(tmp_path) == [10, 10]
    assert not np.allclose(first[0], other[0])


def test_own_training_reference_embeds_only_what_it_uses(study, tmp_path):
    """As notebooks 03/04 build it: the first 20 images of zoo_train (1,000 in smoke) as T."""
    ref = study.reference(train="zoo_train", n_train=20, whole_set_used=False)
    assert ref.n_layers == 12
    assert _entries(tmp_path) == sorted([20, len(study.images("test"))])
    assert study.reference(train="zoo_train", n_train=20, whole_set_used=False) is ref


def test_bad_precision_fails_when_the_study_starts(tmp_path):
    from memlib.errors import EncoderError
    params = load_params("smoke", overrides={"figures_dir": str(tmp_path), "precision": "bf16"})
    with pytest.raises(EncoderError, match="precision must be one of auto, float32, bfloat16"):
        Study(params)
