#!/usr/bin/env python3
"""Vendor the book's JavaScript into ``_vendor/``.

Then the HTML works with no network. The tarballs come from the npm registry
through the ordinary ``npm pack`` client (whatever registry npm is configured
with; no host is hard-coded here). Every tarball is checked against the sha512
``integrity`` pinned below before anything is extracted. Only the files the
pages load are kept:

    _vendor/book/mathjax/es5/tex-mml-chtml.js
        (+ the es5 folders MathJax loads lazily)
    _vendor/book/require.js
    _vendor/book/html-manager/embed-amd.js
        (+ the font files its CSS asks for)
    _vendor/tools/axe-core/axe.min.js
        (the accessibility checker the browser test runs on every page)

``_vendor/book/`` is the book's static folder (copied into the HTML output);
``_vendor/tools/`` is only for the tests and is not published.

Idempotent: a stamp file records the pins, this script's hash and a digest of
the extracted tree; when all match nothing is done, otherwise ``_vendor/`` is
rebuilt from scratch.

Run as ``.venv/bin/python scripts/vendor_assets.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "_vendor"
# dot file: Sphinx does not copy it to the HTML output
STAMP = VENDOR / ".stamp.json"

# what browsers ask for; .ttf/.eot/.svg are for old ones
FONT_SUFFIXES = (".woff2", ".woff")
MATHJAX_ENTRY = "tex-mml-chtml.js"


def mathjax_files(name: str) -> str | None:
    """es5/ minus the other combined builds (tex-svg.js, mml-chtml.js, ...)."""
    if name == "LICENSE":
        return "book/mathjax/LICENSE"
    if not name.startswith("es5/"):
        return None
    rest = name[len("es5/") :]
    if "/" not in rest and rest != MATHJAX_ENTRY:
        return None
    return f"book/mathjax/{name}"


def requirejs_files(name: str) -> str | None:
    return "book/require.js" if name == "require.js" else None


def html_manager_files(name: str) -> str | None:
    if name == "dist/embed-amd.js" or (
        name.startswith("dist/") and name.endswith(FONT_SUFFIXES)
    ):
        return "book/html-manager/" + name[len("dist/") :]
    return None


def axe_files(name: str) -> str | None:
    if name in ("axe.min.js", "LICENSE"):
        return f"tools/axe-core/{name}"
    return None


# npm name, exact version, npm "integrity" (sha512 of the tarball),
# file selector
ASSETS = [
    (
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        mathjax_files,
    ),
    (
        "requirejs",
        "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        requirejs_files,
    ),
    (
        "@jupyter-widgets/html-manager",
        "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        html_manager_files,
    ),
    (
        "axe-core",
        "4.14.1",
        "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        axe_files,
    ),
]
PINS = {
    name: {"version": version, "integrity": integrity}
    for name, version, integrity, _ in ASSETS
}
# Editing this script (e.g. the file selection) also invalidates _vendor/.
SCRIPT_SHA256 = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def tree_digest(folder: Path) -> str:
    """sha256 over every file's relative path and content (stamp excluded)."""
    h = hashlib.sha256()
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name != STAMP.name
    ):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def is_complete() -> bool:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return False
    return (
        stamp.get("pins") == PINS
        and stamp.get("script") == SCRIPT_SHA256
        and stamp.get("digest") == tree_digest(VENDOR)
    )


def npm_pack(spec: str, dest: Path) -> Path:
    """Download one package tarball into dest with `npm pack`.

    Return the tarball's path.
    """
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            "vendor_assets: `npm` not found; install Node.js/npm "
            "(e.g. `apt-get install npm`)."
        )
    proc = subprocess.run(
        [
            npm,
            "pack",
            spec,
            "--json",
            "--ignore-scripts",
            "--pack-destination",
            str(dest),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(
            f"vendor_assets: `npm pack {spec}` failed:\n{proc.stderr.strip()}"
        )
    return dest / json.loads(proc.stdout)[0]["filename"]


def check_integrity(tarball: Path, spec: str, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    actual = base64.b64encode(
        hashlib.new(algo, tarball.read_bytes()).digest()
    ).decode()
    if actual != expected:
        sys.exit(
            f"vendor_assets: INTEGRITY MISMATCH for {spec}\n"
            f"  pinned:     {integrity}\n  downloaded: {algo}-{actual}\n"
            "Refusing to vendor it. If the new version is intended, "
            "update the pin in this script."
        )


def extract(tarball: Path, select, out: Path) -> int:
    """Copy the selected members into out.

    ``select`` maps a member's path relative to the tarball's top folder to its
    path in out, or None to skip it.
    """
    count = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            top, _, name = member.name.partition("/")
            target = select(name) if member.isfile() else None
            if target is None:
                continue
            dest = (out / target).resolve()
            if not dest.is_relative_to(out.resolve()):
                sys.exit(
                    "vendor_assets: refusing suspicious path "
                    f"{member.name!r} in {tarball.name}"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())
            count += 1
    return count


def main() -> None:
    if is_complete():
        for name, version, _, _ in ASSETS:
            print(
                f"{name}@{version}: up to date in {VENDOR.relative_to(ROOT)}/"
            )
        return
    with tempfile.TemporaryDirectory(prefix="vendor-") as tmp:
        downloads, staging = Path(tmp, "npm"), Path(tmp, "_vendor")
        downloads.mkdir()
        staging.mkdir()
        for name, version, integrity, select in ASSETS:
            spec = f"{name}@{version}"
            tarball = npm_pack(spec, downloads)
            check_integrity(tarball, spec, integrity)
            count = extract(tarball, select, staging)
            if count == 0:
                sys.exit(
                    f"vendor_assets: nothing extracted from {spec}; "
                    "has its layout changed?"
                )
            print(
                f"{spec}: {count} files, integrity ok -> "
                f"{VENDOR.relative_to(ROOT)}/"
            )
        stamp = {
            "pins": PINS,
            "script": SCRIPT_SHA256,
            "digest": tree_digest(staging),
        }
        (staging / STAMP.name).write_text(json.dumps(stamp, indent=1) + "\n")
        # partial or outdated: start over
        shutil.rmtree(VENDOR, ignore_errors=True)
        shutil.copytree(staging, VENDOR)


if __name__ == "__main__":
    main()
