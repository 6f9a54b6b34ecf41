"""Entry points stay in step: environment.yml ≡ pyproject, CI runs `make test`, README
leads with `make figures` / `make test`."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
# conda-forge name -> PyPI name, where they differ
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str, where: str) -> tuple[str, str]:
    """'numpy>=1.24' -> ('numpy', '>=1.24'); extras and markers are not expected here."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:[<>=!~]=?\s*[^,\s]+\s*,?\s*)*)",
                     requirement)
    assert m, f"{where}: cannot parse requirement {requirement!r}"
    return _normalise(m[1]), re.sub(r"\s+", "", m[2])


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(path.read_text())


def conda_packages() -> dict[str, str]:
    """environment.yml's conda dependencies (no python/pip, no pip: section), PyPI names."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    packages = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str):  # the {"pip": [...]} section
            continue
        name, spec = _split(dep.replace(" ", ""), "environment.yml")
        if name in NOT_PACKAGES:
            continue
        name = CONDA_TO_PIP.get(name, name)
        assert name not in packages, f"environment.yml lists {name} twice"
        packages[name] = spec
    return packages


def pyproject_packages() -> dict[str, str]:
    """pyproject's `dependencies` plus the `dev` extra."""
    project = _load_toml(REPO / "pyproject.toml")["project"]
    packages = {}
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, spec = _split(req, "pyproject.toml")
        assert name not in packages, f"pyproject.toml lists {name} twice"
        packages[name] = spec
    return packages


def drift(conda: dict[str, str], pip: dict[str, str]) -> list[str]:
    problems = [f"only in environment.yml: {n}{conda[n]}"
                for n in sorted(conda.keys() - pip.keys())]
    problems += [f"only in pyproject.toml: {n}{pip[n]}" for n in sorted(pip.keys() - conda.keys())]
    problems += [f"{n}: environment.yml says {conda[n] or '(no bound)'}, pyproject.toml says "
                 f"{pip[n] or '(no bound)'}" for n in sorted(conda.keys() & pip.keys())
                 if conda[n] != pip[n]]
    return problems


def test_environment_yml_matches_pyproject():
    problems = drift(conda_packages(), pyproject_packages())
    assert not problems, ("environment.yml and pyproject.toml (dependencies + dev extra) "
                          "disagree:\n  " + "\n  ".join(problems))


def test_drift_is_reported():
    """The comparison can fail: a missing package, an extra one and a changed bound are named."""
    pip = {"numpy": ">=1.24", "torch": ">=2.1", "tqdm": ">=4.65"}
    conda = {"numpy": ">=1.26", "torch": ">=2.1", "faiss-cpu": ">=1.7.4"}
    assert drift(conda, pip) == ["only in environment.yml: faiss-cpu>=1.7.4",
                                 "only in pyproject.toml: tqdm>=4.65",
                                 "numpy: environment.yml says >=1.26, pyproject.toml says >=1.24"]
    assert drift(pip, pip) == []


def test_environment_yml_installs_memlib_itself():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert any(any(".[dev]" in line for line in section) for section in pip_sections), \
        "environment.yml's pip: section should install memlib itself (-e .[dev])"


def ci_commands(text: str) -> list[str]:
    """The commands a CI script runs, without shebang, comments, `set` options and `cd`."""
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        if not words or words[0] in ("set", "cd"):
            continue
        commands.append(" ".join(words))
    return commands


def test_ci_runs_exactly_make_test():
    path = REPO / ".ci" / "run"
    assert path.exists(), ".ci/run is missing"
    assert os.access(path, os.X_OK), ".ci/run is not executable"
    assert ci_commands(path.read_text()) == ["make test"], \
        f".ci/run should run exactly `make test`, runs {ci_commands(path.read_text())}"


def test_ci_commands_parser():
    script = "#!/usr/bin/env bash\nset -euo pipefail\ncd \"$(dirname \"$0\")/..\"\nmake test\n"
    assert ci_commands(script) == ["make test"]
    assert ci_commands(script + "pytest -x\n") == ["make test", "pytest -x"]


COMMAND_WORDS = ("make", "python", "python3", "pip", "pip3", "conda", "mamba", "git", "bash",
                 "sh", "jupyter", "jupytext", "papermill", "pytest", "apt", "apt-get", "sudo",
                 "cd", "export", "memlib", "source", "docker", "uv", ".venv/", "./")


def readme_commands(text: str) -> list[str]:
    """Shell commands shown in a Markdown text, in order: fenced-block lines and inline code."""
    commands = []
    pattern = re.compile(r"```[^\n]*\n(?P<block>.*?)```|`(?P<inline>[^`\n]+)`", re.S)
    for m in pattern.finditer(text):
        lines = m["block"].splitlines() if m["block"] is not None else [m["inline"]]
        for line in lines:
            line = line.strip().removeprefix("$ ").strip()
            if line and not line.startswith("#") and (
                    line.split()[0] in COMMAND_WORDS
                    or line.startswith((".venv/", "./"))):
                commands.append(line)
    return commands


def check_readme_order(text: str) -> str | None:
    """None if `make figures` and `make test` both come before any other command, else why."""
    commands = readme_commands(text)
    lead = {"make figures", "make test"}
    seen = set()
    for cmd in commands:
        key = next((k for k in lead if cmd == k or cmd.startswith(k + " ")), None)
        if key is None:
            if seen != lead:
                return (f"README shows `{cmd}` before {' and '.join(sorted(lead - seen))}; "
                        f"`make figures` and `make test` should be the first commands")
            return None
        seen.add(key)
    if seen != lead:
        return f"README never shows {' and '.join(f'`{k}`' for k in sorted(lead - seen))}"
    return None


def test_readme_leads_with_make_figures_and_make_test():
    path = REPO / "README.md"
    if not path.exists():
        pytest.skip("no README.md yet")
    problem = check_readme_order(path.read_text())
    assert problem is None, problem


def test_readme_check_can_fail():
    good = "# x\n\n```\nmake figures\nmake test\n```\nThen `python -m memlib ct --help`.\n"
    assert check_readme_order(good) is None
    assert check_readme_order("Run `make test`, then `make figures`; or `pip install .`") is None
    assert "before" in check_readme_order("First `pip install -e .`, then `make figures`, "
                                          "`make test`.")
    assert "never shows" in check_readme_order("```\n$ make figures\n```\n")
