"""Every chapter follows the course's conventions (checked without a kernel).

nbval re-runs the notebooks; these checks catch what nbval cannot: a chapter
missing from the table of contents, outputs not stored top to bottom, a path of
the author's machine, a chapter without a measured claim (`assert`), a slider,
self-check answers or references.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(
    p
    for p in (ROOT / "book").rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts and "exercises" not in p.parts
)
# book/exercises/: the student versions of the graded exercises (nbgrader),
# unexecuted; tests/exercises/test_grading.py checks that they equal a fresh
# release.
EXERCISES = sorted((ROOT / "book" / "exercises").glob("*.ipynb"))


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def _cells(path, kind):
    nb = json.loads(path.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == kind]


def _source(cell):
    return "".join(cell["source"])


def test_there_are_chapters_and_every_toc_entry_exists():
    assert CHAPTERS, "book/ holds no notebook"
    for entry in _toc_files():
        assert any(
            (ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")
        ), entry


@pytest.mark.parametrize(
    "path", CHAPTERS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_chapter_conventions(path):
    rel = path.relative_to(ROOT).with_suffix("").as_posix()
    assert rel in _toc_files(), f"{rel} is not listed in _toc.yml"
    code = [c for c in _cells(path, "code") if _source(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        "cells not run once, top to bottom"
    )
    text = path.read_text()
    assert not re.search(r"(/home/|/work/|/tmp/|/root/|C:\\\\Users)", text), (
        "absolute path stored"
    )
    sources = "\n".join(_source(c) for c in code)
    markdown = "\n".join(_source(c) for c in _cells(path, "markdown"))
    assert re.search(r"^\s*assert ", sources, re.M), (
        "no assert on a measured claim"
    )
    assert "from dlcourse" in sources, (
        "the chapter must import its code from dlcourse"
    )
    widget_outputs = [
        o
        for c in code
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widget_outputs, "no ipywidgets control"
    assert "widgets" in json.loads(text)["metadata"], (
        "widget state not stored (run with nbclient)"
    )
    assert "## Check yourself" in markdown and ":class: dropdown" in markdown, (
        "no hidden answers"
    )
    assert "{cite}" in markdown, "no references"
    errors = [
        o
        for c in code
        for o in c.get("outputs", [])
        if o["output_type"] == "error"
    ]
    assert not errors, "stored outputs contain an error"


@pytest.mark.parametrize(
    "path", EXERCISES, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_exercise_pages(path):
    rel = path.relative_to(ROOT).with_suffix("").as_posix()
    assert rel in _toc_files(), f"{rel} is not listed in _toc.yml"
    text = path.read_text()
    assert not re.search(r"(/home/|/work/|/tmp/|/root/|C:\\\\Users)", text), (
        "absolute path stored"
    )
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text, f"{marker}: not a student version"
    assert not any(c.get("outputs") for c in _cells(path, "code")), (
        "stored outputs"
    )
    assert _cells(path, "markdown")[0]["source"][0].startswith("# "), "no title"
