"""Binder's launch button works: its environment resolves and postBuild runs.

mybinder.org builds ``environment.yml`` with repo2docker (conda's Python 3.11,
then pip with the listed pins) and then runs ``postBuild``. These tests do the
two steps here, with the registries this machine uses:

* a resolver (uv, pinned in requirements.txt) resolves environment.yml's pip
  list, dependencies included, for CPython 3.11 on x86-64 Linux: the result
  must be exactly the listed pins, so pip on Binder neither fails on a
  conflict nor adds or changes a package;
* postBuild, run in a fresh virtualenv, installs dlcourse (editable, no
  dependencies: they come from environment.yml).
"""

import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402


def _environment_pip_lines() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip_list,) = [
        d["pip"]
        for d in env["dependencies"]
        if isinstance(d, dict) and "pip" in d
    ]
    return pip_list


def _pins(text: str) -> dict[str, str]:
    return {
        canonicalize_name(name): version.removesuffix("+cpu")
        for name, version in re.findall(
            r"^\s*([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M
        )
    }


def test_environment_yml_resolves_to_exactly_its_pins(tmp_path):
    lines = _environment_pip_lines()
    options = [line for line in lines if line.startswith("-")]
    # Binder's pip finds torch's CPU build on PyTorch's index
    assert options == [f"--extra-index-url {lock.TORCH_INDEX}"]
    requirements = tmp_path / "binder-requirements.txt"
    requirements.write_text(
        "\n".join(line for line in lines if line not in options) + "\n"
    )
    listed = _pins(requirements.read_text())
    assert listed and "torch" in listed
    # the sources of `make lock`: this machine's wheels for torch's CPU
    # build if it has them (PyTorch's index may be out of reach), else
    # PyTorch's index as on Binder
    find_links = os.environ.get("PIP_FIND_LINKS", "").split()
    links = [a for d in find_links for a in ("--find-links", d)]
    if not links:
        links = ["--extra-index-url", lock.TORCH_INDEX]
    links += ["--index-strategy", "unsafe-best-match"]
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("uv")),
            "pip",
            "compile",
            str(requirements),
            "--no-header",
            "--quiet",
            "--no-annotate",
            "--python-version",
            "3.11",
            "--python-platform",
            "x86_64-manylinux_2_28",
            *links,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"environment.yml does not resolve:\n{proc.stderr[-3000:]}"
    )
    resolved = _pins(proc.stdout)
    added = sorted(set(resolved) - set(listed))
    changed = {
        n: (listed[n], resolved[n])
        for n in set(listed) & set(resolved)
        if listed[n] != resolved[n]
    }
    assert not added and not changed, (
        f"pip on Binder would add {added} and change {changed}"
    )
    assert set(resolved) == set(listed)
    # and they are the lock's pins (tests/test_lock.py checks the file too)
    assert listed == _pins(lock.LOCK.read_text())


def test_postbuild_installs_dlcourse_in_a_fresh_environment(tmp_path):
    postbuild = ROOT / "postBuild"
    assert os.access(postbuild, os.X_OK), "postBuild must be executable"
    env_dir = tmp_path / "binder-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    environ = dict(
        os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    )
    environ.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(postbuild)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    check = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m, importlib.util as u; "
            "print(m.version('dlcourse'), u.find_spec('dlcourse').origin)",
        ],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert check.returncode == 0, check.stderr
    version, origin = check.stdout.split()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert version == pyproject["project"]["version"]
    assert Path(origin) == ROOT / "dlcourse" / "__init__.py", "not editable"
