"""Sphinx extension: fix accessibility defects of the generated HTML.

axe-core (run on every page by tests/test_browser.py) finds three defects
that no configuration option reaches, two in pydata-sphinx-theme's header and
one in docutils' citations:

* the search buttons carry ``aria-label="Search"`` while they show "Search
  Ctrl+K": a speech-input user saying what they see ("click Search Ctrl K")
  misses (WCAG 2.5.3, label in name). Without the aria-label the accessible
  name is the visible text.
* the colour-mode button's icons carry titles ("Light", "Dark", "System
  Settings") that become its visible name, which differs from its label
  "Color mode". The icons are decoration: they get ``aria-hidden`` instead.
* the bibliography is a ``role="list"`` whose entries have
  ``role="doc-biblioentry"``, a role that DPUB-ARIA 1.1 deprecated and that
  is not a list item: screen readers see a list without items. They become
  ``role="listitem"``.

Each rewrite must still match the theme's markup: when an upgrade changes it,
the build warns (and ``-W`` fails) instead of silently shipping the defect.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

SEARCH_BUTTON = re.compile(
    r'(<button class="btn search-button-field search-button__button[^"]*"'
    r'[^>]*?) aria-label="Search"'
)
BIBLIO_ENTRY = re.compile(
    r'(<div class="citation" id="[^"]*") role="doc-biblioentry"'
)
THEME_ICON = re.compile(
    r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"'
)


def fix_page(text: str) -> tuple[str, int, int, int]:
    """The page with the fixes applied, and how often each one applied."""
    text, n_search = SEARCH_BUTTON.subn(r"\1", text)
    text, n_icons = THEME_ICON.subn(r'\1 aria-hidden="true"', text)
    text, n_entries = BIBLIO_ENTRY.subn(r'\1 role="listitem"', text)
    return text, n_search, n_icons, n_entries


# The same markup, fixed or not: a page written by an earlier build (an
# incremental build leaves it as it is) is already fixed.
SEARCH_ANY = re.compile(r'<button class="btn search-button-field ')
SEARCH_LABELLED = re.compile(
    r'<button class="btn search-button-field [^>]*aria-label='
)
ICON_ANY = re.compile(r'<i class="theme-switch [^"]*" data-mode="\w+"')
ICON_TITLED = re.compile(
    r'<i class="theme-switch [^"]*" data-mode="\w+"[^>]*\stitle='
)


def remaining_defects(text: str) -> list[str]:
    """What a page still has after :func:`fix_page` (theme changes)."""
    problems = []
    if "search-button-field" in text and (
        not SEARCH_ANY.search(text) or SEARCH_LABELLED.search(text)
    ):
        problems.append("the theme's search button changed")
    if "theme-switch-button" in text and (
        not ICON_ANY.search(text) or ICON_TITLED.search(text)
    ):
        problems.append("the theme's colour-mode icons changed")
    if "doc-biblioentry" in text:
        problems.append("the citation markup changed")
    return problems


def fix_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    pages = sorted(Path(app.outdir).rglob("*.html"))
    for path in pages:
        text = path.read_text(encoding="utf8")
        fixed = fix_page(text)[0]
        for problem in remaining_defects(fixed):
            logger.warning(
                f"accessibility: {problem}; "
                f"_ext/accessibility.py no longer fixes {path.name}"
            )
        if fixed != text:
            path.write_text(fixed, encoding="utf8")


def setup(app):
    app.connect("build-finished", fix_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
