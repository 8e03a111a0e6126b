"""Which implementation updates a parameter group.

All implementations take one keyword-only signature (see
:func:`mindspore_radam.functional.hypermap_radam`) and the same per-group scalars:

- ``"fused"``: the C++ kernel (:mod:`mindspore_radam._fused`), one pass over memory per group.
  CPU and float32 parameters only.
- ``"hypermap"``: ``HyperMap`` of the per-tensor update; portable (CPU, GPU, Ascend, any float
  dtype, Kahan summation).

``RAdam(fused=None)`` (the default) takes ``"fused"`` for every group where it can run and
``"hypermap"`` for the others; ``fused=False`` takes ``"hypermap"`` everywhere; ``fused=True``
demands the kernel for every group and raises ``RuntimeError`` with the reason when it can't run
(not CPU, a non-float32 parameter, ``kahan_summation=True``, or the library missing or failing to
load, with an install hint).

Why the kernel is the CPU default: it wins every train-step cell measured (LeNet5, an 8.4M-parameter
MLP, a 130-tensor model; a ``jit`` function from PyNative, ``TrainOneStepCell`` in GRAPH_MODE, the
optimizer from Python after a compiled backward; ``scripts/train_step_benchmark.py``,
docs/train_step_benchmark.md), by 2-4x where the optimizer is a large part of the step, and every
bare-step row by 5-16x (``scripts/benchmark.py``). It used to stall inside ``jit`` train steps on
MindSpore 2.10's CPU runtime; so did the portable path and MindSpore's own optimizers, and
``RAdam``'s one Tensor condition around the in-graph update removes that (see
``RAdam._update_in_graph`` and docs/train_step_performance.md).
"""
import mindspore as ms
import mindspore.common.dtype as mstype

from mindspore_radam import _fused
from mindspore_radam.functional import hypermap_radam

IMPLEMENTATIONS = {"fused": _fused.fused_radam, "hypermap": hypermap_radam}


def _fused_blocker(params, device_target, kahan):
    """Why the kernel can't run this group, or None."""
    if kahan:
        return "the fused kernel has no Kahan summation (kahan_summation=True)"
    if device_target != "CPU":
        return f"the fused kernel runs on CPU; the device is {device_target}"
    for param in params:
        if param.dtype != mstype.float32:
            return f"the fused kernel takes float32 parameters; {param.name!r} is {param.dtype}"
    if not _fused.available():
        return _fused.unavailable_reason()
    return None


def select_implementation(fused, params, device_target=None, kahan=False):
    """The implementation name for a group of `params` under the `fused` option (None/True/False)."""
    if fused is False:
        return "hypermap"
    blocker = _fused_blocker(params, device_target or ms.get_context("device_target"), kahan)
    if blocker is None:
        return "fused"
    if fused:
        raise RuntimeError(f"fused=True, but {blocker}"
                           + (f"; {_fused.INSTALL_HINT}" if not _fused.available() else ""))
    return "hypermap"
