"""Compiles and runs LeNet5 train steps with one optimizer in every pattern of
scripts/train_step_benchmark.py (and, for ours, a loss-scaled jit step), so that a test can count
the warnings MindSpore prints (run it with GLOG_v=2).

    python tests/common/warnings_probe.py builtin|hypermap|fused
"""
import os
import sys

import mindspore as ms
from mindspore import nn, ops
from mindspore.amp import all_finite

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from train_step_benchmark import PATTERNS, build_model, make_optimizer, make_step  # noqa: E402


def main(optimizer_name):
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    for pattern in PATTERNS:
        net, x, y = build_model("lenet5")
        step = make_step(pattern, net, loss_fn, make_optimizer(optimizer_name, net.trainable_params()))
        for _ in range(2):
            step(x, y).asnumpy()
    if optimizer_name != "builtin":  # the built-in has no grads_finite input
        ms.set_context(mode=ms.PYNATIVE_MODE)
        net, x, y = build_model("lenet5")
        optimizer = make_optimizer(optimizer_name, net.trainable_params())

        def forward(data, label):
            return loss_fn(net(data), label)
        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

        @ms.jit
        def gated_step(data, label):
            loss, grads = grad_fn(data, label)
            return ops.depend(loss, optimizer(grads, all_finite(grads)))
        for _ in range(2):
            gated_step(x, y).asnumpy()


if __name__ == "__main__":
    main(sys.argv[1])
