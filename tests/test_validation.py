"""The shared argument checks and the seeding helper."""

import numpy as np
import pytest
import torch

from dlcourse import seed_everything
from dlcourse._validation import (
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_real,
    check_type,
)


def test_messages_name_caller_parameter_range_and_value():
    with pytest.raises(
        ValueError, match=r"^f: 'p' must be in \[0, 1\); got 1.2\.$"
    ):
        check_in_range("f", "p", 1.2, 0.0, 1.0, high_inclusive=False)
    with pytest.raises(
        ValueError, match=r"^f: 'p' must be in \(0, 1\]; got 0\.$"
    ):
        check_in_range("f", "p", 0, 0.0, 1.0, low_inclusive=False)
    with pytest.raises(ValueError, match=r"^f: 'p' must be > 0; got -1\.$"):
        check_in_range("f", "p", -1, low=0.0, low_inclusive=False)
    with pytest.raises(ValueError, match=r"^f: 'p' must be <= 2; got 3\.$"):
        check_in_range("f", "p", 3, high=2.0)
    with pytest.raises(ValueError, match=r"^f: 'p' must be < 2; got 2\.$"):
        check_in_range("f", "p", 2, high=2.0, high_inclusive=False)
    assert check_in_range("f", "p", 0.5, 0.0, 1.0) == 0.5


def test_real_int_choice_type():
    with pytest.raises(TypeError, match=r"'x' must be a real number; got bool"):
        check_real("f", "x", True)
    with pytest.raises(ValueError, match=r"'x' must be finite; got inf"):
        check_real("f", "x", float("inf"))
    with pytest.raises(TypeError, match=r"'n' must be an int; got float"):
        check_int("f", "n", 2.0)
    with pytest.raises(ValueError, match=r"'n' must be >= 1; got 0"):
        check_int("f", "n", 0, low=1)
    with pytest.raises(TypeError, match=r"'n' must be an int; got bool"):
        check_int("f", "n", True)
    with pytest.raises(TypeError, match=r"'n' must be an int; got float64"):
        check_int("f", "n", np.float64(2.0))
    with pytest.raises(
        ValueError, match=r"'a' must be one of 'x', 'y'; got 'z'"
    ):
        check_choice("f", "a", "z", ("x", "y"))
    with pytest.raises(TypeError, match=r"'m' must be a list; got int"):
        check_type("f", "m", 3, list, "a list")


def test_generator_check_accepts_a_generator_or_none_only():
    check_generator("f", None)
    check_generator("f", torch.Generator().manual_seed(0))
    with pytest.raises(
        TypeError,
        match=r"^f: 'generator' must be a torch.Generator or None; got int\.$",
    ):
        check_generator("f", 0)


def test_seed_everything_repeats_draws_and_returns_a_seeded_generator():
    g1 = seed_everything(7)
    a = torch.randn(3), torch.randn(2, generator=g1)
    g2 = seed_everything(7)
    b = torch.randn(3), torch.randn(2, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_seed_everything_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match=r"seed_everything: 'seed' must be >= 0; got -1"
    ):
        seed_everything(-1)
    with pytest.raises(
        TypeError, match=r"seed_everything: 'seed' must be an int; got str"
    ):
        seed_everything("0")
    with pytest.raises(
        ValueError, match=r"seed_everything: 'threads' must be >= 1; got 0"
    ):
        seed_everything(0, threads=0)


def test_int_check_accepts_numpy_integers_and_returns_an_int():
    got = check_int("f", "n", np.arange(5)[3], low=1)
    assert got == 3 and type(got) is int
    with pytest.raises(ValueError, match=r"'n' must be >= 1; got 0"):
        check_int("f", "n", np.int32(0), low=1)
