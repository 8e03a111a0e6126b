"""Step time of mindspore_radam.RAdam (each implementation) against the built-in
mindspore.experimental.optim.RAdam, measured in one process, interleaved round by round.

Reports, per workload, mode and optimizer: the median step time, the speedup over the built-in in
the same mode, the ratio to the memory floor (28 bytes per element: read p, g, m, v; write p, m, v)
at the bandwidth of an in-place NumPy add measured on the spot, and the RSS growth over the timed
steps (a step should allocate nothing proportional to the parameter count).

    python scripts/benchmark.py                      # writes docs/benchmark.md
    python scripts/benchmark.py --rounds 5 --workloads lenet5
"""
import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only

import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402
from mindspore import Parameter, Tensor  # noqa: E402
from mindspore.experimental import optim  # noqa: E402

import mindspore_radam  # noqa: E402
from mindspore_radam import RAdam  # noqa: E402

BYTES_PER_ELEMENT = 28


def workload_shapes(name):
    if name == "10M-10":
        return [(1_000_000,)] * 10
    if name == "10M-200":
        return [(50_000,)] * 200
    if name == "lenet5":
        from mindspore_radam.examples.lenet import LeNet5
        return [tuple(p.shape) for p in LeNet5().trainable_params()]
    raise ValueError(f"unknown workload {name!r}")


def stream_bandwidth(elements=20_000_000, repeats=15):
    """Bytes per second of an in-place float32 add (reads two arrays, writes one), median of repeats."""
    a = np.ones(elements, np.float32)
    b = np.ones(elements, np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.add(a, b, out=a)
        times.append(time.perf_counter() - start)
    return 12 * elements / statistics.median(times)


def rss_mb():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Variant:
    """One optimizer on its own copy of the workload's parameters, with fixed gradients."""

    def __init__(self, label, make, shapes, seed=0):
        rng = np.random.default_rng(seed)
        self.label = label
        self.params = [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=f"{label}.p{i}")
                       for i, s in enumerate(shapes)]
        self.grads = ms.mutable(tuple(Tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes))
        self.optimizer = make(self.params)
        # Reading the step count waits for the step (PyNative launches asynchronously).
        self.counter = self.optimizer.steps[0] if hasattr(self.optimizer, "steps") else self.optimizer.step_t
        self.times, self.rss_growth = [], []

    def step(self):
        self.optimizer(self.grads)
        self.counter.asnumpy()

    def timed(self, steps):
        before = rss_mb()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.times.append((time.perf_counter() - start) / steps * 1e3)
        self.rss_growth.append(rss_mb() - before)


class TorchVariant:
    """torch.optim.RAdam(foreach=True) on the same workload, when torch is installed (not a
    dependency: the column is left out otherwise). Mode-independent; run once per workload."""

    def __init__(self, shapes, seed=0):
        import torch
        rng = np.random.default_rng(seed)
        self.label = f"torch {torch.__version__.split('+')[0]} foreach"
        self.params = [torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
        for param, shape in zip(self.params, shapes):
            param.grad = torch.tensor(rng.standard_normal(shape).astype(np.float32))
        self.optimizer = torch.optim.RAdam(self.params, lr=1e-3, foreach=True)
        self.times, self.rss_growth = [], []

    def step(self):
        self.optimizer.step()

    timed = Variant.timed


def build_variants(shapes):
    """The built-in, ours as constructed with no ``fused`` argument (its label names the
    implementation it took), and our portable path forced, unless the default took it already."""
    builtin = Variant("built-in RAdam", lambda ps: optim.RAdam(ps, lr=1e-3), shapes)
    default = Variant("ours, default", lambda ps: RAdam(ps, lr=1e-3), shapes)
    implementation = default.optimizer.implementations[0]
    default.label += f" ({implementation})"
    if implementation == "hypermap":
        return [builtin, default]
    return [builtin, default, Variant("ours, hypermap", lambda ps: RAdam(ps, lr=1e-3, fused=False), shapes)]


def run(args):
    bandwidth = stream_bandwidth()
    rows = []
    for workload in args.workloads:
        shapes = workload_shapes(workload)
        elements = sum(int(np.prod(s)) for s in shapes)
        floor_ms = BYTES_PER_ELEMENT * elements / bandwidth * 1e3
        for mode in args.modes:
            ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
            variants = build_variants(shapes)
            if args.torch and mode == args.modes[0]:
                variants.append(TorchVariant(shapes))
            for variant in variants:  # compile and warm up
                for _ in range(3):
                    variant.step()
            for _ in range(args.rounds):
                for variant in variants:
                    variant.timed(args.steps)
            builtin = statistics.median(variants[0].times)
            for variant in variants:
                median = statistics.median(variant.times)
                rows.append(dict(workload=workload, elements=elements, tensors=len(shapes), mode=mode,
                                 label=variant.label, ms=median, speedup=builtin / median,
                                 floor=median / floor_ms, floor_ms=floor_ms, rss=max(variant.rss_growth)))
                print(f"{workload:8s} {mode:8s} {variant.label:15s} {median:8.3f} ms  x{builtin / median:5.2f} "
                      f"vs built-in  {median / floor_ms:6.2f}x floor ({floor_ms:.3f} ms)  "
                      f"RSS +{max(variant.rss_growth):.1f} MB", flush=True)
            del variants
    return bandwidth, rows


def markdown(args, bandwidth, rows):
    lines = [
        "| workload | mode | optimizer | median step (ms) | speedup vs built-in | × floor | RSS growth (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} ({r['elements']:,} params, {r['tensors']} tensors) | {r['mode']} | "
                     f"{r['label']} | {r['ms']:.3f} | {r['speedup']:.2f}× | {r['floor']:.2f} | {r['rss']:.1f} |")
    lines += [
        "",
        f"Floor: {BYTES_PER_ELEMENT} B/element at {bandwidth / 1e9:.1f} GB/s (in-place float32 NumPy add, "
        f"measured in the same run). Median of {args.rounds} rounds × {args.steps} steps, optimizers "
        f"interleaved each round; RSS growth is the largest over one round's steps.",
        f"Device: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}, MindSpore {ms.__version__}, NumPy {np.__version__}, "
        f"mindspore-radam {mindspore_radam.__version__}"
        + (f", torch {__import__('torch').__version__} (CPU, foreach; its mode column is not meaningful)"
           if args.torch else "") + ".",
        f"Command: `python scripts/benchmark.py {' '.join(sys.argv[1:])}`".rstrip() + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=["10M-10", "10M-200", "lenet5"],
                        choices=["10M-10", "10M-200", "lenet5"])
    parser.add_argument("--modes", nargs="+", default=["pynative", "graph"], choices=["pynative", "graph"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and optimizer")
    parser.add_argument("--out", default="docs/benchmark.md")
    parser.add_argument("--no-torch", dest="torch", action="store_false",
                        help="leave out torch.optim.RAdam(foreach=True), which runs when torch is installed")
    args = parser.parse_args(argv)
    if args.torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            args.torch = False
    bandwidth, rows = run(args)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(markdown(args, bandwidth, rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
