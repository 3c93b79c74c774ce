"""Data for the book: MNIST-1D, scikit-learn's 8x8 digits, toy 2-D objectives.

Nothing here downloads anything. MNIST-1D is generated locally by the
``mnist1d`` package and cached as a checksummed ``.npz`` file; the digits ship
with scikit-learn; the objectives (Part II, the optimization chapters) are
formulas.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from dlcourse._store import cache_root, read_npz, write_npz
from dlcourse._validation import (
    _fail,
    check_choice,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.objectives import Objective, Quadratic, Rosenbrock, Saddle

__all__ = [
    "load_mnist1d",
    "fresh_mnist1d",
    "load_digits",
    "Objective",
    "Quadratic",
    "Rosenbrock",
    "Saddle",
]

# --------------------------------------------------------------------- MNIST-1D

_CACHE_FORMAT = 1  # bump when the layout of the cache file changes
_CACHE_NAME = f"mnist1d-v{_CACHE_FORMAT}.npz"
_MNIST1D_SPEC = {  # name -> (shape, dtype) of the arrays we return and cache
    "x": ((4000, 40), np.float32),
    "y": ((4000,), np.int64),
    "x_test": ((1000, 40), np.float32),
    "y_test": ((1000,), np.int64),
}


def _mnist1d_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        return "unknown"


def _generate_mnist1d() -> dict:
    """Run the ``mnist1d`` generator with its default arguments (seed 42)."""
    data = _run_generator()
    arrays = {
        k: np.ascontiguousarray(data[k], dtype=dt)
        for k, (_, dt) in _MNIST1D_SPEC.items()
    }
    assert all(arrays[k].shape == s for k, (s, _) in _MNIST1D_SPEC.items())
    return arrays


def _run_generator(**changes) -> dict:
    """``mnist1d``'s make_dataset with its default arguments, but ``changes``.

    make_dataset reseeds the global `random` and NumPy generators: they are
    put back.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for name, value in changes.items():
        setattr(args, name, value)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        return make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _read_cache(path: Path) -> tuple[dict | None, str | None]:
    """Read the cache file at ``path``.

    Return ``(arrays, None)`` if valid, ``(None, None)`` if missing, else
    ``(None, reason)``.
    """
    expected = {"format": _CACHE_FORMAT, "mnist1d": _mnist1d_version()}
    return read_npz(path, expected, _check_spec)


def _check_spec(stored: dict) -> str | None:
    if sorted(stored) != sorted(_MNIST1D_SPEC):
        return f"it holds arrays {sorted(stored)}, not {sorted(_MNIST1D_SPEC)}"
    for name, (shape, dtype) in _MNIST1D_SPEC.items():
        if stored[name].shape != shape or stored[name].dtype != dtype:
            a = stored[name]
            return f"'{name}' has shape {a.shape} and dtype {a.dtype}"
    return None


def _write_cache(path: Path, arrays: dict) -> str | None:
    """Write ``arrays`` atomically; return an error message, or None."""
    meta = {"format": _CACHE_FORMAT, "mnist1d": _mnist1d_version()}
    return write_npz(path, arrays, meta)


def load_mnist1d(
    *, cache_dir=None, regenerate: bool = False
) -> dict[str, torch.Tensor]:
    """MNIST-1D (Greydanus, 2020): 5,000 one-dimensional "digits" of length 40.

    The data are generated locally by ``mnist1d.data.make_dataset`` with the
    package's default arguments (seed 42), never downloaded, and cached in
    ``<cache>/mnist1d-v1.npz`` together with a SHA-256 checksum. A cache file
    that is unreadable, truncated, tampered with or of the wrong shape is
    rebuilt with a warning, never used. Generating takes about a second.

    Parameters
    ----------
    cache_dir : str, os.PathLike or None
        Directory of the cache. ``None`` means ``$DLCOURSE_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/dlcourse``, else ``~/.cache/dlcourse``. If it cannot
        be written the data are still returned, with a warning.
    regenerate : bool
        Generate again and overwrite the cache even if it is valid.

    Returns
    -------
    dict of torch.Tensor
        ``x`` (4000, 40) float32, ``y`` (4000,) int64 in 0..9, ``x_test``
        (1000, 40) and ``y_test`` (1000,). The same tensors whether generated or
        loaded from the cache.
    """
    where = "load_mnist1d"
    if cache_dir is not None:
        check_type(
            where,
            "cache_dir",
            cache_dir,
            (str, os.PathLike),
            "a str, a path or None",
        )
        if not os.fspath(cache_dir):
            _fail(where, "cache_dir", "a non-empty path", cache_dir)
    check_type(where, "regenerate", regenerate, bool, "a bool")
    path = cache_root(cache_dir) / _CACHE_NAME
    arrays, reason = (None, None) if regenerate else _read_cache(path)
    if reason is not None:
        warnings.warn(
            f"{where}: rebuilt the cache file {path} because {reason}.",
            stacklevel=2,
        )
    if arrays is None:
        arrays = _generate_mnist1d()
        error = _write_cache(path, arrays)
        if error is not None:
            warnings.warn(
                f"{where}: could not write the cache file {path} ({error}); "
                "returning the data without caching them.",
                stacklevel=2,
            )
    return {name: torch.from_numpy(arrays[name]) for name in _MNIST1D_SPEC}


