"""Time of a user's whole train step (forward, backward, optimizer) with each optimizer.

scripts/benchmark.py times bare optimizer steps; this script times what users time: their train
step, in the three patterns they write, on three models, with

- no optimizer (the gradients are computed and consumed, nothing is updated),
- the built-in ``mindspore.experimental.optim.RAdam``,
- ``mindspore_radam.RAdam()`` as constructed with no ``fused`` argument (the default),
- each implementation of ours, forced (``fused=False``: hypermap; ``fused=True``: fused).

Patterns (all on random data, synchronized every step by reading the loss, as a loop that logs the
loss does):

- ``jit``: a ``mindspore.jit`` function of ``value_and_grad`` and ``optimizer(grads)``, called
  from PyNative (the README quickstart);
- ``cell``: ``nn.TrainOneStepCell(nn.WithLossCell(net, loss), optimizer)`` in GRAPH_MODE (what
  ``mindspore.train.Model`` builds);
- ``split``: a ``mindspore.jit``-compiled ``value_and_grad``, then ``optimizer(grads)`` from
  PyNative (the PyNative example's step);
- ``eager``: an eager ``value_and_grad``, then ``optimizer(grads)`` (MindSpore's tutorials);
- ``dynamic``: ``jit(dynamic=1)`` from PyNative with batch sizes varying (the dynamic-shape graph).

Models: LeNet5 (batch 32, 8 parameter tensors, 62k parameters), an MLP 1024-2048-2048-1024-10
(batch 32, 8 tensors, 8.4M parameters), and a deep MLP of 64 Dense(128, 128) layers and a head
(batch 32, 130 tensors, 1.1M parameters).

Every row (model, pattern, optimizer) runs in a process of its own, since MindSpore's runtime
threads behave differently from process to process; rows are interleaved, one process of every
row per round, and the table gives the median over the processes of each process's median step,
with the spread (lowest and highest process median).

``--tree LABEL=PATH`` (repeatable) adds our rows run from another source tree (an earlier release,
its kernel built in place: ``python setup.py build_ext --inplace``), interleaved with this one's in
the same run: the A/B that any change to a per-call or per-step path needs.

    python scripts/train_step_benchmark.py                     # writes docs/train_step_benchmark.md
    python scripts/train_step_benchmark.py --processes 1 --steps 5 --models lenet5 --patterns jit
    python scripts/train_step_benchmark.py --tree last=/tmp/last_release --optimizers builtin default
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MODELS = ("lenet5", "mlp8m", "deep130")
MODEL_LABELS = {"lenet5": "LeNet5 (8 tensors, 62k params)",
                "mlp8m": "MLP 1024-2048-2048-1024-10 (8 tensors, 8.4M params)",
                "deep130": "deep MLP 64 x Dense(128, 128) (130 tensors, 1.1M params)"}
PATTERNS = ("jit", "cell", "split", "eager", "dynamic")
PATTERN_LABELS = {"jit": "jit function from PyNative", "cell": "TrainOneStepCell, GRAPH_MODE",
                  "split": "jit value_and_grad, optimizer from PyNative",
                  "eager": "eager value_and_grad, optimizer from PyNative",
                  "dynamic": "jit(dynamic=1) from PyNative, batch sizes varying"}
OPTIMIZERS = ("none", "builtin", "default", "hypermap", "fused")
THIS_TREE = "this"
BATCH = 32


def build_model(name):
    """(network, input batch, label batch) for one of MODELS."""
    import numpy as np
    import mindspore as ms
    from mindspore import nn
    from mindspore_radam.examples.lenet import LeNet5

    rng = np.random.default_rng(0)
    if name == "lenet5":
        net, features = LeNet5(), (1, 32, 32)
    elif name == "mlp8m":
        net = nn.SequentialCell(nn.Dense(1024, 2048), nn.ReLU(), nn.Dense(2048, 2048), nn.ReLU(),
                                nn.Dense(2048, 1024), nn.ReLU(), nn.Dense(1024, 10))
        features = (1024,)
    elif name == "deep130":
        layers = []
        for _ in range(64):
            layers += [nn.Dense(128, 128), nn.ReLU()]
        net, features = nn.SequentialCell(*layers, nn.Dense(128, 10)), (128,)
    else:
        raise ValueError(f"unknown model {name!r}")
    x = ms.Tensor(rng.random((BATCH,) + features, dtype=np.float32))
    y = ms.Tensor(rng.integers(0, 10, BATCH).astype(np.int32))
    return net, x, y


def make_optimizer(name, params):
    import mindspore as ms
    from mindspore_radam import RAdam
    if name == "none":
        return None
    if name == "builtin":
        return ms.experimental.optim.RAdam(params, lr=1e-3)
    fused = {"default": None, "hypermap": False, "fused": True}[name]
    kwargs = {} if fused is None else {"fused": fused}
    return RAdam(params, lr=1e-3, **kwargs)


def make_step(pattern, net, loss_fn, opt):
    """A function of (x, y) that takes one train step and returns the loss Tensor."""
    import mindspore as ms
    from mindspore import nn, ops

    def consume(loss, grads):
        """Without an optimizer, the backward pass is kept alive by using every gradient."""
        return loss + ops.addn([g.sum() for g in grads]) * 0

    params = net.trainable_params()
    if pattern == "cell":
        ms.set_context(mode=ms.GRAPH_MODE)
        with_loss = nn.WithLossCell(net, loss_fn)
        if opt is not None:
            return nn.TrainOneStepCell(with_loss, opt)

        class GradOnly(nn.Cell):
            def __init__(self):
                super().__init__()
                self.network, self.weights = with_loss, ms.ParameterTuple(params)
                self.grad = ops.GradOperation(get_by_list=True)

            def construct(self, x, y):
                return consume(self.network(x, y), self.grad(self.network, self.weights)(x, y))
        return GradOnly()

    ms.set_context(mode=ms.PYNATIVE_MODE)
    def forward(x, y):  # graph code: no lambda
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, params)
    if pattern in ("jit", "dynamic"):
        def jit_step(x, y):
            loss, grads = grad_fn(x, y)
            if opt is None:
                return consume(loss, grads)
            return ops.depend(loss, opt(grads))
        return ms.jit(jit_step, dynamic=1 if pattern == "dynamic" else 0)
    if pattern == "eager":
        def eager_step(x, y):
            loss, grads = grad_fn(x, y)
            if opt is None:
                return consume(loss, grads)
            opt(grads)
            return loss
        return eager_step
    if pattern == "split":
        compiled_grad = ms.jit(grad_fn)

        def split_step(x, y):
            loss, grads = compiled_grad(x, y)  # the gradients are computed whether used or not
            if opt is not None:
                opt(grads)
            return loss
        return split_step
    raise ValueError(f"unknown pattern {pattern!r}")


def measure(model, pattern, optimizer, steps, warmup):
    """Median and quartiles of the synchronized step time (ms) of one row, in this process."""
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms
    from mindspore import nn

    ms.set_seed(0)
    net, x, y = build_model(model)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = make_optimizer(optimizer, net.trainable_params())
    step = make_step(pattern, net, loss_fn, opt)
    # "dynamic": the first two batch sizes compile static graphs (jit(dynamic=1) keeps them for their
    # sizes), the third the dynamic-shape one, which runs every timed step (two more sizes, alternating).
    sizes = (BATCH, BATCH - 2, BATCH - 4, BATCH - 6) if pattern == "dynamic" else (BATCH,)
    batches = [(x[:size], y[:size]) for size in sizes]
    for index in range(max(warmup, len(sizes))):
        step(*batches[index % len(sizes)]).asnumpy()
    timed = batches[2:] if pattern == "dynamic" else batches
    times = []
    for index in range(steps):
        inputs = timed[index % len(timed)]
        start = time.perf_counter()
        step(*inputs).asnumpy()
        times.append((time.perf_counter() - start) * 1e3)
    q1, median, q3 = statistics.quantiles(times, n=4)
    implementation = getattr(opt, "implementations", [None])[0]
    import mindspore_radam
    return {"median": median, "q1": q1, "q3": q3, "implementation": implementation,
            "package": os.path.dirname(os.path.dirname(os.path.abspath(mindspore_radam.__file__)))}


def run_child(row, steps, warmup, trees):
    model, pattern, optimizer, tree = row
    env = dict(os.environ)
    if tree != THIS_TREE:  # our package from that tree; everything else (MindSpore, the models) as here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (trees[tree], env.get("PYTHONPATH"))))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", model, pattern, optimizer,
                          "--steps", str(steps), "--warmup", str(warmup)],
                         capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:  # recorded, not fatal: an older tree may fail a pattern (its error's last line)
        return {"failed": (out.stderr.strip().splitlines() or ["no output"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def optimizer_label(optimizer, tree, runs):
    label = {"none": "no optimizer", "builtin": "built-in RAdam", "hypermap": "ours, hypermap",
             "fused": "ours, fused"}.get(optimizer) or f"ours, default ({runs[0]['implementation']})"
    return label if optimizer in ("none", "builtin") or tree == THIS_TREE else f"{label} [{tree}]"


def markdown(args, results):
    import mindspore as ms
    lines = ["| model | pattern | optimizer | median step (ms) | spread of process medians (ms) | "
             "vs built-in |", "|---|---|---|---|---|---|"]
    for model in args.models:
        for pattern in args.patterns:
            rows = {(o, t): r for (m, p, o, t), r in results.items() if (m, p) == (model, pattern)}
            builtin = (statistics.median(r["median"] for r in rows["builtin", THIS_TREE] if "median" in r)
                       if ("builtin", THIS_TREE) in rows else None)
            for (optimizer, tree), runs in rows.items():
                failed = [r["failed"] for r in runs if "failed" in r]
                if failed:
                    lines.append(f"| {MODEL_LABELS[model]} | {PATTERN_LABELS[pattern]} | "
                                 f"{optimizer_label(optimizer, tree, [{'implementation': '?'}])} | failed | "
                                 f"{failed[0]} | - |")
                    continue
                medians = [r["median"] for r in runs]
                median = statistics.median(medians)
                ratio = f"{median / builtin:.2f}x" if builtin and optimizer != "none" else "-"
                lines.append(f"| {MODEL_LABELS[model]} | {PATTERN_LABELS[pattern]} | "
                             f"{optimizer_label(optimizer, tree, runs)} | {median:.1f} | "
                             f"{min(medians):.1f}-{max(medians):.1f} | {ratio} |")
    lines += ["", "\"vs built-in\": our median step time over the built-in's (below 1 is faster). "
              f"Batch {BATCH}, random data, each step synchronized by reading the loss; per process, "
              f"the median of {args.steps} steps after {args.warmup} warm-up steps; "
              f"{args.processes} processes per row, rows interleaved.",
              f"Device: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python "
              f"{platform.python_version()}, MindSpore {ms.__version__}; default runtime settings.",
              *([f"Other trees: " + ", ".join(f"[{label}] {path}" for label, path in args.trees.items())]
                if args.trees else []),
              "Command: `" + " ".join(["python", "scripts/train_step_benchmark.py", *sys.argv[1:]]) + "`."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "PATTERN", "OPTIMIZER"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--processes", type=int, default=5, help="processes per row")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--patterns", nargs="+", default=list(PATTERNS), choices=PATTERNS)
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="also run our rows from the source tree at PATH, labelled LABEL")
    parser.add_argument("--out", default="docs/train_step_benchmark.md")
    args = parser.parse_args(argv)
    args.trees = dict(item.split("=", 1) for item in args.tree)
    if args.child:
        print(json.dumps(measure(*args.child, args.steps, args.warmup)))
        return 0
    from mindspore_radam import _fused
    optimizers = [o for o in args.optimizers if o != "fused" or _fused.available()]
    trees = [THIS_TREE, *args.trees]
    results = {(m, p, o, t): [] for m in args.models for p in args.patterns for o in optimizers for t in trees
               if t == THIS_TREE or o not in ("none", "builtin")}
    for _ in range(args.processes):  # interleaved: one process of every row per round
        for row in results:
            run = run_child(row, args.steps, args.warmup, args.trees)
            results[row].append(run)
            if "failed" in run:
                print(f"{row[0]:8s} {row[1]:7s} {row[2]:9s} {row[3]:8s} failed: {run['failed']}", flush=True)
                continue
            print(f"{row[0]:8s} {row[1]:7s} {row[2]:9s} {row[3]:8s} {run['median']:8.1f} ms "
                  f"(q1 {run['q1']:.1f}, q3 {run['q3']:.1f}) {run['package']}", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(markdown(args, results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
