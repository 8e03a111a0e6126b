"""A reproducer, without mindspore_radam, of the stall of MindSpore 2.10's CPU runtime in the
README quickstart's pattern: a ``mindspore.jit`` function of ``value_and_grad`` and
``optimizer(grads)`` called from PyNative.

Every optimizer whose graph writes Parameters with no control flow stalls there; one Tensor
condition around the update removes the stall. Each row runs in its own process (MindSpore reads its
runtime configuration once per process), LeNet5 (as in MindSpore's documentation), batch 32, random
data, each step synchronized by reading the loss:

- ``SGD, no control flow``: a 20-line SGD ``Cell`` (``HyperMap`` of ``assign(p, p - lr * g)``);
- ``SGD, one Tensor if``: the same, with ``if self.lr > 0:`` around the ``HyperMap``;
- MindSpore's own ``nn.SGD``, ``nn.Adam``, ``experimental.optim.SGD``, ``experimental.optim.Adam``
  (no control flow) and ``experimental.optim.RAdam`` (an ``if rho_t > 5`` per tensor);
- ``SGD, no control flow`` again with ``MS_DEV_RUNTIME_CONF="graph_pipeline:False"``, which
  tells the cause: the runtime's graph pipeline.

    python scripts/stall_reproducer.py               # prints a Markdown table
    python scripts/stall_reproducer.py --processes 3 --steps 30
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = ("SGD, no control flow", "SGD, one Tensor if", "nn.SGD", "nn.Adam", "experimental.optim.SGD",
            "experimental.optim.Adam", "experimental.optim.RAdam", "SGD, no control flow, graph_pipeline:False")


def measure(variant, steps):
    os.environ.setdefault("GLOG_v", "3")
    import numpy as np
    import mindspore as ms
    from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

    update = ops.MultitypeFuncGraph("sgd_update")

    @update.register("Tensor", "Tensor", "Tensor")
    def _sgd_update(lr, param, grad):
        return ops.assign(param, param - lr * grad)

    class SGD(nn.Cell):
        def __init__(self, params, guarded):
            super().__init__()
            self.parameters = ParameterTuple(params)
            self.lr = Parameter(Tensor(1e-3, ms.float32), name="lr")
            self.guarded = guarded

        def construct(self, grads):
            if self.guarded:
                if self.lr > 0:  # always true: the condition is only there to make control flow
                    ops.HyperMap()(ops.partial(update, self.lr), self.parameters, grads)
                return True
            return ops.depend(True, ops.HyperMap()(ops.partial(update, self.lr), self.parameters, grads))

    class LeNet5(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid")
            self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
            self.fc1, self.fc2, self.fc3 = nn.Dense(400, 120), nn.Dense(120, 84), nn.Dense(84, 10)
            self.relu, self.pool, self.flatten = nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten()

        def construct(self, x):
            x = self.pool(self.relu(self.conv1(x)))
            x = self.flatten(self.pool(self.relu(self.conv2(x))))
            return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))

    ms.set_seed(0)
    net = LeNet5()
    params = net.trainable_params()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = {
        "SGD, no control flow": lambda: SGD(params, False),
        "SGD, one Tensor if": lambda: SGD(params, True),
        "nn.SGD": lambda: nn.SGD(params, 1e-3),
        "nn.Adam": lambda: nn.Adam(params, 1e-3),
        "experimental.optim.SGD": lambda: ms.experimental.optim.SGD(params, 1e-3),
        "experimental.optim.Adam": lambda: ms.experimental.optim.Adam(params, 1e-3),
        "experimental.optim.RAdam": lambda: ms.experimental.optim.RAdam(params, 1e-3),
        "SGD, no control flow, graph_pipeline:False": lambda: SGD(params, False),
    }[variant]()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, params)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        return ops.depend(loss, optimizer(grads))

    rng = np.random.default_rng(0)
    x = Tensor(rng.random((32, 1, 32, 32), dtype=np.float32))
    y = Tensor(rng.integers(0, 10, 32).astype(np.int32))
    for _ in range(5):
        train_step(x, y).asnumpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(x, y).asnumpy()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--processes", type=int, default=3, help="processes per row, interleaved")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return 0
    results = {variant: [] for variant in args.variants}
    for _ in range(args.processes):
        for variant in args.variants:
            env = {k: v for k, v in os.environ.items() if k != "MS_DEV_RUNTIME_CONF"}
            if variant.endswith("graph_pipeline:False"):
                env["MS_DEV_RUNTIME_CONF"] = "graph_pipeline:False"
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", variant,
                                  "--steps", str(args.steps)], env=env, capture_output=True, text=True, check=True)
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{variant:45s} {results[variant][-1]:7.1f} ms", file=sys.stderr, flush=True)
    import mindspore as ms
    print("| optimizer in the jit train step | median step (ms), per process | median (ms) |")
    print("|---|---|---|")
    for variant, medians in results.items():
        print(f"| {variant} | {', '.join(f'{m:.1f}' for m in medians)} | {statistics.median(medians):.1f} |")
    command = " ".join(["python", "scripts/stall_reproducer.py", *sys.argv[1:]])
    print(f"\nLeNet5, batch 32, {args.steps} synchronized steps after 5 warm-up steps per process; "
          f"MindSpore {ms.__version__}, {os.cpu_count()} CPUs. Command: `{command}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
