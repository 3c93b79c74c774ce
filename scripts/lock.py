"""Lock the environment: requirements.txt -> .lock -> environment.yml.

``requirements.txt`` names the packages the course uses directly, each pinned.
``requirements.lock`` adds every package they pull in, transitively, each
pinned with the SHA-256 hashes of its files (``uv pip compile
--generate-hashes``, for CPython 3.11 on x86-64 Linux, with torch's CPU build).
``make venv`` installs from the lock with ``--require-hashes``, so every
machine gets the same files. ``environment.yml`` (Binder) lists the same pins.
The lock's first line records the SHA-256 of requirements.txt;
``tests/test_lock.py`` fails when that no longer matches (a stale lock) or
when environment.yml disagrees with the lock.

    python scripts/lock.py            # regenerate both files (make lock)
    python scripts/lock.py --check    # exit 1 if either is stale
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
LOCK = ROOT / "requirements.lock"
BINDER = ROOT / "environment.yml"
# Where a CPU-only torch wheel comes from: a local folder of wheels if the
# machine has one (pip's find-links), else PyTorch's CPU index (PyPI's torch
# would pull CUDA packages).
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
HEADER = "# requirements.txt sha256: {digest}\n"

BINDER_TEMPLATE = """\
# Binder environment (mybinder.org builds it with repo2docker; postBuild then
# installs dlcourse). Generated from requirements.lock by `make lock`
# (scripts/lock.py): the same pins, every transitive package included. Do not
# edit by hand: tests/test_lock.py fails when it and the lock disagree.
# The extra index serves torch's CPU-only build.
name: dlcourse
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - --extra-index-url {index}
{pins}"""


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def lock_pins(text: str) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line of a lock file."""
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)
    return {name.lower(): version for name, version in pins}


def binder_text(lock_text: str) -> str:
    pins = "".join(
        f"      - {name}=={version}\n"
        for name, version in sorted(lock_pins(lock_text).items())
    )
    return BINDER_TEMPLATE.format(index=TORCH_INDEX, pins=pins)


def compile_lock() -> str:
    """Run uv and return the lock's text (header first)."""
    find_links = os.environ.get("PIP_FIND_LINKS", "").split()
    links = [a for d in find_links for a in ("--find-links", d)]
    if not links:  # no local wheels: torch's CPU build from PyTorch's index
        links = ["--extra-index-url", TORCH_INDEX]
        links += ["--index-strategy", "unsafe-best-match"]
    cmd = [
        str(Path(sys.executable).with_name("uv")),
        "pip", "compile", "requirements.txt",
        "--generate-hashes", "--no-header", "--quiet",
        "--python-version", "3.11",
        "--python-platform", "x86_64-manylinux_2_28",
        *links,
    ]  # fmt: skip
    out = subprocess.run(
        cmd, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return HEADER.format(digest=requirements_digest()) + out


def stale() -> list[str]:
    """What is out of date, in words (empty when both files are current)."""
    problems = []
    lock = LOCK.read_text() if LOCK.exists() else ""
    if not lock.startswith(HEADER.format(digest=requirements_digest())):
        problems.append(
            "requirements.lock was not generated from this requirements.txt"
        )
    if not BINDER.exists() or BINDER.read_text() != binder_text(lock):
        problems.append("environment.yml does not list the lock's pins")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check")
    if parser.parse_args().check:
        problems = stale()
        print(
            "\n".join(problems)
            or "requirements.lock and environment.yml are current"
        )
        return 1 if problems else 0
    text = compile_lock()
    LOCK.write_text(text)
    BINDER.write_text(binder_text(text))
    print(
        f"wrote {LOCK.name} ({len(lock_pins(text))} packages) and {BINDER.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
