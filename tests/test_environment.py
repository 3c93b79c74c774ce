"""The course's one pinned environment.

requirements.txt, environment.yml (Binder), pyproject.toml and the running
virtualenv agree with each other.
"""

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _requirements(lines):
    """Requirement objects from requirement-file lines.

    Comments and options are skipped.
    """
    reqs = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            reqs.append(Requirement(line))
    return reqs


def _pins(reqs):
    """{canonical name: specifier text}, e.g. {"torch": "==2.13.0"}."""
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


def _requirements_txt():
    return _requirements((ROOT / "requirements.txt").read_text().splitlines())


def _environment_yml_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [
        d["pip"]
        for d in env["dependencies"]
        if isinstance(d, dict) and "pip" in d
    ]
    assert len(pip_lists) == 1, "environment.yml needs exactly one `pip:` list"
    return _requirements(pip_lists[0])


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_admits_every_pin_of_requirements_txt():
    # environment.yml lists the whole lock (tests/test_lock.py checks that it
    # equals the lock); here: each direct pin is there, at a version it admits.
    yml = {
        canonicalize_name(r.name): next(iter(r.specifier)).version
        for r in _environment_yml_pip()
    }
    differences = [
        f"{r.name}: requirements.txt {r.specifier}, "
        f"environment.yml {yml.get(canonicalize_name(r.name), '(absent)')}"
        for r in _requirements_txt()
        if not r.specifier.contains(
            yml.get(canonicalize_name(r.name), "0"), prereleases=True
        )
    ]
    assert not differences, "pins differ:\n" + "\n".join(differences)


def test_environment_yml_uses_python_3_11():
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())[
        "dependencies"
    ]
    assert "python=3.11" in deps


def test_every_requirement_is_pinned_exactly():
    loose = [
        str(r)
        for r in _requirements_txt()
        if len(r.specifier) != 1 or next(iter(r.specifier)).operator != "=="
    ]
    assert not loose, f"not pinned with '==': {loose}"


def test_installed_versions_match_pins():
    # "==2.13.0" admits the local version "2.13.0+cpu" (PEP 440).
    mismatches = []
    for req in _requirements_txt():
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            installed = "(not installed)"
        if installed == "(not installed)" or not req.specifier.contains(
            installed, prereleases=True
        ):
            mismatches.append(
                f"{req.name}: pinned {req.specifier}, installed {installed}"
            )
    assert not mismatches, "run `make venv` to install the pins:\n" + "\n".join(
        mismatches
    )


def test_no_cuda_packages():
    names = {
        canonicalize_name(d.metadata["Name"] or "")
        for d in importlib.metadata.distributions()
    }
    cuda = sorted(
        n
        for n in names
        if n.startswith("nvidia-") or n in {"triton", "pytorch-triton"}
    )
    assert not cuda, (
        f"CUDA packages installed (the course uses CPU-only torch): {cuda}"
    )
    import torch

    assert torch.version.cuda is None, (
        f"torch is a CUDA build (CUDA {torch.version.cuda})"
    )


@pytest.mark.parametrize("group", ["dependencies", "notebooks"])
def test_pyproject_ranges_admit_the_pins(group):
    project = _pyproject()
    deps = (
        project["dependencies"]
        if group == "dependencies"
        else project["optional-dependencies"][group]
    )
    pins = {canonicalize_name(r.name): r for r in _requirements_txt()}
    problems = []
    for dep in map(Requirement, deps):
        pin = pins.get(canonicalize_name(dep.name))
        if pin is None:
            problems.append(f"{dep.name}: not pinned in requirements.txt")
            continue
        version = next(iter(pin.specifier)).version
        if not dep.specifier.contains(version, prereleases=True):
            problems.append(
                f"{dep.name}: pyproject wants '{dep.specifier}', "
                f"pinned {version}"
            )
    assert not problems, "\n".join(problems)


def test_requires_python_admits_3_11():
    requires = _pyproject()["requires-python"]
    assert SpecifierSet(requires).contains("3.11.0"), (
        f"requires-python = {requires!r}"
    )
