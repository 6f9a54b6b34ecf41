"""Every claim asked again in other embedding spaces (issue 36; memlib.embedding_spaces, notebook 06):
the generality rule's known answers, the Study / api plumbing of trained encoders, and the data
windows of the encoders against every generator and reference of the default profile."""
from __future__ import annotations

import pytest

from memlib import claims
from memlib.errors import InputError

KINDS = {"dino": "checkpoint", "vit": "vit", "cnn": "cnn", "pixels": "pixels"}
U = "untestable here"


# --- the generality rule (claims.generality_verdict), known answers ----------------------------------

@pytest.mark.parametrize("dino, vit, cnn, expected", [
    ("reproduced", "reproduced", "reproduced", "every space"),
    ("not reproduced", "not reproduced", "not reproduced", "every space"),   # the verdict, whatever it is
    ("partly", "partly", "not reproduced", "every ViT space"),
    ("partly", "partly", U, "every ViT space"),                              # no CNN number
    ("partly", "reproduced", "not reproduced", "only the checkpoint"),       # another word is another verdict
    ("reproduced", "partly", "reproduced", "mixed"),                         # the CNN agrees, the ViT does not
    ("reproduced", U, "reproduced", "mixed"),                                # no trained ViT number: never 'every ViT'
    ("reproduced", U, U, "untestable beyond the checkpoint"),
    (U, "reproduced", "reproduced", "untestable in the checkpoint"),
])
def test_generality_known_answers(dino, vit, cnn, expected):
    verdicts = {"dino": dino, "vit": vit, "cnn": cnn, "pixels": U}
    assert claims.generality_verdict(verdicts, KINDS) == expected
    assert expected in claims.GENERALITY_VERDICTS


def test_pixels_never_count_even_with_a_verdict():
    verdicts = {"dino": "partly", "vit": "partly", "cnn": "partly", "pixels": "not reproduced"}
    assert claims.generality_verdict(verdicts, KINDS) == "every space"


def test_every_trained_vit_must_agree():
    kinds = {**KINDS, "vit2": "vit"}
    base = {"dino": "partly", "vit": "partly", "cnn": "partly", "pixels": U}
    assert claims.generality_verdict({**base, "vit2": "partly"}, kinds) == "every space"
    assert claims.generality_verdict({**base, "vit2": "reproduced"}, kinds) == "mixed"
    assert claims.generality_verdict({**base, "vit2": U}, kinds) == "every space"


@pytest.mark.parametrize("verdicts, kinds, message", [
    ({"dino": "partly", "x": "partly"}, {"dino": "checkpoint"}, "no kind"),
    ({"dino": "partly"}, {"dino": "transformer"}, "kinds must be"),
    ({"dino": "holds"}, {"dino": "checkpoint"}, "verdicts must be"),
    ({"a": "partly", "b": "partly"}, {"a": "checkpoint", "b": "checkpoint"}, "exactly one checkpoint"),
    ({"a": "partly"}, {"a": "vit"}, "exactly one checkpoint"),
])
def test_bad_inputs_are_refused(verdicts, kinds, message):
    with pytest.raises(InputError, match=message):
        claims.generality_verdict(verdicts, kinds)


def test_the_generality_rule_has_its_history():
    import shutil
    import subprocess
    from pathlib import Path

    import pandas as pd
    when, commit, first_seen, why = claims.GENERALITY_HISTORY
    assert when == "before" and first_seen == "" and why
    out = claims.with_generality_history(pd.DataFrame({"claim": ["2-memorization-levels"]}))
    assert list(out.columns) == ["claim"] + claims.HISTORY_COLUMNS and out.rule_commit[0] == commit
    repo = Path(__file__).resolve().parent.parent
    if shutil.which("git") and (repo / ".git").exists():
        shown = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:memlib/claims.py"],
                               capture_output=True, text=True)
        if shown.returncode == 0:   # a shallow clone may lack it
            assert "def generality_verdict" in shown.stdout


# --- Study and memlib.api take the trained encoders' plain names, at their native size -------------

