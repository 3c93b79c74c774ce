"""Every chapter follows the course's conventions (checked without a kernel).

nbval re-runs the notebooks; these checks catch what nbval cannot: a chapter
missing from the table of contents, outputs not stored top to bottom, a path of
the author's machine, a chapter without a measured claim (`assert`), without
a kernel-free slider (or with a dead control in the page), without the launch
cell, a figure without alt text, headings out of order, a low-contrast colour,
self-check answers or references.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from matplotlib.colors import is_color_like

from dlcourse.plotting import contrast_ratio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import launch_cell  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HIDDEN_OUTPUT = {"remove-output", "remove-cell"}
MIN_ALT = 40  # characters: a sentence, not a file name or "plot"
ABSOLUTE_PATH = r"(/home/|/work/|/tmp/|/root/|C:\\\\Users)"


def without_base64(text):
    """The notebook's text without its images' base64 data.

    A run of base64 can spell "/tmp/" by chance; it is not a path.
    """
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    return re.sub(r'"image/png": "[A-Za-z0-9+/=\\n]*"', "", text)


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


def _tags(cell):
    return cell["metadata"].get("tags", [])


def _html_outputs(cell):
    return [
        "".join(o["data"]["text/html"])
        for o in cell.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]


def _page_sources():
    """(docname, markdown text) of every page of the table of contents."""
    pages = []
    for entry in _toc_files():
        md, nb = ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb"
        if md.exists():
            pages.append((entry, md.read_text()))
        else:
            text = "\n\n".join(_source(c) for c in _cells(nb, "markdown"))
            pages.append((entry, text))
    return pages


def _headings(markdown):
    """Levels of the markdown headings, outside code fences."""
    unfenced = re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)
    return [len(m) for m in re.findall(r"^(#{1,6})\s", unfenced, flags=re.M)]


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
    assert not re.search(ABSOLUTE_PATH, without_base64(text)), (
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
    sliders = [
        html_output
        for c in code
        if not HIDDEN_OUTPUT & set(_tags(c))
        for html_output in _html_outputs(c)
        if 'class="dlc-slider"' in html_output
    ]
    assert sliders, "no kernel-free slider (dlcourse.widgets.static_slider)"
    for page in sliders:
        alts = re.findall(r'<img [^>]*alt="([^"]*)"', page)
        assert alts and all(len(a) >= MIN_ALT for a in alts), (
            f"a slider frame's alt text is missing or short: {alts}"
        )
    shown_widgets = [
        _source(c)[:60]
        for c in code
        if not HIDDEN_OUTPUT & set(_tags(c))
        and any(WIDGET_VIEW in o.get("data", {}) for o in c.get("outputs", []))
    ]
    assert not shown_widgets, (
        "an ipywidgets control needs a kernel: in the page it would do "
        "nothing. Use static_slider, or tag the live widget's cell "
        f"remove-output: {shown_widgets}"
    )
    if any(
        WIDGET_VIEW in o.get("data", {}) for c in code for o in c["outputs"]
    ):
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
    assert not re.search(ABSOLUTE_PATH, without_base64(text)), (
        "absolute path stored"
    )
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text, f"{marker}: not a student version"
    assert not any(c.get("outputs") for c in _cells(path, "code")), (
        "stored outputs"
    )
    assert _cells(path, "markdown")[0]["source"][0].startswith("# "), "no title"


@pytest.mark.parametrize(
    "path", CHAPTERS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_chapter_starts_with_the_launch_cell(path):
    """Colab's launch button: the first cell installs dlcourse if missing."""
    first = json.loads(path.read_text())["cells"][0]
    assert first["cell_type"] == "code"
    assert _source(first) == launch_cell.CELL_SOURCE, (
        "run `python scripts/launch_cell.py`"
    )
    assert "remove-cell" in _tags(first), "the launch cell shows in the page"


