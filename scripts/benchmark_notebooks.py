"""Timing report for the course: run time and peak memory of every notebook,
and the book build.

Each notebook runs in a fresh subprocess (nbclient, kernel ``python3``, working
directory = the notebook's folder; the notebook file is not modified). The peak
memory is the kernel's peak resident set size, read in that subprocess after
the kernel has exited (``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest
reaped child, i.e. the kernel). Everything runs on at most 2 CPU cores (CPU
affinity and OMP/MKL thread counts), like Binder.

This is a report, not a test: it exits 0 even when a budget is exceeded
(overruns are marked), and 1 only when a notebook or the build fails to run.

The kernels run under the course's canonical numerics (``scripts/numerics.py``),
as in ``make test``; ``--numerics native`` measures what a student's JupyterLab
does instead.

    python scripts/benchmark_notebooks.py [NOTEBOOK ...] [--json PATH]
        [--no-build] [--numerics {canonical,native}]
"""

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numerics

ROOT = Path(__file__).resolve().parents[1]
CORES = 2
NOTEBOOK_BUDGET = {"seconds": 60, "peak_mb": 1536}
BUILD_BUDGET = {"seconds": 120}


def limit_cores(n=CORES):
    """Pin this process (and so every child) to n cores.

    Return the cores used.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
        return sorted(os.sched_getaffinity(0))
    return None


def children_peak_mb():
    """Peak RSS of the largest reaped child process, in MB.

    ru_maxrss is in KiB on Linux.
    """
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def child_notebook(path, timeout):
    """Runs in the fresh subprocess: execute one notebook.

    Prints its measurements as JSON.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    start, error = time.perf_counter(), None
    try:
        # starts the kernel, runs every cell, shuts the kernel down
        client.execute()
    except Exception as exc:
        # report it instead of a traceback in the middle of the table;
        # the last line, with no colours
        last_line = (
            re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()[-1]
        )
        error = f"{type(exc).__name__}: {last_line[:200]}"
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": children_peak_mb(), "error": error}
        )
    )


def child_build():
    """Runs in a fresh subprocess: build the book into a temporary folder.

    Prints the measurements as JSON.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [str(jupyter_book), "build", str(ROOT), "--path-output", out],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    error = (
        None
        if proc.returncode == 0
        else (proc.stdout + proc.stderr).strip()[-300:]
    )
    print(
        json.dumps(
            {"seconds": seconds, "peak_mb": children_peak_mb(), "error": error}
        )
    )


def measure(child_args, cwd):
    """Run this script in child mode in a fresh Python process.

    Return its measurements.
    """
    proc = subprocess.run(
        [sys.executable, __file__, *child_args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    if proc.returncode != 0:
        return {
            "seconds": None,
            "peak_mb": None,
            "error": proc.stderr.strip()[-300:],
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verdict(result, budget):
    """'yes', or what went over / wrong.

    In bold, so that it stands out in the table.
    """
    if result["error"]:
        return f"**FAILED**: {result['error'].splitlines()[-1]}"
    over = [
        f"{result[k]:.0f} {unit} > {budget[k]} {unit}"
        for k, unit in (("seconds", "s"), ("peak_mb", "MB"))
        if k in budget and result[k] > budget[k]
    ]
    return f"**NO: {'; '.join(over)}**" if over else "yes"


def fmt(value, digits):
    return "n/a" if value is None else f"{value:.{digits}f}"


def find_notebooks():
    # the chapters; book/exercises/ holds the blank student versions, which
    # raise by design
    skip = {".ipynb_checkpoints", "_build", "exercises"}
    return sorted(
        p
        for p in (ROOT / "book").rglob("*.ipynb")
        if not skip.intersection(p.relative_to(ROOT).parts)
    )


def main():
    # the summary, the docstring's first paragraph (argparse joins its lines)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to run (default: all under book/)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the results as JSON",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="skip timing the book build"
    )
    parser.add_argument(
        "--timeout", type=int, default=600, help="per-cell timeout in seconds"
    )
    parser.add_argument(
        "--numerics",
        choices=numerics.MODES,
        default="canonical",
        help="numerics of the kernels (default: canonical, as in make test)",
    )
    # internal: one measurement
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return (
            child_build()
            if args.child == ":build"
            else child_notebook(args.child, args.timeout)
        )

    cores = limit_cores()
    # before torch: the kernels inherit this environment
    numerics.apply(args.numerics)
    # after limit_cores, so that it reports the thread count the kernels get
    import torch

    notebooks = [p.resolve() for p in args.notebooks] or find_notebooks()
    print(
        "# Notebook benchmark\n\n"
        f"Machine: {os.cpu_count()} cores, running on {len(cores or [])} "
        f"({cores}); torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; "
        f"Python {platform.python_version()}; {args.numerics} numerics.\n"
        f"Budget: <= {NOTEBOOK_BUDGET['seconds']} s and "
        f"<= {NOTEBOOK_BUDGET['peak_mb']} MB "
        f"per notebook; book build <= {BUILD_BUDGET['seconds']} s.\n"
    )
    print(
        "| notebook | seconds | peak MB | within budget |\n|---|---:|---:|---|",
        flush=True,
    )
    rows = []
    for path in notebooks:
        result = measure(
            ["--child", str(path), "--timeout", str(args.timeout)],
            cwd=path.parent,
        )
        name = str(
            path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        )
        rows.append(
            {
                "name": name,
                **result,
                "ok": verdict(result, NOTEBOOK_BUDGET) == "yes",
            }
        )
        print(
            f"| {name} | {fmt(result['seconds'], 1)} "
            f"| {fmt(result['peak_mb'], 0)} "
            f"| {verdict(result, NOTEBOOK_BUDGET)} |",
            flush=True,
        )
    if not args.no_build:
        result = measure(["--child", ":build"], cwd=ROOT)
        rows.append(
            {
                "name": "book build",
                **result,
                "ok": verdict(result, BUILD_BUDGET) == "yes",
            }
        )
        print(
            "| book build (jupyter-book, no execution) "
            f"| {fmt(result['seconds'], 1)} "
            f"| {fmt(result['peak_mb'], 0)} | {verdict(result, BUILD_BUDGET)} |"
        )

    over = [r["name"] for r in rows if not r["ok"] and not r["error"]]
    failed = [r["name"] for r in rows if r["error"]]
    print(
        f"\n{len(rows)} measured, {len(over)} over budget, "
        f"{len(failed)} failed to run."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu_count": os.cpu_count(),
                    "cores_used": cores,
                    "torch_threads": torch.get_num_threads(),
                    "budget": {
                        "notebook": NOTEBOOK_BUDGET,
                        "book_build": BUILD_BUDGET,
                    },
                    "results": rows,
                },
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
