"""Checksummed ``.npz`` files in the course's cache directory.

What the course generates or trains itself (the ``mnist1d`` data, the
chapter 15 ablation's models) is kept as an ``.npz`` of arrays plus a JSON
``meta`` entry that holds a SHA-256 of the arrays. A file that is missing,
unreadable, written for other settings or whose checksum does not match is
reported (never trusted) so that the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np


def cache_root(cache_dir=None) -> Path:
    """The cache directory.

    ``cache_dir``, else $DLCOURSE_CACHE_DIR, $XDG_CACHE_HOME/dlcourse,
    ~/.cache/dlcourse.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("DLCOURSE_CACHE_DIR"):
        return Path(os.environ["DLCOURSE_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dlcourse"
    return Path.home() / ".cache" / "dlcourse"


def digest(arrays: dict) -> str:
    """SHA-256 of the names, dtypes, shapes and bytes of ``arrays``."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_npz(
    path, expected: dict, check=None
) -> tuple[dict | None, str | None]:
    """Read a cache file written by :func:`write_npz`.

    ``expected``: entries its metadata must hold (e.g. a format number);
    ``check(arrays)``: the reason the arrays are not what was asked for, or
    None (run before the checksum is). Return ``(arrays, None)`` if the
    file is valid, ``(None, None)`` if it is missing, else
    ``(None, reason)``.
    """
    # isfile is also False, not an error, for an unreadable directory.
    if not os.path.isfile(path):
        return None, None
    # is_zipfile first: np.load would take other bytes for a pickle.
    if not zipfile.is_zipfile(path):
        return None, "it is not an .npz (zip) file"
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
        meta = json.loads(str(stored.pop("meta")))
    # zip, zlib, json and I/O errors: all mean "unreadable"
    except Exception as exc:
        return None, f"it could not be read ({type(exc).__name__}: {exc})"
    if not isinstance(meta, dict):
        return None, "its metadata are not a JSON object"
    found = {k: meta.get(k) for k in expected}
    if found != expected:
        return None, f"it was written for {found}, not {expected}"
    reason = None if check is None else check(stored)
    if reason is not None:
        return None, reason
    if digest(stored) != meta.get("sha256"):
        return None, "its SHA-256 checksum does not match its contents"
    return stored, None


def write_npz(path, arrays: dict, meta: dict) -> str | None:
    """Write ``arrays`` and ``meta`` (plus their checksum) atomically.

    A temporary file is written, then renamed with ``os.replace``. Return an
    error message, or None on success.
    """
    path = Path(path)
    meta = json.dumps({**meta, "sha256": digest(arrays)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.array(meta), **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _sources_digest() -> str:
    """SHA-256 of every module of the ``dlcourse`` package."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"|")
        h.update(path.read_bytes())
    return h.hexdigest()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def computation_environment() -> dict:
    """What, besides its arguments, decides the bits a computation returns.

    The versions of torch and numpy, the source of every ``dlcourse``
    module, the numerics settings (scripts/numerics.py), torch's kernels,
    thread count and default dtype, and the CPU.
    """
    import torch

    knobs = (
        "ATEN_CPU_CAPABILITY",
        "MKL_CBWR",
        "NPY_DISABLE_CPU_FEATURES",
        "OPENBLAS_CORETYPE",
        "MKL_ENABLE_INSTRUCTIONS",
        "ONEDNN_MAX_CPU_ISA",
    )
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "dlcourse": _sources_digest(),
        "numerics": {k: os.environ.get(k) for k in knobs},
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.enabled,
        "threads": torch.get_num_threads(),
        "dtype": str(torch.get_default_dtype()),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "cpu": _cpu_model(),
    }


def cached_arrays(where: str, cache_dir, name: str, key: dict, compute):
    """``compute()`` (a dict of arrays), kept in a checksummed cache file.

    The file ``<cache>/<name>-<hash>.npz`` is named by a SHA-256 of ``key``
    (JSON) and of :func:`computation_environment`, and holds both: a file
    written for other arguments, another environment or with contents that
    do not match their checksum is rebuilt, with a warning. If the file
    cannot be written, the arrays are returned uncached, with a warning.
    ``cache_dir``: as :func:`cache_root`.
    """
    full = json.dumps(
        {"key": key, "environment": computation_environment()},
        sort_keys=True,
        default=str,
    )
    h = hashlib.sha256(full.encode()).hexdigest()
    path = cache_root(cache_dir) / f"{name}-{h[:32]}.npz"
    expected = {"format": 1, "key": full}
    arrays, reason = read_npz(path, expected)
    if arrays is not None:
        return arrays
    if reason is not None:
        warnings.warn(
            f"{where}: rebuilt the cache file {path} because {reason}.",
            stacklevel=3,
        )
    arrays = compute()
    error = write_npz(path, arrays, expected)
    if error is not None:
        warnings.warn(
            f"{where}: could not write the cache file {path} ({error}); "
            "returning the results without caching them.",
            stacklevel=3,
        )
    return arrays
