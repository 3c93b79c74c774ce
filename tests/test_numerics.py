"""The numerics modes (scripts/numerics.py) and how the test run uses them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlcourse import seed_everything

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import numerics  # noqa: E402


def test_canonical_sets_every_knob_and_keeps_a_machine_coretype():
    env = numerics.environment("canonical", {"OPENBLAS_CORETYPE": "Zen"})
    for key, value in numerics.CANONICAL.items():
        assert env[key] == value
    assert env["OPENBLAS_CORETYPE"] == "Zen"  # the machine's own value wins
    assert numerics.environment("canonical", {})["OPENBLAS_CORETYPE"]
    assert env["DLCOURSE_NUMERICS"] == "canonical"
    assert "DLCOURSE_THREADS" not in env


def test_native_removes_the_knobs_and_swaps_threads():
    canonical = numerics.environment("canonical", {})
    env = numerics.environment("native", canonical)
    assert not set(numerics.NATIVE_UNSET) & set(env)
    assert env["DLCOURSE_THREADS"] == "swap"
    assert env["DLCOURSE_NUMERICS"] == "native"


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match=r"'mode' must be one of .*'fast'"):
        numerics.environment("fast")


def test_this_run_uses_the_mode_it_was_asked_for():
    mode = os.environ.get("DLCOURSE_NUMERICS")
    assert mode in numerics.MODES  # the root conftest.py always sets one
    capability = torch.backends.cpu.get_cpu_capability()
    if mode == "canonical":
        assert capability == "DEFAULT"
        assert os.environ["MKL_CBWR"] == "COMPATIBLE"


def test_canonical_convolutions_do_not_use_onednn(monkeypatch):
    # oneDNN picks its convolution kernels by the CPU: canonical runs must
    # not use it, native ones keep it (seed_everything decides)
    before = torch.backends.mkldnn.enabled
    try:
        monkeypatch.setenv("DLCOURSE_NUMERICS", "native")
        torch.backends.mkldnn.enabled = True
        seed_everything(0)
        assert torch.backends.mkldnn.enabled
        monkeypatch.setenv("DLCOURSE_NUMERICS", "canonical")
        seed_everything(0)
        assert not torch.backends.mkldnn.enabled
        # and a convolution is then exactly an unfold and a matrix product
        g = torch.Generator().manual_seed(0)
        x = torch.randn(3, 4, 40, generator=g, dtype=torch.float64)
        w = torch.randn(6, 4, 5, generator=g, dtype=torch.float64)
        y = torch.nn.functional.conv1d(x, w)
        cols = x.unfold(-1, 5, 1)  # (3, 4, 36, 5)
        ref = torch.einsum("bcjk,ock->boj", cols, w)
        torch.testing.assert_close(y, ref)
    finally:
        torch.backends.mkldnn.enabled = before


def test_command_line_runs_a_command_in_the_mode():
    code = "import os, torch; print(torch.backends.cpu.get_cpu_capability())"
    script = ROOT / "scripts" / "numerics.py"
    out = subprocess.run(
        [sys.executable, str(script), "canonical", sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "DEFAULT"
    usage = subprocess.run([sys.executable, str(script)], capture_output=True)
    assert usage.returncode == 2


@pytest.mark.parametrize("asked, used", [(1, 2), (2, 1), (4, 1)])
def test_seed_everything_swaps_threads_in_the_robust_run(
    monkeypatch, asked, used
):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("DLCOURSE_THREADS", "swap")
        seed_everything(0, threads=asked)
        assert torch.get_num_threads() == used
        monkeypatch.delenv("DLCOURSE_THREADS")
        seed_everything(0, threads=asked)
        assert torch.get_num_threads() == asked
    finally:
        torch.set_num_threads(before)
