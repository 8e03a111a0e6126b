"""Writes the checkpoints that tests/common/suite_engine.py loads: each front door after 8 steps, and the
parameters it reached after 6 more, as the release that wrote them computed them.

Run with the release to pin (its package first on the path), from the project root:
    PYTHONPATH=<checkout of that release> python tests/data/make_compat_checkpoints.py [DOOR ...]
It writes tests/data/compat_<door>.ckpt and tests/data/compat_<door>_continued.npz. "core" and "nn" were
written by release f110407 (before the engine both doors share); "nn_interleaved" (groups of one weight
decay interleaved, as mindcv builds them: one step count and record per run) by commit 0785d32, the last
before runs of one setting were stepped by one call.
"""
import os
import sys

import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn
import mindspore.common.dtype as mstype

HERE = os.path.dirname(os.path.abspath(__file__))
BEFORE, AFTER = 8, 6


def make_params():
    """Two float32 tensors with decay, one without, one float16 (the portable path in the core door)."""
    rng = np.random.default_rng(7)
    params = [Parameter(Tensor(rng.standard_normal(shape).astype(np.float32)), name=name)
              for name, shape in (("w0", (5, 3)), ("w1", (7,)), ("b0", (3,)))]
    params.append(Parameter(Tensor(rng.standard_normal((4, 2)).astype(np.float32)).astype(mstype.float16), name="h0"))
    return params


def gradients(params, t):
    rng = np.random.default_rng(100 + t)
    return tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)).astype(p.dtype) for p in params)


def make_optimizer(door, params):
    if door == "core":
        from mindspore_radam import RAdam
        return RAdam([dict(params=params[:2], weight_decay=0.1), dict(params=params[2:], lr=0.02)], lr=0.05,
                     betas=(0.9, 0.99), decoupled_weight_decay=True)
    from mindspore_radam.nn import RAdam as NNRAdam
    if door == "nn_interleaved":
        return NNRAdam([dict(params=[param], weight_decay=0.1 if index % 2 == 0 else 0.0)
                        for index, param in enumerate(params)], learning_rate=0.05, beta1=0.9, beta2=0.99)
    return NNRAdam([dict(params=params[:2], weight_decay=0.1), dict(params=params[2:], lr=0.02)],
                   learning_rate=0.05, beta1=0.9, beta2=0.99)


def run(door, optimizer, params, steps, start):
    for t in range(start, start + steps):
        optimizer(gradients(params, t))


def main():
    import mindspore_radam
    print("writing with mindspore_radam from", os.path.dirname(mindspore_radam.__file__), file=sys.stderr)
    for door in sys.argv[1:] or ("core", "nn", "nn_interleaved"):
        params = make_params()
        optimizer = make_optimizer(door, params)
        run(door, optimizer, params, BEFORE, 1)
        ms.save_checkpoint(optimizer, os.path.join(HERE, f"compat_{door}.ckpt"))
        run(door, optimizer, params, AFTER, BEFORE + 1)
        np.savez(os.path.join(HERE, f"compat_{door}_continued.npz"),
                 **{p.name: p.asnumpy() for p in params})


if __name__ == "__main__":
    main()
