"""The course's two numerics modes: canonical (outputs recorded and compared)
and native.

Floating-point results depend on the instruction set a library picks at run
time (torch's own kernels, MKL, numpy's SIMD loops and OpenBLAS each choose
AVX2 or AVX-512 kernels by the CPU) and on the number of threads that split a
reduction. Recorded notebook outputs therefore only match on the kind of CPU
that recorded them, unless every library is told to use the same code path
everywhere. The *canonical* mode does that, through environment variables read
when each library loads (so they must be set before ``import torch``):

``ATEN_CPU_CAPABILITY=default``
    torch's vectorized kernels use their portable build, not the AVX2/AVX-512
    ones.
``MKL_CBWR=COMPATIBLE``
    MKL's conditional numerical reproducibility: the same code path on any
    x86-64 CPU.
``NPY_DISABLE_CPU_FEATURES``
    numpy's SIMD loops stay at its baseline (x86-64-v2) instead of dispatching
    to AVX2 (v3) or AVX-512 (v4, ICL, SPR) versions.
``OPENBLAS_CORETYPE``
    numpy's OpenBLAS uses one kernel family (Haswell, AVX2) whatever the CPU;
    kept when the machine already sets it (some hosts need a particular value
    for correctness).
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``
    two threads unless a notebook asks otherwise
    (``seed_everything(threads=...)``).

oneDNN, which torch uses for convolutions, generates its kernels for the CPU
at hand and has no reproducible mode; it has no switch in the environment
either, so ``dlcourse.seed_everything`` turns it off in canonical mode
(``torch.backends.mkldnn.enabled = False``), and a convolution becomes an
unfold and an MKL matrix product.

Both modes also set ``OMP_WAIT_POLICY=PASSIVE`` (unless set already): idle
OpenMP threads sleep instead of spinning, which changes no result but keeps a
two-thread chapter from running many times slower on a machine whose cores are
busy with other work.

The cost is speed: torch's portable kernels are slower (about 1.5-2.5x on the
course's small networks). The *native* mode is what a student gets in
JupyterLab: every library picks the fastest kernels of the CPU; the claims hold
there too (``make test-robust`` checks that), only the last printed digits may
differ.

Use from the shell (``make`` does):
``python scripts/numerics.py canonical CMD ...`` runs CMD with the canonical
settings; ``python scripts/numerics.py native CMD ...`` with the native ones
and the other thread count. The root ``conftest.py`` applies the canonical mode
to every pytest run (and so to every nbval kernel) unless
``DLCOURSE_NUMERICS=native``. This file imports only the standard library, so
it can run before torch is loaded.
"""

from __future__ import annotations

import os
import sys

__all__ = ["CANONICAL", "NATIVE_UNSET", "apply", "environment"]

CANONICAL = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "2",
}
# Set only where the machine has no value of its own.
CANONICAL_DEFAULTS = {"OPENBLAS_CORETYPE": "Haswell"}
# Native mode: the canonical knobs removed, and seed_everything's thread count
# swapped (1 <-> 2), so that reductions are split differently too.
NATIVE_UNSET = tuple(k for k in CANONICAL if "THREADS" not in k)
MODES = ("canonical", "native")


def environment(mode: str, base: dict | None = None) -> dict:
    """Return a copy of ``base`` (default: os.environ) set up for ``mode``."""
    if mode not in MODES:
        raise ValueError(
            f"numerics: 'mode' must be one of {MODES}; got {mode!r}."
        )
    env = dict(os.environ if base is None else base)
    env["DLCOURSE_NUMERICS"] = mode
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if mode == "canonical":
        env.update(CANONICAL)
        for key, value in CANONICAL_DEFAULTS.items():
            env.setdefault(key, value)
        env.pop("DLCOURSE_THREADS", None)
    else:
        for key in NATIVE_UNSET:
            env.pop(key, None)
        env["DLCOURSE_THREADS"] = "swap"
    return env


def apply(mode: str) -> None:
    """Set up this process's environment for ``mode``.

    Call it before torch is imported.
    """
    if mode == "canonical" and "torch" in sys.modules:
        raise RuntimeError(
            "numerics: canonical mode must be set before torch is imported; "
            "torch is already loaded."
        )
    env = environment(mode)
    for key in set(os.environ) - set(env):
        del os.environ[key]
    os.environ.update(env)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in MODES:
        print(f"usage: numerics.py {{{'|'.join(MODES)}}} COMMAND [ARG ...]")
        return 2
    env = environment(argv[0])
    os.execvpe(argv[1], argv[1:], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