def fresh_mnist1d(seed: int, num_samples: int = 2000) -> dict:
    """A new sample from the ``mnist1d`` generator, for a last, clean test.

    The generator of :func:`load_mnist1d` (the same templates and the same
    default arguments) run with another ``seed``: ``num_samples`` new
    examples of the same distribution that no choice of a chapter has seen.
    Seed 42 made :func:`load_mnist1d`'s data and is refused. Like the
    generator's own data, the sample is centred and scaled by one mean and
    one standard deviation of its values. Generated in about a second for
    2000 examples, never cached or downloaded.

    Returns
    -------
    dict of torch.Tensor
        ``x`` (num_samples, 40) float32 and ``y`` (num_samples,) int64.
    """
    where = "fresh_mnist1d"
    seed = check_int(where, "seed", seed, low=0)
    if seed == 42:
        _fail(
            where,
            "seed",
            "a seed other than 42 (it made load_mnist1d's data)",
            seed,
        )
    num_samples = check_int(where, "num_samples", num_samples, low=1)
    data = _run_generator(seed=seed, num_samples=num_samples, train_split=0.0)
    x = np.ascontiguousarray(data["x_test"], dtype=np.float32)
    y = np.ascontiguousarray(data["y_test"], dtype=np.int64)
    assert x.shape == (num_samples, 40) and y.shape == (num_samples,)
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}


# ----------------------------------------------------------------------- digits


def _check_classes(where: str, classes) -> tuple[int, ...]:
    check_type(
        where,
        "classes",
        classes,
        (tuple, list),
        "a tuple or list of digits or None",
    )
    for i, c in enumerate(classes):
        check_int(where, f"classes[{i}]", c)
        check_choice(where, f"classes[{i}]", c, tuple(range(10)))
    check_int(where, "len(classes)", len(classes), low=2)
    if len(set(classes)) != len(classes):
        _fail(where, "classes", "distinct digits", classes)
    return tuple(classes)


def load_digits(
    *,
    classes=None,
    test_fraction: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
) -> dict:
    r"""scikit-learn's 8x8 handwritten digits (1,797 images), split and scaled.

    The images ship with scikit-learn (no download). Pixels (0..16) are
    divided by 16, then, if ``standardize``, each pixel is standardized with
    the mean and standard deviation of the *training* images only,

    .. math:: x \leftarrow (x - \mu_\text{train}) / \sigma_\text{train},

    so no information leaks from the test set. Pixels that are constant on the
    training set (the borders) get :math:`\sigma = 1`.

    Parameters
    ----------
    classes : tuple or list of int, or None
        Distinct digits in 0..9, at least two, e.g. ``(0, 1)`` for a binary
        task. Label ``i`` means digit ``classes[i]``. ``None`` means all ten.
    test_fraction : float
        In (0, 1): share of each class held out for testing (stratified split).
        Every class keeps at least one training and one test image.
    seed : int
        Non-negative seed of the split; the same seed gives the same split.
    standardize : bool
        Standardize with training statistics (else pixels stay in [0, 1]).

    Returns
    -------
    dict
        ``x`` (n, 64) float32, ``y`` (n,) int64 in ``0..len(classes)-1``,
        ``x_test``, ``y_test``, ``classes`` (the digits, in label order),
        ``image_shape`` ``(8, 8)``, and ``mean``, ``std`` (64,) such that
        ``x = (pixels / 16 - mean) / std`` (zeros and ones if not
        ``standardize``).
    """
    where = "load_digits"
    classes = (
        tuple(range(10)) if classes is None else _check_classes(where, classes)
    )
    check_in_range(
        where,
        "test_fraction",
        test_fraction,
        0,
        1,
        low_inclusive=False,
        high_inclusive=False,
    )
    check_int(where, "seed", seed, low=0)
    check_type(where, "standardize", standardize, bool, "a bool")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # (1797, 64)
    pixels = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    target = torch.as_tensor(bunch.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    # stratified: split each class alone
    for label, digit in enumerate(classes):
        idx = torch.nonzero(target == digit).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = min(max(round(test_fraction * len(idx)), 1), len(idx) - 1)
        test.append((idx[:n_test], label))
        train.append((idx[n_test:], label))
    x, y = _gather(pixels, train, g)
    x_test, y_test = _gather(pixels, test, g)
    mean, std = torch.zeros(64), torch.ones(64)
    if standardize:
        mean, std = x.mean(0), x.std(0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        x, x_test = (x - mean) / std, (x_test - mean) / std
    return {
        "x": x,
        "y": y,
        "x_test": x_test,
        "y_test": y_test,
        "classes": classes,
        "image_shape": (8, 8),
        "mean": mean,
        "std": std,
    }


def _gather(pixels, parts, g):
    """Concatenate ``(indices, label)`` parts; shuffle so classes interleave."""
    idx = torch.cat([i for i, _ in parts])
    y = torch.cat(
        [torch.full((len(i),), label, dtype=torch.int64) for i, label in parts]
    )
    order = torch.randperm(len(idx), generator=g)
    return pixels[idx[order]], y[order]


# ------------------------------------------------------------------- objectives
