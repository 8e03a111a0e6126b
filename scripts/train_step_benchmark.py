"""Time of a whole LeNet5 train step (forward, backward, optimizer) with each optimizer, against a
step that computes the gradients and skips the optimizer.

scripts/benchmark.py times bare optimizer steps; this script shows what a user's train step pays,
which on a small CPU machine is dominated by MindSpore's runtime rather than by the optimizer. The
control row updates the parameters with MindSpore's own ``ops.Adam`` (ApplyAdam) kernel, one per
parameter, to tell the runtime's cost from our op's.
Each (optimizer, runtime setting) runs in its own process, several times, because MindSpore reads
its runtime configuration (``MS_DEV_RUNTIME_CONF``) once at start and because the runtime's thread
scheduling differs from process to process. The step is a ``mindspore.jit`` function of
``value_and_grad`` and ``optimizer(grads)`` on a random batch, called from PyNative, and each
step is synchronized (``loss.asnumpy()``) before the next, as a loop that logs the loss does.

    python scripts/train_step_benchmark.py                 # writes docs/train_step_benchmark.md
    python scripts/train_step_benchmark.py --processes 1 --steps 20
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

OPTIMIZERS = ("no optimizer", "built-in RAdam", "ours, hypermap", "ours, fused", "ops.Adam kernels (control)")
RUNTIME_CONFS = {"default": None, "graph_pipeline:False": "graph_pipeline:False"}


def measure(optimizer, steps, batch):
    """Median and quartiles of the synchronized step time (ms) in this process."""
    os.environ.setdefault("GLOG_v", "3")
    import numpy as np
    import mindspore as ms
    from mindspore import nn, ops
    from mindspore_radam import RAdam
    from mindspore_radam.examples.lenet import LeNet5

    ms.set_seed(0)
    net = LeNet5()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    params = net.trainable_params()
    opt = {"no optimizer": lambda: None,
           "built-in RAdam": lambda: ms.experimental.optim.RAdam(params, lr=1e-3),
           "ours, hypermap": lambda: RAdam(params, lr=1e-3, fused=False),
           "ours, fused": lambda: RAdam(params, lr=1e-3, fused=True),
           "ops.Adam kernels (control)": lambda: AdamKernels(params)}[optimizer]()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, params)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        if opt is None:  # keep the backward pass: its outputs must be used
            return loss + ops.addn([g.sum() for g in grads]) * 0
        return ops.depend(loss, opt(grads))

    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.random((batch, 1, 32, 32), dtype=np.float32))
    y = ms.Tensor(rng.integers(0, 10, batch).astype(np.int32))
    for _ in range(5):
        train_step(x, y).asnumpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(x, y).asnumpy()
        times.append((time.perf_counter() - start) * 1e3)
    q1, median, q3 = statistics.quantiles(times, n=4)
    return {"median": median, "q1": q1, "q3": q3}


class AdamKernels:
    """The control: one in-place ``ops.Adam`` kernel per parameter (bias corrections off)."""

    def __init__(self, params):
        import mindspore as ms
        from mindspore import ParameterTuple, Parameter, Tensor, ops
        self.params = ParameterTuple(params)
        self.m = ParameterTuple(Parameter(ops.zeros(p.shape, p.dtype), name=f"m.{p.name}") for p in params)
        self.v = ParameterTuple(Parameter(ops.zeros(p.shape, p.dtype), name=f"v.{p.name}") for p in params)
        self.scalars = [Tensor(x, ms.float32) for x in (0.0, 0.0, 1e-3, 0.9, 0.999, 1e-8)]
        self.adam = ops.Adam()

    def __call__(self, grads):
        return tuple(self.adam(p, m, v, *self.scalars, g) for p, m, v, g in zip(self.params, self.m, self.v, grads))


def run_child(optimizer, conf, steps, batch):
    env = dict(os.environ)
    env.pop("MS_DEV_RUNTIME_CONF", None)
    if RUNTIME_CONFS[conf]:
        env["MS_DEV_RUNTIME_CONF"] = RUNTIME_CONFS[conf]
    out = subprocess.run([sys.executable, __file__, "--child", optimizer, "--steps", str(steps),
                          "--batch", str(batch)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(args, results):
    lines = ["| runtime (`MS_DEV_RUNTIME_CONF`) | optimizer | median step (ms), per process | "
             "median of processes (ms) |", "|---|---|---|---|"]
    for (conf, optimizer), runs in results.items():
        medians = [r["median"] for r in runs]
        lines.append(f"| {conf} | {optimizer} | {', '.join(f'{m:.1f}' for m in medians)} | "
                     f"{statistics.median(medians):.1f} |")
    import mindspore as ms
    lines += ["", f"LeNet5, batch {args.batch}, random data; a `jit` train step (`value_and_grad` + "
              f"`optimizer(grads)`) called from PyNative and synchronized every step; median over "
              f"{args.steps} steps after 5 warm-up steps, in each of {args.processes} processes per row.",
              f"Device: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python "
              f"{platform.python_version()}, MindSpore {ms.__version__}.",
              "Command: `" + " ".join(["python", "scripts/train_step_benchmark.py", *sys.argv[1:]]) + "`."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=OPTIMIZERS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--processes", type=int, default=3, help="processes per row")
    parser.add_argument("--runtime", nargs="+", default=list(RUNTIME_CONFS), choices=list(RUNTIME_CONFS))
    parser.add_argument("--out", default="docs/train_step_benchmark.md")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.steps, args.batch)))
        return 0
    from mindspore_radam import _fused
    optimizers = [o for o in OPTIMIZERS if o != "ours, fused" or _fused.available()]
    results = {}
    for conf in args.runtime:
        for optimizer in optimizers:
            results[(conf, optimizer)] = []
    for _ in range(args.processes):  # interleaved: one process of every row per round
        for conf, optimizer in results:
            run = run_child(optimizer, conf, args.steps, args.batch)
            results[(conf, optimizer)].append(run)
            print(f"{conf:22s} {optimizer:15s} {run['median']:8.1f} ms (q1 {run['q1']:.1f}, q3 {run['q3']:.1f})",
                  flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(markdown(args, results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
