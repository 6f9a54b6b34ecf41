"""Study: which images go through which encoder, that cut rows equal embedded rows, and how
claims.csv is written (each notebook merges its rows; a full run starts from an empty file)."""
from __future__ import annotations

from pathlib import Path

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


def _claim(name, verdict="partly", value=0.5):
    return dict(claim=name, statement=f"statement {name}", rule="r", metric="m", value=value,
                ci_low=value - 0.5, ci_high=float("nan"), paper_value="p", verdict=verdict)


def test_claims_returns_only_this_notebooks_rows_and_merges_the_file(study):
    import pandas as pd
    from memlib.claims import HISTORY_COLUMNS, RULE_HISTORY
    a, b, c = "1a-depth-rise", "2-memorization-levels", "3-architecture-signature"
    shown = study.claims([_claim(b), _claim(a, value=0.25)])
    assert shown.claim.tolist() == [a, b]
    shown = study.claims([_claim(c, verdict="reproduced")])
    assert shown.claim.tolist() == [c] and shown.verdict.tolist() == ["reproduced"]
    shown = study.claims([_claim(a, verdict="not reproduced", value=0.125)])   # a rerun replaces
    assert shown.claim.tolist() == [a]
    path = study.figures_dir / "claims.csv"
    table = pd.read_csv(path, keep_default_na=False)
    assert table.claim.tolist() == [a, b, c]
    assert table.verdict.tolist() == ["not reproduced", "partly", "reproduced"]
    assert path.read_text().splitlines()[1].startswith(f"{a},statement {a},r,m,0.1250,-0.3750,,p,not reproduced,after,")
    # every row carries its rule's history, from memlib.claims.RULE_HISTORY
    assert list(table.columns[-len(HISTORY_COLUMNS):]) == HISTORY_COLUMNS
    for claim, *history in table[["claim"] + HISTORY_COLUMNS].itertuples(index=False):
        assert tuple(history) == RULE_HISTORY[claim]


def test_claims_refuses_a_claim_without_a_rule_history(study):
    from memlib.errors import InputError
    with pytest.raises(InputError, match="no RULE_HISTORY entry"):
        study.claims([_claim("9-unknown")])
    assert not (study.figures_dir / "claims.csv").exists()


def test_claims_rejects_an_unknown_verdict(study):
    from memlib.errors import InputError
    with pytest.raises(InputError, match="'9-x': verdict must be one of"):
        study.claims([_claim("9-x", verdict="maybe")])
    row = _claim("9-y")
    del row["rule"]
    with pytest.raises(InputError, match="lacks rule"):
        study.claims([row])
    assert not (study.figures_dir / "claims.csv").exists()


def test_a_full_run_rebuilds_claims_a_partial_run_keeps_the_other_rows(tmp_path, monkeypatch):
    """run_notebooks deletes claims.csv before a run of every notebook, never before a subset."""
    import papermill

    from memlib import notebooks
    from memlib.params import write_params
    figures = tmp_path / "figures"
    params_file = write_params(tmp_path / "params.yaml", "smoke", figures_dir=str(figures))
    claims_csv = figures / "claims.csv"
    started = []   # (notebook, did claims.csv exist when it started)

    def fake_execute(path, out, **kwargs):
        started.append((Path(path).stem[:2], claims_csv.exists()))
        claims_csv.write_text("claim\n" + Path(path).stem[:2] + "\n")   # the notebook writes its row

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    all_names = [p.stem[:2] for p in notebooks.notebook_paths()]
    figures.mkdir()
    claims_csv.write_text("claim\nstale\n")
    notebooks.run_notebooks("smoke", ["02"], kernel="python3", params_file=params_file)
    assert started == [("02", True)]                     # a subset: the file is kept and merged into
    started.clear()
    notebooks.run_notebooks("smoke", kernel="python3", params_file=params_file)
    assert started[0] == (all_names[0], False)           # every notebook: starts from no file
    assert [n for n, _ in started] == all_names
    started.clear()
    notebooks.run_notebooks("smoke", all_names, kernel="python3", params_file=params_file)
    assert started[0] == (all_names[0], False)           # every notebook named one by one: the same
