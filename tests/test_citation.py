"""CITATION.cff: parses, has what Citation File Format 1.2.0 requires, names this software at
pyproject.toml's version and licence, and cites the paper it reproduces (arXiv 2407.21159)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# the reference types of the CFF 1.2.0 schema that this file may use
REFERENCE_TYPES = {"article", "book", "conference-paper", "data", "generic", "report",
                   "software", "thesis", "unpublished"}


def _cff() -> dict:
    return yaml.safe_load((REPO / "CITATION.cff").read_text())


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:      # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _check_person(person: dict, where: str) -> None:
    assert isinstance(person, dict), where
    assert person.get("name") or person.get("family-names"), f"{where}: a person needs a name"
    for key, value in person.items():
        assert isinstance(value, str) and value.strip(), f"{where}: {key}"


def test_citation_file_has_the_required_fields():
    cff = _cff()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert isinstance(cff[key], (str, list)) and cff[key], key
    assert cff["type"] == "software"
    for i, person in enumerate(cff["authors"]):
        _check_person(person, f"authors[{i}]")


def test_citation_matches_the_package():
    cff, project = _cff(), _pyproject()
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"]


def test_citation_references_the_reproduced_paper():
    refs = _cff()["references"]
    for i, ref in enumerate(refs):
        assert ref["type"] in REFERENCE_TYPES, ref["type"]
        assert ref["title"] and ref["authors"], i
        for j, person in enumerate(ref["authors"]):
            _check_person(person, f"references[{i}].authors[{j}]")
        assert isinstance(ref["year"], int) and 1900 < ref["year"] < 2100
    paper = [r for r in refs if "2407.21159" in r.get("url", "")]
    assert len(paper) == 1
    assert [a["family-names"] for a in paper[0]["authors"]] == ["He", "Zhao", "Bai", "Hsieh"]
    assert re.match(r"Embedding Space Selection for Detecting Memorization", paper[0]["title"])
    assert any(i["value"] == "arXiv:2407.21159" for i in paper[0]["identifiers"])