def _run_launch_cell(monkeypatch, found):
    calls = []
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: found if name else None
    )
    monkeypatch.setattr(
        "subprocess.run", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    exec(compile(launch_cell.CELL_SOURCE, "launch-cell", "exec"), {})
    return calls


def test_launch_cell_installs_dlcourse_from_the_repository_only_if_missing(
    monkeypatch,
):
    assert _run_launch_cell(monkeypatch, found=object()) == []
    (args, kwargs), *more = _run_launch_cell(monkeypatch, found=None)
    assert not more and kwargs == {"check": True}
    command = args[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert command[-1] == (
        f"dlcourse[notebooks] @ git+{config['url']}@{config['branch']}"
    )


@pytest.mark.parametrize(
    "path", CHAPTERS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_every_figure_has_alt_text(path):
    """Each cell with an image output says in words what it shows."""
    missing = []
    for index, cell in enumerate(_cells(path, "code")):
        if HIDDEN_OUTPUT & set(_tags(cell)):
            continue
        if not any("image/png" in o.get("data", {}) for o in cell["outputs"]):
            continue
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")
        if not alt or len(alt) < MIN_ALT or re.search(r"\.(png|svg)$", alt):
            missing.append((index, _source(cell)[:50], alt))
    assert not missing, f"figures without alt text: {missing}"


@pytest.mark.parametrize("docname, markdown", _page_sources())
def test_headings_are_in_order(docname, markdown):
    """One title, then no level skipped (an h2 before any h3, and so on)."""
    levels = _headings(markdown)
    assert levels and levels[0] == 1, f"{docname}: no # title first"
    assert levels.count(1) == 1, f"{docname}: more than one # title"
    jumps = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
    assert not jumps, f"{docname}: heading levels skipped {jumps}"


# keyword arguments that set the colour of lines, markers or text
COLOUR_ARG = re.compile(
    r"\b(color|colors|c|ecolor|mfc|mec|markerfacecolor|markeredgecolor)"
    r"\s*=\s*[\"']([^\"']+)[\"']"
)


@pytest.mark.parametrize(
    "path", CHAPTERS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_figures_use_colours_with_3_to_1_contrast(path):
    """WCAG 2.1 (1.4.11): lines and markers stand out from the white ground.

    The chapter draws with the course's colour cycle (set by importing
    dlcourse.plotting, which dlcourse.widgets imports too), and every colour
    it names has at least 3:1 contrast against white.
    """
    sources = "\n".join(_source(c) for c in _cells(path, "code"))
    if "plt." in sources or "static_slider" in sources:
        assert re.search(
            r"from dlcourse\.(plotting|widgets) import|"
            r"import dlcourse\.(plotting|widgets)",
            sources,
        ), "draws without the course's style (import dlcourse.plotting)"
    low = {
        colour: round(contrast_ratio(colour), 2)
        for _, colour in COLOUR_ARG.findall(sources)
        if is_color_like(colour) and contrast_ratio(colour) < 3.0
    }
    assert not low, f"colours below 3:1 against white: {low}"


# ------------------------------------------- _ext/accessibility.py's rewrites

RAW_HEADER = (
    '<button class="btn search-button-field search-button__button" '
    'title="Search" aria-label="Search" data-bs-placement="bottom">'
    "<span>Search</span> Ctrl+K</button>\n"
    '<button class="btn theme-switch-button" aria-label="Color mode">'
    '<i class="theme-switch fa-solid fa-sun" data-mode="light" title="Light">'
    "</i></button>\n"
    '<div class="citation" id="id1" role="doc-biblioentry">A book.</div>\n'
)


def _accessibility():
    spec = importlib.util.spec_from_file_location(
        "accessibility", ROOT / "_ext" / "accessibility.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accessibility_rewrites_apply_once_and_leave_no_defect():
    ext = _accessibility()
    fixed, n_search, n_icons, n_entries = ext.fix_page(RAW_HEADER)
    assert (n_search, n_icons, n_entries) == (1, 1, 1)
    assert 'aria-label="Search"' not in fixed
    assert 'data-mode="light" aria-hidden="true"' in fixed
    assert 'role="listitem"' in fixed
    assert ext.remaining_defects(RAW_HEADER) == [
        "the theme's search button changed",
        "the theme's colour-mode icons changed",
        "the citation markup changed",
    ]
    # a page an earlier build fixed (an incremental build keeps it) is fine
    assert ext.remaining_defects(fixed) == []
    assert ext.fix_page(fixed)[0] == fixed


def test_accessibility_reports_markup_it_no_longer_fixes():
    ext = _accessibility()
    renamed = RAW_HEADER.replace('aria-label="Search"', 'aria-label="Find"')
    assert ext.remaining_defects(ext.fix_page(renamed)[0]) == [
        "the theme's search button changed"
    ]
    moved = RAW_HEADER.replace('data-mode="light" title', 'title="x" data-m')
    assert "the theme's colour-mode icons changed" in ext.remaining_defects(
        ext.fix_page(moved)[0]
    )
