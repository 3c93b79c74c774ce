"""Tests for dlcourse.data.

The MNIST-1D cache, the digits split, and the toy objectives against autograd.
"""

from __future__ import annotations

import json
import math
import os
import random
import zipfile

import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian as autograd_hessian
from torch.testing import assert_close

from dlcourse import _store, data
from dlcourse.data import (
    Quadratic,
    Rosenbrock,
    Saddle,
    fresh_mnist1d,
    load_digits,
    load_mnist1d,
)

SHAPES = {
    "x": (4000, 40),
    "y": (4000,),
    "x_test": (1000, 40),
    "y_test": (1000,),
}
DTYPES = {
    "x": torch.float32,
    "y": torch.int64,
    "x_test": torch.float32,
    "y_test": torch.int64,
}


# --------------------------------------------------------------------- MNIST-1D


@pytest.fixture(scope="module")
def real_dataset():
    """The real generator's output, computed once for the module (~1 s)."""
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())


@pytest.fixture
def fake_generator(monkeypatch, real_dataset):
    """Replace make_dataset by a counter returning the real output instantly."""
    import mnist1d.data

    calls = []

    def make_dataset(args=None, template=None):
        calls.append(args)
        return {k: v.copy() for k, v in real_dataset.items() if k in SHAPES}

    monkeypatch.setattr(mnist1d.data, "make_dataset", make_dataset)
    return calls


@pytest.fixture
def expected(real_dataset):
    return {
        k: torch.from_numpy(
            np.asarray(
                real_dataset[k],
                dtype=np.float32 if k.startswith("x") else np.int64,
            )
        )
        for k in SHAPES
    }


def assert_equal_data(got, want):
    assert set(got) == set(SHAPES)
    for k in SHAPES:
        assert torch.equal(got[k], want[k]), k


def test_mnist1d_real_generator_shapes_dtypes_classes_and_cache(tmp_path):
    np.random.seed(123)
    random.seed(123)
    before = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    first = load_mnist1d(cache_dir=tmp_path)
    # The generator reseeds the global RNGs; load_mnist1d restores them.
    assert (np.random.rand(), random.random()) == before
    for k in SHAPES:
        assert first[k].shape == SHAPES[k] and first[k].dtype == DTYPES[k]
    assert torch.equal(first["y"].unique(), torch.arange(10))
    assert torch.equal(first["y_test"].unique(), torch.arange(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mnist1d-v1.npz"
    ]  # no temp left
    second = load_mnist1d(cache_dir=tmp_path)
    assert_equal_data(second, first)


# SHA-256 of the generated data under canonical numerics (scripts/numerics.py).
# Every chapter trains on these bytes: if generation rounds differently on some
# machine, every stored output that uses MNIST-1D would change there.
MNIST1D_CANONICAL_SHA256 = (
    "87cc3f888653577bdf2f9b3d6d76fa285e2994ed6f136f4eee4583cdcf57628f"
)


@pytest.mark.skipif(
    os.environ.get("DLCOURSE_NUMERICS") != "canonical",
    reason="the pinned bytes are those of canonical numerics",
)
def test_mnist1d_generates_the_same_bytes_as_everywhere_else(tmp_path):
    load_mnist1d(cache_dir=tmp_path)
    with np.load(tmp_path / "mnist1d-v1.npz") as f:
        meta = json.loads(str(f["meta"]))
    assert meta["sha256"] == MNIST1D_CANONICAL_SHA256


def test_mnist1d_second_call_loads_from_cache(
    tmp_path, fake_generator, expected, recwarn
):
    assert_equal_data(load_mnist1d(cache_dir=tmp_path), expected)
    assert_equal_data(load_mnist1d(cache_dir=tmp_path), expected)
    assert len(fake_generator) == 1
    assert len(recwarn) == 0


def _garbage(path):
    path.write_bytes(b"this is not a zip file" * 10)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path):
    path.write_bytes(b"")


