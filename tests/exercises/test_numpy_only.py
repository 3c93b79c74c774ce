"""The NumPy-only check of the graded exercises (`numpy_only`, in a
read-only cell of every problem set and copied into every hidden test)
catches each route from an answer to torch or dlcourse and lets NumPy
answers through.

Each answer below runs as in a notebook: its cells are compiled with a file
name of their own in linecache and run in one namespace named __main__; torch
is imported, as it is in a graded notebook after the first hidden test that
uses it. Every route is tried with the complete check and, where the route
allows, with only one of its two halves: the inspection of the function (the
names it loads, its constants, default values and closure, the cell that
defines it) and the watch over its run (calls into torch or dlcourse, which
sys.modules hides while the function runs).
"""

import builtins
import gc
import itertools
import linecache
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

SOURCE = Path(__file__).resolve().parents[2] / "exercises" / "source"
NOTEBOOK = SOURCE / "ps1_norm_penalties" / "ps1_norm_penalties.ipynb"
_CELLS = {
    c.metadata["nbgrader"]["grade_id"]: c.source
    for c in nbformat.read(NOTEBOOK, as_version=4).cells
}
_names = {"__name__": "numpy_only_cell"}
exec(compile(_CELLS["numpy_only"], "<numpy_only>", "exec"), _names)
numpy_only = _names["numpy_only"]


class static_only(numpy_only):
    """Only the inspection: the run is not watched."""

    def _watch(self, frame, event, arg):
        pass


class runtime_only(numpy_only):
    """Only the watch over the run: the function is not inspected."""

    def _inspect_function(self, f, seen):
        pass


_counter = itertools.count()


def notebook(*cells):
    """Run the cells, in order, in a fresh __main__ namespace."""
    names = {"__name__": "__main__", "__builtins__": builtins, "np": np}
    for source in (_CELLS["setup"],) + cells:
        filename = f"<cell {next(_counter)}>"
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        exec(compile(source, filename, "exec"), names)
    return names


def verdict(check, names, call="f(np.arange(3.0))"):
    """'pass' or 'fail' (with the message) for the call under `check`."""
    try:
        with check(names["f"]):
            eval(call, names)
    except AssertionError as e:
        return "fail", str(e)
    return "pass", ""


NUMPY = {
    "ufuncs": "def f(x):\n    return np.sqrt(np.abs(x)) + x.sum()",
    "random generator": """
def f(x):
    rng = np.random.default_rng(0)
    cov = np.full((3, 3), 0.2)
    np.fill_diagonal(cov, 1.0)
    e = rng.multivariate_normal(np.zeros(3), cov, size=10, method="cholesky")
    return float(np.mean(e.mean(axis=1) ** 2))""",
    "helper, class, generator": """
class Scale:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return self.k * np.linalg.solve(np.eye(len(x)), x)


def _double(x):
    return Scale(2.0)(x)


def f(x):
    return sum(v for v in _double(x))""",
    "setup helpers": "def f(x):\n    return rel_error(x, x + 1)",
    "a warning, a caught error, a message naming torch": """
import warnings


def f(x):
    try:
        {}["key"]
    except KeyError:
        pass
    if x.ndim > 3:
        raise ValueError("unlike torch.renorm, rows only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.float64(1.0) / (x - x)""",
}


@pytest.mark.parametrize("check", (numpy_only, static_only, runtime_only))
@pytest.mark.parametrize("case", NUMPY)
def test_numpy_answers_pass(case, check):
    assert verdict(check, notebook(NUMPY[case])) == ("pass", "")


def test_torch_in_the_test_does_not_count():
    names = notebook(NUMPY["ufuncs"])
    with numpy_only(names["f"]):
        for _ in range(3):
            t = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
            t.step()
            names["f"](np.arange(3.0))
    assert sys.modules["torch"] is torch


