"""The optimizer step of a mindcv model with mindcv's own decay/no-decay parameter groups (interleaved: one
run per layer), as users train it: nn.RAdam called on fixed gradients from Python, and a whole
TrainOneStepCell step in GRAPH_MODE. Compares this checkout with another one (``--other``, e.g. an older
release's source tree with its kernel library), each in processes of its own, alternating.

    python scripts/interleaved_groups_benchmark.py --other /tmp/old_tree --model resnet18 --processes 3

Needs mindcv (``pip install mindcv``). Prints medians (ms) per process and the median of them.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(model_name, steps, warmup):
    os.environ.setdefault("GLOG_v", "3")
    import numpy as np
    import mindspore as ms
    from mindspore import Tensor, nn
    from mindcv.models import create_model
    from mindcv.optim.optim_factory import init_group_params
    from mindspore_radam.nn import RAdam

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    net = create_model(model_name, num_classes=10)
    groups = init_group_params(net.trainable_params(), 1e-4, "auto", [])
    optimizer = RAdam(groups, learning_rate=1e-3)
    rng = np.random.default_rng(0)
    grads = tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32) * 1e-3) for p in optimizer.parameters)
    calls = len(getattr(optimizer, "_calls", optimizer.steps))
    for _ in range(warmup):
        optimizer(grads)
    bare = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer(grads)
        ms.runtime.synchronize()
        bare.append((time.perf_counter() - start) * 1e3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss), optimizer)
    x = Tensor(rng.random((4, 3, 64, 64), dtype=np.float32))
    y = Tensor(rng.integers(0, 10, 4).astype(np.int32))
    for _ in range(warmup):
        train(x, y).asnumpy()
    whole = []
    for _ in range(steps):
        start = time.perf_counter()
        train(x, y).asnumpy()
        whole.append((time.perf_counter() - start) * 1e3)
    return {"params": len(optimizer.parameters), "runs": len(optimizer.steps), "calls": calls,
            "implementations": sorted(set(optimizer.implementations)),
            "optimizer_call": statistics.median(bare), "train_step": statistics.median(whole)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--other", help="another source tree to compare with (its package first on the path)")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.steps, args.warmup)))
        return
    trees = {"this checkout": ROOT}
    if args.other:
        trees["other"] = os.path.abspath(args.other)
    results = {label: [] for label in trees}
    for _ in range(args.processes):
        for label, tree in trees.items():
            env = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""))
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--model", args.model,
                                  "--steps", str(args.steps), "--warmup", str(args.warmup)],
                                 env=env, capture_output=True, text=True, check=True)
            results[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for label, rows in results.items():
        first = rows[0]
        print(f"{label}: {args.model}, {first['params']} Parameters in {first['runs']} runs, {first['calls']} "
              f"implementation calls per step ({', '.join(first['implementations'])})")
        for key in ("optimizer_call", "train_step"):
            values = [row[key] for row in rows]
            print(f"  {key}: median {statistics.median(values):.2f} ms (process medians "
                  f"{', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
