"""Which implementation updates a parameter group.

All implementations take one keyword-only signature (see
:func:`mindspore_radam.functional.hypermap_radam`) and the same per-group scalars:

- ``"fused"``: the C++ kernel (:mod:`mindspore_radam._fused`), one pass over memory per group.
  CPU and float32 parameters only.
- ``"hypermap"``: ``HyperMap`` of the per-tensor update; portable (CPU, GPU, Ascend, any float
  dtype, Kahan summation).

``RAdam(fused=None)`` (the default) and ``fused=False`` use ``"hypermap"``. ``fused=True`` demands
the kernel for every group and raises ``RuntimeError`` with the reason when it can't run (not CPU,
a non-float32 parameter, ``kahan_summation=True``, or the library missing or failing to load, with
an install hint).

Why the kernel is opt-in: a bare optimizer step with it is 5-13x faster than the built-in and
within 1.2-2.2x of the memory floor at 10M parameters (scripts/benchmark.py, docs/benchmark.md),
but inside a ``jit`` train step, after ``value_and_grad`` in the same graph, MindSpore 2.10's
default CPU runtime runs it badly: a LeNet5 train step took 92 ms with it against 17-20 ms with
``"hypermap"`` and 13-18 ms with the built-in (scripts/train_step_benchmark.py,
docs/train_step_benchmark.md, 2 vCPUs). The kernel itself takes well under 1 ms there; the time
goes to the runtime's busy-waiting threads (``AsyncRQueue``), which on two cores starve the
threads that launch the kernels (MindSpore's own ``ops.Adam``, one per parameter in the op's
place, stalls the same way: 94-100 ms). With the runtime's graph pipeline off
(``MS_DEV_RUNTIME_CONF="graph_pipeline:False"``) the fused step is level with the portable one
(11-14 vs 11-16 ms, the same as a step without an optimizer within noise). So ``None``
takes the path that is never much slower; ``fused=True`` is for bare optimizer steps (an
optimizer called from Python after a compiled backward) and for runs with the graph pipeline off.
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
