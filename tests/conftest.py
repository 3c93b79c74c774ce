"""Fixtures shared by the browser tests (test_browser.py, test_jupyterlab.py).

One headless Chromium for the whole session, driven by Playwright for Python
(no browser download: Debian's chromium). Without it the tests skip, except
in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


@pytest.fixture(scope="session")
def browser():
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright for Python is not installed"
    if problem is None and not Path(CHROMIUM).is_file():
        problem = (
            f"Chromium not found (looked for `chromium` on PATH and {CHROMIUM})"
        )
    if problem:
        if in_ci():
            pytest.fail(f"{problem}; required when CI is set")
        pytest.skip(
            f"{problem}; install it (apt-get install chromium) "
            "to run the browser tests"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
