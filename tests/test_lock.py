"""The locked environment.

requirements.lock is current, hashed, mirrored for Binder, and it is what the
virtualenv holds.
"""

import importlib.metadata
import re
import sys
import sysconfig
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402

# Installed but not locked: the course package itself and the installer.
NOT_LOCKED = {"dlcourse", "pip"}


def _lock_text():
    return lock.LOCK.read_text()


def _locked():
    pins = lock.lock_pins(_lock_text())
    return {canonicalize_name(n): v for n, v in pins.items()}


def test_lock_is_generated_from_this_requirements_txt():
    assert not lock.stale(), (
        "; ".join(lock.stale()) + ": run `make lock` and commit both files"
    )


def test_every_locked_package_has_a_hash():
    entries = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", _lock_text())
    unhashed = [e.split()[0] for e in entries[1:] if "--hash=sha256:" not in e]
    assert len(entries) > 100, "the lock should hold the whole environment"
    assert not unhashed, f"no hash for: {unhashed}"


def test_every_direct_pin_is_locked_at_its_version():
    locked = _locked()
    problems = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        version = locked.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version):
            problems.append(
                f"{req.name}: pinned {req.specifier}, lock {version}"
            )
    assert not problems, "\n".join(problems)


def test_torch_is_the_cpu_build():
    assert _locked()["torch"].endswith("+cpu"), "the lock must take CPU torch"
    cuda = [n for n in _locked() if n.startswith("nvidia-") or n == "triton"]
    assert not cuda, f"CUDA packages in the lock: {cuda}"


def test_virtualenv_holds_exactly_the_lock():
    locked = _locked()
    # Only what is installed in site-packages: setuptools puts its vendored
    # copies (jaraco, more-itertools, ...) on sys.path once it is imported.
    paths = sorted(
        {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    )
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions(path=paths)
    }
    extra = sorted(set(installed) - set(locked) - NOT_LOCKED)
    missing = sorted(set(locked) - set(installed))
    wrong = sorted(
        f"{n} {installed[n]} (lock {locked[n]})"
        for n in set(installed) & set(locked)
        if installed[n] != locked[n]
    )
    assert not (extra or missing or wrong), (
        f"run `make venv`: not in the lock {extra}; missing {missing}; "
        f"other versions {wrong}"
    )