@pytest.fixture(scope="module")
def smoke_study(cache_dir, tmp_path_factory):
    """A smoke Study; its trained encoders are trained first as tests/test_trained_encoders.py
    trains them (one torch thread, the session cache), so that the session cache holds the
    weights those tests check byte for byte whichever file runs first."""
    from memlib import trained_encoders as te
    from memlib.params import load_params
    from memlib.study import Study
    P = load_params("smoke", overrides={"figures_dir": str(tmp_path_factory.mktemp("fig")), "device": "cpu"})
    for name, recipe in te.recipes(P).items():
        te.train_or_load(name, recipe, cache_dir=cache_dir, device="cpu", progress=False, threads=1)
    return Study(P)


def test_study_resolves_trained_names_and_native_sizes(smoke_study, fmnist_small):
    from memlib import trained_encoders as te
    study, P = smoke_study, smoke_study.params
    assert study.image_size_of() == P["image_size"] == 32                 # the profile's encoder
    for name in ("fmnist-vit", "fmnist-cnn"):
        full = study.encoder_name(name)
        assert full == te.resolve(name, P, train=False) and full.startswith(name + "@")
        assert study.encoder_name(name + "+shuffled") == full + "+shuffled"
        assert study.image_size_of(name) == study.image_size_of(name + "+shuffled") == 28
        feats = study.features(fmnist_small.subset(slice(0, 24)), encoder=name)
        assert feats.meta["encoder"] == full and feats.meta["image_size"] == 28
        assert len(feats) == te.recipes(P)[name].get("depth", sum(te.recipes(P)[name].get("stages", [])))
    assert study.encoder_name() == P["encoder"]
    assert len(study.features(fmnist_small.subset(slice(0, 8)), encoder="pixels")) == 1   # one layer


def test_study_with_a_trained_encoder_as_its_own(smoke_study, fmnist_small):
    """A Study whose profile encoder is a trained one: features, the final norm at 28 px."""
    from memlib.study import Study
    study = Study({**smoke_study.params, "encoder": "fmnist-vit"})
    feats = study.features(fmnist_small.subset(slice(0, 16)))
    assert feats.meta["image_size"] == 28 and study.image_size_of() == 28
    assert study.final_norm_features(feats)[0].shape == (16, feats[0].shape[1])


def test_api_embeds_with_a_trained_encoder(smoke_study, fmnist_small):
    import memlib
    feats = memlib.embed(fmnist_small.images[:12], profile="smoke", encoder="fmnist-cnn", device="cpu")
    assert feats.meta["encoder"] == smoke_study.encoder_name("fmnist-cnn") and feats.meta["image_size"] == 28
    p = memlib.api.settings("smoke", encoder="fmnist-vit")
    assert p["encoder"] == smoke_study.encoder_name("fmnist-vit") and p["image_size"] == 28
    from memlib.errors import EncoderError
    with pytest.raises(EncoderError, match="native 28 px"):
        memlib.embed(fmnist_small.images[:4], profile="smoke", encoder="fmnist-vit", image_size=32, device="cpu")


# --- the encoders' data, against every window a generator or reference of the default profile uses --

def test_default_encoder_windows_touch_no_generator_or_reference():
    """Computed here from the profile itself (not from trained_encoders.used_windows): every zoo
    model's and every gradient model's actual training spec (zoo_train shifted per seed; the
    gradient's first n images of it), the memorising subset, T, P_n (test), fresh, the sensitivity
    grid's second T and the recipe models' windows share no image with an encoder's train or eval
    window."""
    from memlib import trained_encoders as te
    from memlib import zoo
    from memlib.data import spec_window
    from memlib.params import load_params

    P = load_params("default")
    used = {zoo.train_spec(v, P, s) for _, v, s in zoo.zoo_models(P)}
    used |= {zoo.train_spec(v, P, s) for _, v, s in zoo.gradient_models(P)}
    used |= {zoo.seed_train_spec(P, s) for s in P["zoo_seeds"]}
    used |= {P[k] for k in ("zoo_memorize_train", "reference_train", "test", "fresh")}
    used |= {s for s in P["sensitivity_grid"]["reference_split"] if s != "default"}
    assert len(used) >= 8
    windows = [spec_window(s) for s in used]
    for name, r in te.recipes(P).items():
        for key in ("train", "eval"):
            d, split, a0, a1 = spec_window(r[key])
            for (e, split2, b0, b1), spec in zip(windows, used):
                assert (d, split) != (e, split2) or a1 <= b0 or b1 <= a0, (name, key, spec)
    assert zoo.train_spec("n16", P, 0) == "fashion-mnist:train[:16]"   # the gradient's windows are in `used`


