"""Seeding: one call at the top of a notebook makes its runs repeatable."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from dlcourse._validation import check_int

__all__ = ["seed_everything"]


def seed_everything(
    seed: int = 0, *, threads: int | None = None
) -> torch.Generator:
    """Seed Python, NumPy and torch, and make torch deterministic.

    Also returns a generator seeded with ``seed``. In the course's canonical
    numerics (``DLCOURSE_NUMERICS=canonical``, set by the tests and by
    ``make notebooks``) it also turns off torch's oneDNN backend: oneDNN
    generates its convolution kernels for the CPU it runs on (AVX2 on one
    machine, AVX-512 on another) and has no reproducible mode, so a trained
    CNN's last digits would differ between machines. Without it, a
    convolution is an unfold and a matrix product, in torch's portable
    kernels and MKL's reproducible one.

    Parameters
    ----------
    seed : int
        A non-negative seed.
    threads : int or None
        If given, the number of CPU threads torch may use. Fixing it makes
        floating-point reductions, and so printed numbers, the same on every
        run. The course's robustness run (``make test-robust``) sets the
        environment variable ``DLCOURSE_THREADS=swap``, which turns 1 into 2
        and any other count into 1, so that each chapter's claims are checked
        under a different split of its reductions as well.

    Returns
    -------
    torch.Generator
        A generator seeded with ``seed``, to pass to functions that take
        ``generator=``.
    """
    check_int("seed_everything", "seed", seed, low=0)
    if threads is not None:
        check_int("seed_everything", "threads", threads, low=1)
        if os.environ.get("DLCOURSE_THREADS") == "swap":
            threads = 2 if threads == 1 else 1
        torch.set_num_threads(threads)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if os.environ.get("DLCOURSE_NUMERICS") == "canonical":
        torch.backends.mkldnn.enabled = False
    return torch.Generator().manual_seed(seed)
