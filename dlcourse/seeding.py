"""Seeding: one call at the top of a notebook makes its runs repeatable."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from dlcourse._validation import check_int

__all__ = ["seed_everything"]


def seed_everything(seed: int = 0, *, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch, make torch deterministic, return a generator.

    Parameters
    ----------
    seed : int
        A non-negative seed.
    threads : int or None
        If given, the number of CPU threads torch may use. Fixing it makes
        floating-point reductions, and so printed numbers, the same on every run.

    Returns
    -------
    torch.Generator
        A generator seeded with ``seed``, to pass to functions that take
        ``generator=``.
    """
    check_int("seed_everything", "seed", seed, low=0)
    if threads is not None:
        check_int("seed_everything", "threads", threads, low=1)
        torch.set_num_threads(threads)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)