def test_training_a_tiny_encoder_twice_gives_the_same_bytes(tmp_path):
    """Deterministic at a fixed seed: a tiny CNN recipe (64 images, one epoch) trained twice into
    two caches on one thread gives the same key, weights and accuracy; seed 1 gives others."""
    from memlib import trained_encoders as te
    from memlib.params import load_params

    recipe = dict(te.recipes(load_params("smoke"))["fmnist-cnn"], train="fashion-mnist:train[41000:41064]",
                  eval="fashion-mnist:test[300:364]", epochs=1, batch=32, width=8)
    got = []
    for i, r in enumerate((recipe, recipe, dict(recipe, seed=1))):
        name, m = te.train_or_load("fmnist-cnn", r, cache_dir=tmp_path / str(i), device="cpu",
                                   progress=False, threads=1)
        weights = (te.entry_folder("fmnist-cnn", m["key"], tmp_path / str(i)) / te.WEIGHTS_FILE).read_bytes()
        got.append((name, weights, m["test_accuracy"], m["epoch_loss"]))
    assert got[0] == got[1]
    assert got[2][0] != got[0][0] and got[2][1] != got[0][1]


# --- memlib.embedding_spaces: spaces, depth axis, the table's rows ----------------------------------

def test_spaces_and_relative_depth():
    import numpy as np

    from memlib import embedding_spaces as es
    from memlib.params import load_params
    assert es.spaces(load_params("default")) == {"dinov2-s-offline": "checkpoint", "fmnist-vit": "vit",
                                                  "fmnist-cnn": "cnn", "pixels": "pixels"}
    np.testing.assert_allclose(es.relative_depth([1, 6, 12], 12), [1 / 12, 0.5, 1.0])
    np.testing.assert_allclose(es.relative_depth([3, 6], 6), [0.5, 1.0])   # block 3 of 6 = block 6 of 12


def test_generality_rows_from_a_table():
    import pandas as pd

    from memlib import embedding_spaces as es
    kinds = {"dino": "checkpoint", "fmnist-vit": "vit", "fmnist-cnn": "cnn", "pixels": "pixels"}
    verdicts = {"dino": ["partly", "reproduced"], "fmnist-vit": ["partly", "not reproduced"],
                "fmnist-cnn": ["not reproduced", "not reproduced"], "pixels": [U, U]}
    rows = [dict(claim=c, encoder=e, kind=kinds[e], value=0.0, ci_low=0.0, ci_high=0.0, verdict=v[i], note="")
            for e, v in verdicts.items() for i, c in enumerate(("1a-depth-rise", "2-memorization-levels"))]
    table = pd.DataFrame(rows)
    out = es.generality_rows(table, kinds).set_index("claim")
    assert out.loc["1a-depth-rise", "verdict"] == "every ViT space"
    assert out.loc["2-memorization-levels", "verdict"] == "only the checkpoint"
    assert (out.encoder == es.GENERALITY_ENCODER).all()
    assert (out.rule_commit == claims.GENERALITY_HISTORY[1]).all()
    assert "fmnist-cnn (cnn): not reproduced" in out.loc["1a-depth-rise", "note"]


def test_pixels_rows_say_why():
    from memlib import embedding_spaces as es
    rows = es.untestable_rows("pixels", "pixels", es.pixel_reasons())
    assert [r["claim"] for r in rows] == list(es.CLAIM_IDS)
    assert all(r["verdict"] == U and "one layer" in r["note"] for r in rows)
