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
