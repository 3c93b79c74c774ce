#!/usr/bin/env python3
"""The first cell of every chapter: installs dlcourse where it is missing.

The launch buttons open a chapter on Binder (whose image has the locked
environment and dlcourse, from environment.yml and postBuild) or on Colab
(whose image has torch, numpy, matplotlib and ipywidgets, but not dlcourse).
This cell makes the second case work: when ``dlcourse`` cannot be imported it
installs it, with its dependencies, from the repository; everywhere else it
does nothing. It is tagged ``remove-cell``, so the page does not show it.

``python scripts/launch_cell.py`` puts the cell first in every chapter (or
replaces an older copy); ``--check`` only reports chapters that lack it.
tests/test_book.py checks every chapter against ``CELL_SOURCE``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
TAG = "remove-cell"
MARKER = "# Launch cell:"


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    return config["repository"]["url"].rstrip("/")


def branch() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    return config["repository"].get("branch", "main")


CELL_SOURCE = f"""{MARKER} on Colab, install the course package (dlcourse) from
# its repository; wherever it is installed already (JupyterLab, Binder, the
# book's tests) this does nothing.
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("dlcourse") is None:
    requirement = (
        "dlcourse[notebooks] @ git+{repository_url()}@{branch()}"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", requirement],
        check=True,
    )
    importlib.invalidate_caches()"""


def chapters() -> list[Path]:
    return sorted(ROOT.glob("book/regularization/*.ipynb")) + sorted(
        ROOT.glob("book/optimization/*.ipynb")
    )


def launch_cell() -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "launch-cell",
        "metadata": {"tags": [TAG]},
        "outputs": [],
        "source": CELL_SOURCE.splitlines(keepends=True),
    }


def has_cell(nb: dict) -> bool:
    first = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    return (
        first is not None
        and "".join(first["source"]) == CELL_SOURCE
        and TAG in first["metadata"].get("tags", [])
    )


def install(path: Path) -> bool:
    """Put the cell first in the notebook at path; True if it changed."""
    nb = json.loads(path.read_text(encoding="utf8"))
    if has_cell(nb):
        return False
    nb["cells"] = [
        c for c in nb["cells"] if not "".join(c["source"]).startswith(MARKER)
    ]
    nb["cells"].insert(0, launch_cell())
    nbformat.write(nbformat.from_dict(nb), path)
    return True


def main(argv: list[str]) -> int:
    check = "--check" in argv
    missing = []
    for path in chapters():
        nb = json.loads(path.read_text(encoding="utf8"))
        if has_cell(nb):
            continue
        if check:
            missing.append(path.relative_to(ROOT).as_posix())
        elif install(path):
            print(f"launch cell added to {path.relative_to(ROOT)}")
    if missing:
        print("chapters without the launch cell:", *missing, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