TORCH = "''.join(['tor', 'ch'])"  # a name the inspection cannot read
# route: (cells, the halves of the check that catch it on their own)
ROUTES = {
    "import in the function": (
        ["def f(x):\n    import torch\n    return torch.from_numpy(x)"],
        {static_only, runtime_only},
    ),
    "from dlcourse import": (
        [
            "def f(x):\n    from dlcourse.nn.init import he_normal_\n"
            "    return x"
        ],
        {static_only, runtime_only},
    ),
    "__import__": (
        ["def f(x):\n    return __import__('torch').from_numpy(x)"],
        {static_only, runtime_only},
    ),
    "__import__, computed name": (
        [f"def f(x):\n    return __import__({TORCH}).from_numpy(x)"],
        {runtime_only},
    ),
    "importlib": (
        [
            "import importlib\n\n\ndef f(x):\n"
            "    return importlib.import_module('torch').from_numpy(x)"
        ],
        {static_only, runtime_only},
    ),
    "importlib, computed name": (
        [
            "import importlib\n\n\ndef f(x):\n"
            f"    F = importlib.import_module({TORCH} + '.nn.functional')\n"
            "    return F.softshrink"
        ],
        {runtime_only},
    ),
    "sys.modules": (
        [
            "import sys\n\n\ndef f(x):\n"
            "    return sys.modules['torch'].from_numpy(x)"
        ],
        {static_only, runtime_only},
    ),
    "sys.modules, computed name": (
        [
            "import sys\n\n\ndef f(x):\n"
            f"    return sys.modules[{TORCH}].from_numpy(x)"
        ],
        {runtime_only},
    ),
    "default argument": (
        [f"def f(x, _t=__import__({TORCH})):\n    return _t.from_numpy(x)"],
        {static_only, runtime_only},
    ),
    "unused default argument": (
        [
            f"def f(x, *, _i=__import__({TORCH}).nn.init.kaiming_normal_):\n"
            "    return x"
        ],
        {static_only},
    ),
    "closure": (
        [
            "def make(t):\n    def f(x):\n        return t.from_numpy(x)\n\n"
            f"    return f\n\n\nf = make(__import__({TORCH}))"
        ],
        {static_only, runtime_only},
    ),
    "module-level import": (
        ["import torch as _t\n\n\ndef f(x):\n    return _t.from_numpy(x)"],
        {static_only, runtime_only},
    ),
    "unused import in the answer cell": (
        ["import torch\n\n\ndef f(x):\n    return x"],
        {static_only},
    ),
    "a global of another cell, by computed name": (
        [
            f"_t = __import__({TORCH})",
            "def f(x):\n    return globals()['_' + 't'].from_numpy(x).numpy()",
        ],
        {runtime_only},
    ),
    "a helper of another cell": (
        [
            f"def helper(x):\n    return __import__({TORCH}).from_numpy(x)",
            "def f(x):\n    return helper(x)",
        ],
        {runtime_only},
    ),
    "a method": (
        [
            f"class A:\n    def g(self, x):\n"
            f"        return __import__({TORCH}).from_numpy(x)\n\n\n"
            "def f(x):\n    return A().g(x)"
        ],
        {runtime_only},
    ),
    "functools.partial": (
        [
            "import functools\n\n"
            f"p = functools.partial(__import__({TORCH}).from_numpy)\n\n\n"
            "def f(x):\n    return p(x)"
        ],
        {static_only, runtime_only},
    ),
    "a tensor made beforehand": (
        [
            f"T = __import__({TORCH}).ones("
            f"3, dtype=__import__({TORCH}).double)",
            "def f(x):\n    return x * T.numpy()",
        ],
        {static_only, runtime_only},
    ),
    "np.asarray of a tensor": (
        [
            f"T = __import__({TORCH}).ones("
            f"3, dtype=__import__({TORCH}).double)",
            "def f(x):\n    return x * np.asarray(globals()['T'])",
        ],
        {runtime_only},
    ),
    "caught ImportError": (
        [
            f"def f(x):\n    try:\n        t = __import__({TORCH})\n"
            "        return t.from_numpy(x).numpy()\n    except Exception:\n"
            "        return x"
        ],
        {runtime_only},
    ),
    "profiler switched off": (
        ["import sys\n\n\ndef f(x):\n    sys.setprofile(None)\n    return x"],
        {runtime_only},
    ),
    "exec": (
        [f'exec("def f(x):\\n    return __import__({TORCH}).from_numpy(x)")'],
        {runtime_only},
    ),
    "not a notebook function": (
        [f"f = __import__({TORCH}).from_numpy"],
        {static_only, runtime_only},
    ),
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_to_torch_fails(route):
    cells, halves = ROUTES[route]
    for check in (numpy_only, static_only, runtime_only):
        result, message = verdict(check, notebook(*cells))
        if check is numpy_only or check in halves:
            assert result == "fail", (route, check.__name__)
            assert (
                "The answers must use NumPy only" in message
                or "must be a function defined in this notebook" in message
            ), message


def test_state_is_restored():
    before = sys.getprofile(), gc.isenabled()
    names = notebook(ROUTES["import in the function"][0][0])
    for error in (None, ValueError, KeyboardInterrupt):
        try:
            with runtime_only(names["f"]):
                with pytest.raises(ImportError):
                    names["f"](np.arange(3.0))
                assert sys.modules["torch"] is torch  # restored after f
                if error:
                    raise error
        except (AssertionError, ValueError, KeyboardInterrupt) as e:
            # an interrupt (the time limit) is let through as it is
            assert isinstance(e, KeyboardInterrupt) == (
                error is KeyboardInterrupt
            )
        assert sys.modules["torch"] is torch
        assert (sys.getprofile(), gc.isenabled()) == before
    assert "dlcourse" not in sys.modules or not isinstance(
        sys.modules["dlcourse"], _names["_Unavailable"]
    )
