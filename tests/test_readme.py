"""The README is a front page that works: its Python runs, its links resolve, its verdicts are
the ones in figures/claims.csv, and it stays short enough to read."""
import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_readme_python_runs_and_says_what_it_claims():
    """Each ```python block runs as written (tiny arrays, no images, no encoder)."""
    blocks = python_blocks(README)
    assert blocks, "the README has no ```python block"
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    # the snippet's near-copies must come out as copying, one C_T per layer, with an interval
    ct_line = re.search(r"C_T = (-?\d+\.\d)", out.getvalue())
    assert ct_line and float(ct_line.group(1)) < -2, out.getvalue()
    ct, lo, hi = namespace["ct"], namespace["lo"], namespace["hi"]
    assert ct.shape == lo.shape == hi.shape == (len(namespace["gen_layers"]),)
    assert (lo <= ct + 1e-9).all() and (ct <= hi + 1e-9).all()


def test_python_blocks_are_found():
    text = "x\n```python\na = 1\n```\n```bash\nb\n```\n```python\nb = 2\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = 2\n"]


def test_readme_is_a_front_page():
    lines = README.splitlines()
    assert len(lines) <= 180
    claims_at = next(i for i, line in enumerate(lines) if line.startswith("| claim"))
    assert claims_at < 80, f"the claims table starts at line {claims_at + 1}"


def test_readme_links_resolve():
    targets = re.findall(r"\]\(((?!https?://)[^)#\s]+)(?:#[^)]*)?\)", README)
    assert targets
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_docs_cite_only_what_is_in_the_repository():
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text()
        assert not re.search(r"DESIGN\.md|research/|research notes", text), path.name


README_CLAIM_ROWS = [  # claims.csv's claim -> how its row of the README's claims table starts
    ("1a-depth-rise", "| 1a ·"), ("1b-copy-signal-depth", "| 1b ·"), ("1-depth-trend", "| 1 (net, secondary) ·"),
    ("2-memorization-levels", "| 2 ·"), ("3-architecture-signature", "| 3 ·"),
    ("3-recipe", "| 3-recipe ·"), ("3-recipe-family", "| 3-recipe-family ·"),
    ("4a-fingerprint-full", "| 4a ·"), ("4a-shape-only", "| 4a shape only (secondary) ·"),
    ("4b-vs-ct-baselines", "| 4b vs C_T ·"), ("4b-vs-feature-baselines", "| 4b vs features ·")]


@pytest.mark.parametrize("claim,row_start", README_CLAIM_ROWS)
def test_readme_verdicts_match_claims_csv(claim, row_start):
    claims = pd.read_csv(REPO / "figures" / "claims.csv")
    assert sorted(claims.claim) == sorted(c for c, _ in README_CLAIM_ROWS)
    verdict = claims.set_index("claim").loc[claim, "verdict"]
    row = next(line for line in README.splitlines() if line.startswith(row_start))
    assert f"**{verdict}**" in row, (claim, verdict, row)
    history = claims.set_index("claim").loc[claim, "rule_history"]   # before / after its numbers
    assert f"(*{history}*" in row, (claim, history, row)


def test_design_module_map_matches_the_tree():
    """docs/design.md's module map names every module of memlib/ (a package as `name/`), and
    only those."""
    import re
    repo = Path(__file__).resolve().parent.parent
    text = (repo / "docs" / "design.md").read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+/?)` \|", section, flags=re.M))
    pkg = repo / "memlib"
    tree = {p.stem for p in pkg.glob("*.py") if p.stem not in ("__init__", "__main__")}
    tree |= {p.name + "/" for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == tree, f"missing from the map: {sorted(tree - listed)}; not in memlib/: {sorted(listed - tree)}"


# The README and the notebooks describe the current protocol in the present tense; how the
# protocols changed (v1 -> v2 -> v3) lives in docs/history.md only.
HISTORY_WORDING = re.compile(r"\bv[0-9]\b(?!\.[0-9])|\bversion [0-9]\b|what changed|first protocol|earlier protocol",
                             flags=re.I)


def history_wording(text: str) -> list[str]:
    return [m.group(0) for m in HISTORY_WORDING.finditer(text)]


def notebook_markdown(path: Path) -> str:
    import json
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_history_wording_is_found():
    assert history_wording("What changed in v2. Study v3, version 1, the first protocol") == [
        "What changed", "v2", "v3", "version 1", "first protocol"]
    assert history_wording("DINOv2-S/14, ViT-L/14, 2U/(nm) - 1, memlib v0.1.1x") == []


def test_readme_and_notebooks_speak_in_the_present_tense():
    """No protocol history ("v2", "what changed", ...) in the README or any notebook's markdown
    (the .ipynb and its jupytext twin's markdown cells are the same text); docs/history.md holds it."""
    found = {"README.md": history_wording(README)}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        found[f"notebooks/{path.name}"] = history_wording(notebook_markdown(path))
    found = {k: v for k, v in found.items() if v}
    assert not found, f"history wording (move it to docs/history.md): {found}"
    assert history_wording((REPO / "docs" / "history.md").read_text()), "docs/history.md tells the history"


@pytest.mark.parametrize("claim,row_start", README_CLAIM_ROWS)
def test_readme_says_whether_each_verdict_holds_beyond_the_checkpoint(claim, row_start):
    """The claims table's "beyond:" is the generality verdict of figures/embedding_spaces.csv
    (notebook 06); a claim that 06 does not compute says so."""
    spaces = pd.read_csv(REPO / "figures" / "embedding_spaces.csv")
    generality = spaces[spaces.encoder == "(generality)"].set_index("claim").verdict
    row = next(line for line in README.splitlines() if line.startswith(row_start))
    if claim in generality.index:
        assert f"beyond: {generality[claim]}" in row, (claim, generality[claim], row)
    else:
        assert "beyond:" not in row, (claim, row)