def _rewrite(path, change):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def _corrupt_member(path):
    """Keep the zip directory intact but make the 'meta' member unreadable."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["meta.npy"] = b"\x93NUMPY garbage"
    with zipfile.ZipFile(path, "w") as z:
        for name, payload in members.items():
            z.writestr(name, payload)


def _tamper(path):
    _rewrite(path, lambda a: a["x"].__setitem__((0, 0), a["x"][0, 0] + 1))


def _wrong_shape_valid_checksum(path):
    def change(a):
        a["x"] = a["x"][:10]
        meta = json.loads(str(a["meta"]))
        meta["sha256"] = _store.digest(
            {k: v for k, v in a.items() if k != "meta"}
        )
        a["meta"] = np.array(json.dumps(meta))

    _rewrite(path, change)


def _wrong_dtype(path):
    _rewrite(path, lambda a: a.__setitem__("y", a["y"].astype(np.int32)))


def _missing_array(path):
    _rewrite(path, lambda a: a.pop("y_test"))


def _old_format(path):
    _rewrite(
        path,
        lambda a: a.__setitem__("meta", np.array(json.dumps({"format": 0}))),
    )


def _meta_not_object(path):
    _rewrite(path, lambda a: a.__setitem__("meta", np.array("[1, 2]")))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_garbage, r"not an \.npz \(zip\) file"),
        (_truncate, r"not an \.npz \(zip\) file"),
        (_empty, r"not an \.npz \(zip\) file"),
        (_corrupt_member, "could not be read"),
        (_tamper, "SHA-256"),
        (_wrong_shape_valid_checksum, r"'x' has shape \(10, 40\)"),
        (_wrong_dtype, "'y' has shape .* dtype int32"),
        (_missing_array, "holds arrays"),
        (_old_format, "was written for"),
        (_meta_not_object, "not a JSON object"),
    ],
)
def test_mnist1d_bad_cache_is_detected_and_rebuilt(
    tmp_path, fake_generator, expected, damage, reason
):
    load_mnist1d(cache_dir=tmp_path)
    damage(tmp_path / "mnist1d-v1.npz")
    with pytest.warns(
        UserWarning, match=f"load_mnist1d: rebuilt the cache file .* {reason}"
    ):
        got = load_mnist1d(cache_dir=tmp_path)
    assert_equal_data(got, expected)
    assert len(fake_generator) == 2
    # repaired: no rebuild
    assert_equal_data(load_mnist1d(cache_dir=tmp_path), expected)
    assert len(fake_generator) == 2


def test_mnist1d_regenerate_rebuilds(
    tmp_path, fake_generator, expected, recwarn
):
    load_mnist1d(cache_dir=tmp_path)
    assert_equal_data(
        load_mnist1d(cache_dir=tmp_path, regenerate=True), expected
    )
    assert len(fake_generator) == 2
    assert len(recwarn) == 0


def _below_a_file(tmp_path):
    # mkdir below it fails, even for root
    (tmp_path / "a-file").write_text("not a directory")
    return tmp_path / "a-file" / "cache"


def _cache_name_taken_by_a_directory(tmp_path):
    # os.replace onto it fails, even for root
    (tmp_path / "mnist1d-v1.npz").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "make_cache_dir", [_below_a_file, _cache_name_taken_by_a_directory]
)
def test_mnist1d_unwritable_cache_still_returns_data(
    tmp_path, fake_generator, expected, make_cache_dir
):
    cache_dir = make_cache_dir(tmp_path)
    with pytest.warns(
        UserWarning, match="load_mnist1d: could not write the cache file"
    ):
        got = load_mnist1d(cache_dir=cache_dir)
    assert_equal_data(got, expected)
    assert not [
        p for p in tmp_path.rglob("*.tmp")
    ]  # the temporary file was removed


def test_mnist1d_failed_write_leaves_no_partial_file(
    tmp_path, fake_generator, expected, monkeypatch
):
    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(data.np, "savez", broken_savez)
    with pytest.warns(UserWarning, match="could not write .*disk full"):
        got = load_mnist1d(cache_dir=tmp_path)
    assert_equal_data(got, expected)
    assert list(tmp_path.iterdir()) == []


def test_mnist1d_cache_location_from_environment(
    tmp_path, fake_generator, monkeypatch
):
    monkeypatch.setenv("DLCOURSE_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    load_mnist1d()
    assert (tmp_path / "env" / "mnist1d-v1.npz").is_file()
    # the argument wins over the environment
    load_mnist1d(cache_dir=tmp_path / "arg")
    assert (tmp_path / "arg" / "mnist1d-v1.npz").is_file()
    monkeypatch.delenv("DLCOURSE_CACHE_DIR")
    load_mnist1d()
    assert (tmp_path / "xdg" / "dlcourse" / "mnist1d-v1.npz").is_file()
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty means unset
    load_mnist1d()
    assert (
        tmp_path / "home" / ".cache" / "dlcourse" / "mnist1d-v1.npz"
    ).is_file()
    assert len(fake_generator) == 4


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            {"cache_dir": 3},
            TypeError,
            "load_mnist1d: 'cache_dir' must be a str, a path or None; got int",
        ),
        (
            {"cache_dir": ""},
            ValueError,
            "load_mnist1d: 'cache_dir' must be a non-empty path; got ''",
        ),
        (
            {"regenerate": 1},
            TypeError,
            "load_mnist1d: 'regenerate' must be a bool; got int",
        ),
    ],
)
def test_mnist1d_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_mnist1d(**kwargs)


# ----------------------------------------------------------------------- digits


def test_digits_shapes_and_dtypes():
    d = load_digits()
    assert d["x"].shape[1] == 64 and d["x_test"].shape[1] == 64
    assert len(d["x"]) + len(d["x_test"]) == 1797
    assert len(d["y"]) == len(d["x"]) and len(d["y_test"]) == len(d["x_test"])
    assert d["x"].dtype == torch.float32 and d["y"].dtype == torch.int64
    assert d["classes"] == tuple(range(10)) and d["image_shape"] == (8, 8)
    assert d["x"][0].reshape(d["image_shape"]).shape == (8, 8)
    assert torch.equal(d["y"].unique(), torch.arange(10))


def test_digits_class_subset_is_remapped_in_given_order():
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    d = load_digits(classes=(7, 3), standardize=False)
    assert d["classes"] == (7, 3)
    assert len(d["x"]) + len(d["x_test"]) == int(
        np.sum(np.isin(bunch.target, (7, 3)))
    )
    for x, y in ((d["x"], d["y"]), (d["x_test"], d["y_test"])):
        assert set(y.tolist()) == {0, 1}
        for label, digit in enumerate((7, 3)):
            rows = {
                r.tobytes()
                for r in bunch.data[bunch.target == digit].astype(np.float32)
            }
            assert all(
                (r * 16).numpy().tobytes() in rows for r in x[y == label]
            )


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.1])
def test_digits_split_is_stratified(fraction):
    from sklearn.datasets import load_digits as sklearn_digits

    # 174..183 images per digit
    per_class = np.bincount(sklearn_digits().target)
    d = load_digits(test_fraction=fraction)
    assert torch.bincount(d["y_test"]).tolist() == [
        round(fraction * n) for n in per_class
    ]
    assert torch.bincount(d["y"]).tolist() == [
        n - round(fraction * n) for n in per_class
    ]


def test_digits_every_class_keeps_a_train_and_a_test_image():
    for fraction in (1e-6, 1 - 1e-6):
        d = load_digits(classes=(0, 1), test_fraction=fraction)
        assert (
            torch.bincount(d["y"]).min() >= 1
            and torch.bincount(d["y_test"]).min() >= 1
        )


def test_digits_same_seed_same_split_other_seed_other_split():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    for k in ("x", "y", "x_test", "y_test"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["x"], c["x"])
    assert torch.bincount(a["y"]).tolist() == torch.bincount(c["y"]).tolist()


def test_digits_standardized_with_train_statistics_only():
    raw, std = load_digits(standardize=False), load_digits()
    assert raw["x"].min() >= 0 and raw["x"].max() <= 1
    assert torch.equal(raw["mean"], torch.zeros(64)) and torch.equal(
        raw["std"], torch.ones(64)
    )
    assert_close(std["x"].mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    varying = raw["x"].std(0) > 0
    assert_close(std["x"].std(0)[varying], torch.ones(int(varying.sum())))
    assert_close(std["mean"], raw["x"].mean(0))  # train statistics ...
    # ... used on test
    assert_close(std["x_test"], (raw["x_test"] - std["mean"]) / std["std"])
    # test set is not re-centred on itself
    assert std["x_test"].mean(0).abs().max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            {"classes": 3},
            TypeError,
            "load_digits: 'classes' must be a tuple or list of digits or None; "
            "got int",
        ),
        (
            {"classes": "01"},
            TypeError,
            "'classes' must be a tuple or list .*; got str",
        ),
        (
            {"classes": (0, 1.0)},
            TypeError,
            r"load_digits: 'classes\[1\]' must be an int; got float",
        ),
        (
            {"classes": (True, 0)},
            TypeError,
            r"'classes\[0\]' must be an int; got bool",
        ),
        (
            {"classes": (0, 10)},
            ValueError,
            r"load_digits: 'classes\[1\]' must be one of 0, 1, .*9; got 10",
        ),
        (
            {"classes": (-1, 2)},
            ValueError,
            r"'classes\[0\]' must be one of 0, .*; got -1",
        ),
        (
            {"classes": (3,)},
            ValueError,
            r"load_digits: 'len\(classes\)' must be >= 2; got 1",
        ),
        ({"classes": []}, ValueError, r"'len\(classes\)' must be >= 2; got 0"),
        (
            {"classes": (1, 2, 1)},
            ValueError,
            r"load_digits: 'classes' must be distinct digits; got \(1, 2, 1\)",
        ),
        (
            {"test_fraction": 0},
            ValueError,
            r"load_digits: 'test_fraction' must be in \(0, 1\); got 0",
        ),
        (
            {"test_fraction": 1.0},
            ValueError,
            r"'test_fraction' must be in \(0, 1\); got 1.0",
        ),
        (
            {"test_fraction": float("nan")},
            ValueError,
            "'test_fraction' must be finite; got nan",
        ),
        (
            {"test_fraction": "0.2"},
            TypeError,
            "'test_fraction' must be a real number; got str",
        ),
        ({"seed": -1}, ValueError, "load_digits: 'seed' must be >= 0; got -1"),
        (
            {"seed": 1.5},
            TypeError,
            "load_digits: 'seed' must be an int; got float",
        ),
        (
            {"standardize": "yes"},
            TypeError,
            "load_digits: 'standardize' must be a bool; got str",
        ),
    ],
)
def test_digits_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_digits(**kwargs)


# ------------------------------------------------------------------- objectives

OBJECTIVES = [
    Quadratic(),
    Quadratic(25.0, angle=math.pi / 5, center=(1.0, -2.0)),
    Rosenbrock(),
    Rosenbrock(a=-0.5, b=3.0),
    Saddle(),
]


def random_points(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 1.5


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_closed_form_gradient_matches_autograd(f):
    x = random_points().requires_grad_()
    f(x).sum().backward()
    assert_close(f.grad(x.detach()), x.grad)


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_closed_form_hessian_matches_autograd(f):
    for point in random_points():
        assert_close(f.hessian(point), autograd_hessian(f.value, point))


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_batch_evaluation_on_a_grid(f):
    grid = torch.stack(
        torch.meshgrid(
            torch.linspace(-2, 2, 7), torch.linspace(-1, 3, 5), indexing="ij"
        ),
        dim=-1,
    )  # (7, 5, 2)
    assert f(grid).shape == (7, 5) and f(grid).dtype == torch.float32
    assert f.grad(grid).shape == (7, 5, 2)
    assert f.hessian(grid).shape == (7, 5, 2, 2)
    assert_close(f(grid)[3, 2], f(grid[3, 2]))
    assert_close(f.hessian(grid)[3, 2], f.hessian(grid[3, 2]))


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
def test_critical_point_has_zero_gradient(f):
    point = f.saddle_point if isinstance(f, Saddle) else f.minimizer
    assert_close(f.grad(point), torch.zeros(2))
    assert_close(f(point), torch.tensor(0.0))


@pytest.mark.parametrize(
    "kappa, angle", [(1.0, 0.0), (10.0, 0.0), (100.0, 0.7), (3.5, -2.0)]
)
def test_quadratic_hessian_has_requested_condition_number(kappa, angle):
    f = Quadratic(kappa, angle=angle)
    eigenvalues = torch.linalg.eigvalsh(
        f.hessian(torch.zeros(2, dtype=torch.float64))
    )
    assert_close(eigenvalues, torch.tensor([1.0, kappa], dtype=torch.float64))
    # float32 default: rounding the entries to float32 perturbs the condition
    # number by up to about kappa * eps relative (the LAPACK kernel, and so the
    # last bits, depend on the CPU)
    eps32 = torch.finfo(torch.float32).eps
    assert_close(
        torch.linalg.cond(f.hessian()),
        torch.tensor(kappa),
        rtol=kappa * eps32,
        atol=0,
    )
    assert f.condition_number == kappa
    assert_close(f.hessian(torch.zeros(4, 2)), f.hessian().expand(4, 2, 2))


def test_quadratic_angle_rotates_the_steep_direction():
    f = Quadratic(10.0, angle=math.pi / 2)  # steep direction turned from x to y
    assert_close(f.hessian(), torch.diag(torch.tensor([10.0, 1.0])))


def test_minimizers_are_minima_and_saddle_is_not():
    assert torch.equal(Rosenbrock(a=2.0).minimizer, torch.tensor([2.0, 4.0]))
    for f in (Quadratic(5.0, center=(1.0, 2.0)), Rosenbrock()):
        assert bool(
            torch.all(torch.linalg.eigvalsh(f.hessian(f.minimizer)) > 0)
        )
    assert torch.linalg.eigvalsh(Saddle().hessian()).tolist() == [-2.0, 2.0]


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (
            lambda: Quadratic(0.5),
            ValueError,
            "Quadratic: 'condition_number' must be >= 1; got 0.5",
        ),
        (
            lambda: Quadratic("10"),
            TypeError,
            "Quadratic: 'condition_number' must be a real number; got str",
        ),
        (
            lambda: Quadratic(math.inf),
            ValueError,
            "'condition_number' must be finite; got inf",
        ),
        (
            lambda: Quadratic(angle=None),
            TypeError,
            "Quadratic: 'angle' must be a real number; got NoneType",
        ),
        (
            lambda: Quadratic(center=0.0),
            TypeError,
            "Quadratic: 'center' must be a pair of real numbers; got float",
        ),
        (
            lambda: Quadratic(center=(1.0, 2.0, 3.0)),
            ValueError,
            r"Quadratic: 'center' must be a pair of real numbers; "
            r"got \(1.0, 2.0, 3.0\)",
        ),
        (
            lambda: Quadratic(center=(1.0, "b")),
            TypeError,
            r"Quadratic: 'center\[1\]' must be a real number; got str",
        ),
        (
            lambda: Rosenbrock(b=0.0),
            ValueError,
            "Rosenbrock: 'b' must be > 0; got 0.0",
        ),
        (
            lambda: Rosenbrock(b="1"),
            TypeError,
            "Rosenbrock: 'b' must be a real number; got str",
        ),
        (
            lambda: Rosenbrock(a=math.nan),
            ValueError,
            "Rosenbrock: 'a' must be finite; got nan",
        ),
    ],
)
def test_objective_bad_parameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("f", OBJECTIVES, ids=repr)
@pytest.mark.parametrize("method", ["value", "grad", "hessian"])
@pytest.mark.parametrize(
    "x, exc, match",
    [
        (
            [1.0, 2.0],
            TypeError,
            r"\.{method}: 'x' must be a torch.Tensor; got list",
        ),
        (
            torch.tensor([1, 2]),
            TypeError,
            r"\.{method}: 'x' must be a floating-point tensor; got torch.int64",
        ),
        (
            torch.zeros(3),
            ValueError,
            r"\.{method}: 'x' must be of shape \(\.\.\., 2\); got \(3,\)",
        ),
        (
            torch.tensor(1.0),
            ValueError,
            r"\.{method}: 'x' must be of shape \(\.\.\., 2\); got \(\)",
        ),
    ],
)
def test_objective_bad_points(f, method, x, exc, match):
    with pytest.raises(
        exc, match=f"{type(f).__name__}" + match.format(method=method)
    ):
        getattr(f, method)(x)


def test_base_class_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        data.Objective()


def test_fresh_mnist1d_is_a_new_balanced_sample_of_the_same_generator():
    state = random.getstate(), np.random.get_state()[1].copy()
    a = fresh_mnist1d(7, 500)
    assert random.getstate() == state[0]  # the global RNGs are put back
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert a["x"].shape == (500, 40) and a["x"].dtype == torch.float32
    assert a["y"].dtype == torch.int64
    assert torch.bincount(a["y"], minlength=10).tolist() == [50] * 10
    b = fresh_mnist1d(7, 500)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    c = fresh_mnist1d(8, 500)
    assert not torch.equal(a["x"], c["x"])
    # standardized as the generator standardizes its own data
    assert abs(a["x"].mean().item()) < 1e-5
    assert abs(a["x"].std(correction=0).item() - 1) < 1e-5
    # no example of the course's data set comes back
    base = load_mnist1d()
    known = torch.cat([base["x"], base["x_test"]])
    nearest = torch.cdist(a["x"], known).min(1).values
    assert nearest.min() > 0.1


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(seed=42), ValueError, "a seed other than 42"),
        (dict(seed=-1), ValueError, "'seed' must be >= 0"),
        (dict(seed=1.5), TypeError, "'seed' must be an int"),
        (dict(seed=1, num_samples=0), ValueError, "'num_samples' must be"),
    ],
)
def test_fresh_mnist1d_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fresh_mnist1d(**kwargs)
