"""One rank of the data-parallel test, launched by msrun (or alone with --single).

A least-squares problem with two parameter groups (L2 and decoupled weight decay), a 0-d
parameter, and per-rank random initial values that rank 0's broadcast must overwrite. Each rank
takes its shard of a fixed batch; `nn.DistributedGradReducer` averages the gradients (unless
--no-reduce, the negative control). Writes OUT/rank_<r>.npz with parameters, state and steps.

    msrun --worker_num=2 ... dp_worker.py OUT --mode graph --implementation fused
    python dp_worker.py OUT --single --mode graph --implementation fused
"""
import argparse
import os

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
import mindspore as ms  # noqa: E402
from mindspore import Parameter, Tensor, nn, ops  # noqa: E402

from mindspore_radam import RAdam, dispatch  # noqa: E402
from mindspore_radam.examples.training import broadcast_from_rank0, init_distributed  # noqa: E402

STEPS = int(os.environ.get("DP_STEPS", "12"))
BATCH, FEATURES, OUTPUTS = 16, 8, 3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("pynative", "graph", "jit"), default="pynative")
    parser.add_argument("--implementation", choices=tuple(dispatch.IMPLEMENTATIONS), default="fused")
    parser.add_argument("--single", action="store_true", help="one process on the full batch")
    parser.add_argument("--no-reduce", action="store_true", help="negative control: no gradient reduction")
    args = parser.parse_args()
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE)

    rank, size = init_distributed() if not args.single else (0, 1)

    if os.environ.get("DP_DIE_RANK") == str(rank):  # failure test: this worker dies after joining
        os._exit(3)
    if os.environ.get("DP_HANG_RANK") == str(rank):  # hang test: this worker never finishes
        import time
        while True:
            time.sleep(1)
    # Different on every rank: only the broadcast from rank 0 makes the ranks agree.
    rng = np.random.default_rng(100 + rank)
    shapes = {"weight": (FEATURES, OUTPUTS), "bias": (OUTPUTS,), "scale": (), "weight2": (OUTPUTS, OUTPUTS)}
    params = [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=n) for n, s in shapes.items()]
    if not args.single:
        broadcast_from_rank0(params)
    if args.single:  # the broadcast values: rank 0's
        rng0 = np.random.default_rng(100)
        for param, shape in zip(params, shapes.values()):
            param.set_data(Tensor(rng0.standard_normal(shape).astype(np.float32)))

    optimizer = RAdam([{"params": params[:2], "weight_decay": 0.1},
                       {"params": params[2:], "lr": 0.02, "weight_decay": 0.05, "decoupled_weight_decay": True}],
                      lr=0.01, **dispatch.IMPLEMENTATIONS[args.implementation].demand)
    reduce = not args.single and not args.no_reduce
    reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=size) if reduce else None
    weight, bias, scale, weight2 = params

    def loss_fn(x, y):
        hidden = ops.matmul(x, weight) + bias
        prediction = ops.matmul(hidden * scale, weight2)
        return ((prediction - y) ** 2).mean()

    grad_fn = ms.value_and_grad(loss_fn, None, optimizer.parameters)

    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        if reduce:
            grads = reducer(grads)
        optimizer(grads)
        return loss
    if args.mode in ("graph", "jit"):
        train_step = ms.jit(train_step)

    data = np.random.default_rng(7)
    for _ in range(STEPS):
        x = data.standard_normal((BATCH, FEATURES)).astype(np.float32)
        y = data.standard_normal((BATCH, OUTPUTS)).astype(np.float32)
        train_step(Tensor(x[rank::size]), Tensor(y[rank::size]))

    os.makedirs(args.out, exist_ok=True)
    arrays = {p.name: p.asnumpy() for p in optimizer.get_parameters()}
    np.savez(os.path.join(args.out, f"rank_{rank}.npz"), **arrays)


if __name__ == "__main__":
    main()
