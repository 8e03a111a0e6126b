"""What MindSpore charges to call a compiled step from Python, whatever the step does.

For each tensor count, times (median, with a sync every call) a ``jit`` function that takes the
gradients as a ``mutable`` tuple, as ``RAdam`` does, and only adds the first gradient to one
parameter; then a fused ``RAdam`` step on the same tiny tensors, where the arithmetic is
negligible. The first figure is a floor for any optimizer step called from Python; the difference
between the two is the cost of launching the AOT op with four inputs per parameter. Issue 3's bars
(0.25 ms for LeNet5's 8 tensors, 1.3x the memory floor for 10M parameters in 200 tensors) are to be
read against these.

    python scripts/launch_floor.py
    python scripts/launch_floor.py --tensors 8 200 --calls 200
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only

import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402
from mindspore import Parameter, Tensor, ops  # noqa: E402

from mindspore_radam import RAdam, _fused  # noqa: E402


def median_ms(call, calls, warmup=10):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(tensors, calls, size=16):
    params = [Parameter(Tensor(np.zeros(size, np.float32)), name=f"floor{tensors}.p{i}") for i in range(tensors)]
    grads = ms.mutable(tuple(Tensor(np.full(size, 1e-3, np.float32)) for _ in range(tensors)))
    first = params[0]

    @ms.jit
    def trivial_step(gradients):
        return ops.assign_add(first, gradients[0])

    row = {"tensors": tensors, "trivial": median_ms(lambda: trivial_step(grads).asnumpy(), calls)}
    if _fused.available():
        optimizer = RAdam(params, fused=True)
        row["fused"] = median_ms(lambda: (optimizer(grads), optimizer.steps[0].asnumpy()), calls)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tensors", type=int, nargs="+", default=[8, 50, 200])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--mode", choices=["pynative", "graph"], default="pynative")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)
    print(f"| tensors | trivial jit step, {args.mode} (ms) | fused RAdam step (ms) |")
    print("|---|---|---|")
    for tensors in args.tensors:
        row = measure(tensors, args.calls)
        fused = f"{row['fused']:.3f}" if "fused" in row else "library not built"
        print(f"| {tensors} | {row['trivial']:.3f} | {fused} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
