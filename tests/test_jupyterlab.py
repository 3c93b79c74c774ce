"""The kernel-free slider also works in JupyterLab.

A JupyterLab server runs a one-cell notebook that builds a ``static_slider``;
headless Chromium (the browser fixture of tests/conftest.py) opens it,
runs the cell, and moves the slider with the keyboard and with the pointer.
JupyterLab runs the output's inline script (the output is trusted: it was just
produced), but it also has keyboard shortcuts of its own, which took the arrow
keys from a plain ``<input type=range>`` before the slider handled them
itself; this test keeps it so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]

CELL = """\
import matplotlib.pyplot as plt

from dlcourse.widgets import static_slider


def draw(k):
    fig, ax = plt.subplots(figsize=(4, 2.5), layout="constrained")
    ax.plot([0, 1], [0, k])
    ax.set_title(f"slope {k}")
    return fig


static_slider([1, 2, 3], draw, label="slope", alt="A line through the origin")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server (no token) on a folder with one notebook."""
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / "slider.ipynb")
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter"))
    env["JUPYTER_RUNTIME_DIR"] = str(root / ".runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / ".lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".lab-workspaces")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jupyter-lab")),
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_static_slider_moves_in_jupyterlab(browser, lab):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(40_000)
    # nothing beyond the local server (no news, no extension manager)
    context.route(
        lambda url: not url.startswith(lab),
        lambda route: route.abort("blockedbyclient"),
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(lab + "lab/tree/slider.ipynb", wait_until="load")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        # once the kernel is up (the status bar says so), run the cell
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
            ".some(e => /Python 3.*Idle/.test(e.textContent))"
        )
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        slider = page.locator(".dlc-slider")
        slider.locator("input").wait_for()
        value = slider.locator("input")

        def state():
            return slider.evaluate(
                "r => ({value: r.querySelector('input').value,"
                " label: r.querySelector('output').textContent,"
                " shown: [...r.querySelectorAll('img')]"
                ".map((f, k) => f.hidden ? -1 : k).filter(k => k >= 0)})"
            )

        assert state() == {"value": "0", "label": "1", "shown": [0]}
        value.focus()
        page.keyboard.press("ArrowRight")
        assert state() == {"value": "1", "label": "2", "shown": [1]}, (
            "the arrow key did not move the slider in JupyterLab"
        )
        box = value.bounding_box()
        value.click(position={"x": box["width"] - 4, "y": box["height"] / 2})
        assert state() == {"value": "2", "label": "3", "shown": [2]}
        page.keyboard.press("Home")
        assert state() == {"value": "0", "label": "1", "shown": [0]}
        assert not errors, errors
    finally:
        shots = REPO / "_build" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / "jupyterlab.png")
        context.close()
