"""Soak benchmark: many PyNative train steps of a small model with RAdam, reporting resident memory.

A long run must not grow: each step's scalars, graphs and state are reused, never accumulated.
The script samples RSS every --report-every steps after a warm-up and fits a line through the
samples; it writes a Markdown report (docs/soak.md by default) and exits 1 if RSS grew by more
than --max-growth-mb between the first sample after warm-up and the end.

The train step runs in PyNative; its forward and backward pass is compiled with ``mindspore.jit``
(``--grad jit``, the default) because MindSpore 2.10's eager ``value_and_grad`` itself grows by
about 8 KB per call, optimizer or not. ``--grad eager`` shows that, and ``--no-optimizer`` gives
the same loop without the optimizer, to tell whose growth it is.

    python scripts/soak.py                      # 100,000 steps (a few minutes on 2 cores)
    python scripts/soak.py --steps 20000 --lookahead --scheduler
    python scripts/soak.py --steps 5000 --grad eager [--no-optimizer]
"""
import argparse
import os
import platform
import resource
import sys
import time

os.environ.setdefault("GLOG_v", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402
from mindspore import Tensor, nn  # noqa: E402

from mindspore_radam import Lookahead, RAdam, lr_scheduler  # noqa: E402


def rss_mb():
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(args):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(0)
    net = nn.SequentialCell(nn.Dense(32, 64), nn.ReLU(), nn.Dense(64, 10))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = RAdam(net.trainable_params(), lr=1e-3, weight_decay=1e-4)
    if args.lookahead:
        optimizer = Lookahead(optimizer)
    scheduler = lr_scheduler.WarmupCosineLR(optimizer, warmup_steps=1000, total_steps=args.steps) \
        if args.scheduler else None

    def forward(data, label):
        return loss_fn(net(data), label)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)
    if args.grad == "jit":
        grad_fn = ms.jit(grad_fn)

    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        if not args.no_optimizer:
            optimizer(grads)
        return loss
    return train_step, scheduler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2_000, help="steps before the first sample")
    parser.add_argument("--report-every", type=int, default=5_000)
    parser.add_argument("--max-growth-mb", type=float, default=8.0)
    parser.add_argument("--lookahead", action="store_true", help="wrap RAdam in Lookahead (Ranger)")
    parser.add_argument("--scheduler", action="store_true", help="step a WarmupCosineLR every step")
    parser.add_argument("--grad", choices=("jit", "eager"), default="jit",
                        help="compile the forward and backward pass with mindspore.jit, or run it eagerly")
    parser.add_argument("--no-optimizer", action="store_true", help="baseline: the same loop without the update")
    parser.add_argument("--output", default=os.path.join("docs", "soak.md"))
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error(f"--steps must exceed --warmup ({args.warmup})")

    train_step, scheduler = build(args)
    rng = np.random.default_rng(0)
    data = Tensor(rng.standard_normal((64, 32)).astype(np.float32))
    label = Tensor(rng.integers(0, 10, 64).astype(np.int32))
    samples = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = train_step(data, label)
        if scheduler is not None:
            scheduler.step()
        if (step >= args.warmup and (step - args.warmup) % args.report_every == 0) or step == args.steps:
            loss_value = float(loss.asnumpy())  # also waits for the step
            samples.append((step, rss_mb(), loss_value))
            print(f"step {step:>7}: RSS {samples[-1][1]:8.1f} MB, loss {loss_value:.4f}", flush=True)
    elapsed = time.perf_counter() - start

    steps, rss = np.array([s[0] for s in samples]), np.array([s[1] for s in samples])
    growth = rss[-1] - rss[0]
    slope = np.polyfit(steps, rss, 1)[0] * 100_000 if len(samples) > 1 else 0.0
    flat = growth <= args.max_growth_mb
    lines = [
        "# Soak: RSS over a long PyNative run",
        "",
        f"`python scripts/soak.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        f"MindSpore {ms.__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; PyNative, a 32-64-10 MLP, batch 64, "
        + ("no optimizer" if args.no_optimizer else "RAdam" + (" in Lookahead" if args.lookahead else ""))
        + (", WarmupCosineLR stepped every step" if args.scheduler else "")
        + f", {args.grad} forward/backward; {elapsed / args.steps * 1e3:.2f} ms per step.",
        "",
        f"RSS growth from step {steps[0]} to {steps[-1]}: **{growth:+.1f} MB** "
        f"(fitted slope {slope:+.2f} MB per 100k steps; limit {args.max_growth_mb} MB): "
        + ("flat." if flat else "GROWING."),
        "",
        "| step | RSS (MB) | loss |",
        "|---:|---:|---:|",
    ] + [f"| {s} | {r:.1f} | {v:.4f} |" for s, r, v in samples]
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as report:
        report.write("\n".join(lines) + "\n")
    print(lines[6])
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
