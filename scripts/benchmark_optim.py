"""Speed report of the reference optimizers against their torch.optim twins.

One ``step()`` of each ``dlcourse.optim`` optimizer and of its ``torch.optim``
namesake, on the parameters of an MLP with about 1 M parameters
([512, 1024, 512, 10], ReLU) whose gradients are set once: the median over
many steps, after warm-up, of each in turn (interleaved, so that a busy
machine slows all of them alike). torch runs twice: its single-tensor path
(``foreach=False``, the one the reference code follows operation for
operation) and its default (on a CPU also the single-tensor path today; on a
GPU the multi-tensor ``foreach`` kernels). Ratios above 1 mean the reference
code is slower.

This is a report, not a test: it exits 0, and 1 only when a reference
optimizer is more than 2x slower than torch's single-tensor path (the
course's promise for its reference code), so that ``make benchmark-optim``
fails visibly then.

    python scripts/benchmark_optim.py [--steps N] [--threads T] [--numerics
        {native,canonical}]
"""

import argparse
import os
import statistics
import sys
import time

import numerics

BUDGET = 2.0  # reference / torch single-tensor, at most


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--numerics", choices=("native", "canonical"), default="native"
    )
    args = parser.parse_args(argv)
    numerics.apply(args.numerics)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch

    from dlcourse import optim as ours
    from dlcourse.nn.mlp import make_mlp

    torch.set_num_threads(args.threads)
    model = make_mlp(
        [512, 1024, 512, 10], generator=torch.Generator().manual_seed(0)
    )
    n_params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)
    grads = [
        torch.randn(p.shape, generator=g) * 1e-3 for p in model.parameters()
    ]

    cases = {
        "SGD (momentum 0.9, Nesterov)": (
            "SGD",
            dict(lr=1e-3, momentum=0.9, nesterov=True),
        ),
        "Adagrad": ("Adagrad", dict(lr=1e-2)),
        "RMSprop": ("RMSprop", dict(lr=1e-3)),
        "RMSprop (centered, momentum)": (
            "RMSprop",
            dict(lr=1e-3, centered=True, momentum=0.9),
        ),
        "Adadelta": ("Adadelta", dict()),
        "Adam": ("Adam", dict(lr=1e-3)),
        "Adam (amsgrad)": ("Adam", dict(lr=1e-3, amsgrad=True)),
        "AdamW": ("AdamW", dict(lr=1e-3)),
    }

    def make(cls, hyper, **extra):
        params = [
            torch.nn.Parameter(p.detach().clone()) for p in model.parameters()
        ]
        for p, grad in zip(params, grads):
            p.grad = grad.clone()
        return cls(params, **hyper, **extra)

    def time_steps(opts):
        times = {name: [] for name in opts}
        for _ in range(5):  # warm-up: state allocated, caches hot
            for opt in opts.values():
                opt.step()
        for _ in range(args.steps):
            for name, opt in opts.items():
                t0 = time.perf_counter()
                opt.step()
                times[name].append(time.perf_counter() - t0)
        return {name: statistics.median(t) for name, t in times.items()}

    print(
        f"One step on {n_params:,} parameters (MLP [512, 1024, 512, 10]), "
        f"median of {args.steps}; torch {torch.__version__}, "
        f"{args.threads} threads, {args.numerics} numerics."
    )
    header = (
        f"{'optimizer':30} {'dlcourse':>9} {'torch 1-tensor':>15} "
        f"{'torch default':>14} {'ratio':>6} {'ratio vs default':>17}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for label, (name, hyper) in cases.items():
        medians = time_steps(
            {
                "ours": make(getattr(ours, name), hyper),
                "single": make(
                    getattr(torch.optim, name), hyper, foreach=False
                ),
                "default": make(getattr(torch.optim, name), hyper),
            }
        )
        ratio = medians["ours"] / medians["single"]
        ratio_default = medians["ours"] / medians["default"]
        worst = max(worst, ratio)
        mark = "" if ratio <= BUDGET else "  over budget"
        print(
            f"{label:30} {medians['ours'] * 1e3:7.2f}ms "
            f"{medians['single'] * 1e3:13.2f}ms "
            f"{medians['default'] * 1e3:12.2f}ms {ratio:6.2f} "
            f"{ratio_default:17.2f}{mark}"
        )
    print(
        f"\nWorst ratio against torch's single-tensor path: {worst:.2f} "
        f"(budget {BUDGET:.0f}x)."
    )
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
