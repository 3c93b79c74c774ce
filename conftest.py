"""Test-suite set-up that must happen before anything imports torch.

1. Numerics. Every pytest run, and so every notebook kernel that nbval starts
   (it inherits this process's environment through ``--nbval-current-env``),
   uses the course's *canonical* numerics (see ``scripts/numerics.py``): the
   same bits on any x86-64 CPU, so the stored outputs compare equal on a laptop
   with AVX2 and on a server with AVX-512. ``DLCOURSE_NUMERICS=native``
   (``make test-robust``) turns it off instead.
2. No suite vanishes. A plain ``pytest`` (the README's test command) fails when
   a folder that holds tests or chapters contributes no collected test, e.g.
   because a ``norecursedirs`` pattern or a conftest's ``collect_ignore``
   swallowed it.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))
import numerics  # noqa: E402  (stdlib only; must run before torch is imported)

numerics.apply(os.environ.get("DLCOURSE_NUMERICS", "canonical"))


def _suite_folders():
    """Folders that must contribute tests.

    tests/** with a test file, and the book's chapter folders.
    """
    folders = {p.parent for p in (ROOT / "tests").rglob("test_*.py")}
    folders |= {p.parent for p in (ROOT / "book").glob("*/[0-9]*.ipynb")}
    return {
        f
        for f in folders
        if not {"fixtures", ".ipynb_checkpoints"} & set(f.parts)
    }


def pytest_report_header(config):
    return f"dlcourse numerics: {os.environ.get('DLCOURSE_NUMERICS')}"


def _check_suites(config, paths):
    """Exit (usage error) if a suite folder has no test among ``paths``."""
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return  # an explicit selection of paths: the user chose what to run
    if (
        config.option.keyword
        or config.option.markexpr
        or config.option.deselect
    ):
        return
    collected = {Path(path).parent for path in paths}
    missing = sorted(
        f.relative_to(ROOT).as_posix() for f in _suite_folders() - collected
    )
    if missing:
        pytest.exit(
            "these folders contribute no collected test, "
            "so their tests never run: " + ", ".join(missing),
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def pytest_collection_finish(session):
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller checks (below)
    _check_suites(session.config, [str(item.path) for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """With pytest-xdist (``make test``), the check runs on what a worker
    collected, in the controller, where the command line is known."""
    paths = [ROOT / nodeid.split("::")[0] for nodeid in ids]
    _check_suites(node.config, paths)
