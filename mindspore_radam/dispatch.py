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
from dataclasses import dataclass

import mindspore as ms
import mindspore.common.dtype as mstype

from mindspore.ops import constexpr

from mindspore_radam import _fused, _internals, live
from mindspore_radam.functional import hypermap_radam


@dataclass(frozen=True)
class Implementation:
    """One registered way to update a group.

    Attributes:
        update: the group update, with :func:`mindspore_radam.functional.hypermap_radam`'s signature.
        demand: the constructor keywords that demand it (``{"fused": True}``).
        devices: the device targets it runs on (``None``: every one).
        blocker: ``(params, device_target, kahan) -> str | None``, why it can't run a group, or None.
        dynamic_shapes: whether it runs in graphs compiled with dynamic-shape inputs (see
            :func:`compiled_implementations`).
    """
    update: object
    demand: dict
    devices: tuple = None
    blocker: object = None
    dynamic_shapes: bool = True


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


# The registry: the portable path first, then the faster ones in the order the default tries them. The
# test tables (tests/common) cross and compare every entry against the portable one.
PORTABLE = "hypermap"
IMPLEMENTATIONS = {
    PORTABLE: Implementation(hypermap_radam, {"fused": False}),
    "fused": Implementation(_fused.fused_radam, {"fused": True}, ("CPU",), _fused_blocker, dynamic_shapes=False),
}
# name -> update function, the plain dict graph code reads.
UPDATES = {name: implementation.update for name, implementation in IMPLEMENTATIONS.items()}


@constexpr
def compiled_implementations(key, names, fused):
    """The implementations a graph being compiled runs: the groups' choices `names`, with the portable path
    instead of those that don't run with dynamic shapes (``Implementation.dynamic_shapes``) in a graph that takes
    dynamic-shape inputs (``jit(dynamic=1)`` once shapes vary, ``enable_dynamic``, ``set_inputs`` with ``None``
    dimensions). MindSpore 2.10's CPU runtime fails running the fused kernel on gradients of dynamic shape ("The
    pointer[value] is null", from the third batch size of a ``jit(dynamic=1)`` step); the portable path gives
    the same bits. ``fused=True`` raises instead. The optimizer (`key`, :func:`mindspore_radam.live.owner`) is
    told, so that a later switch of the update's structure is refused as for the portable path. Runs in Python
    at compile time (``constexpr``)."""
    if all(IMPLEMENTATIONS[name].dynamic_shapes for name in names) or not _internals.compiling_with_dynamic_shapes():
        return names
    if fused:
        raise RuntimeError("fused=True, but this graph compiles with dynamic-shape inputs (jit(dynamic=1), "
                           "enable_dynamic, set_inputs with None dimensions), where MindSpore's CPU runtime fails "
                           "running the fused kernel; use fused=None (the default takes the portable path in such "
                           "graphs, with the same results) or fused=False")
    swapped = {group_id for group_id, name in enumerate(names) if not IMPLEMENTATIONS[name].dynamic_shapes}
    owner = live.owner(key)
    if owner is not None:
        owner._portable_compiled = owner._portable_compiled | swapped  # pylint: disable=protected-access
    return tuple(PORTABLE if group_id in swapped else name for group_id, name in enumerate(names))


def current_device():
    """The device target our graphs run on (MindSpore's context). Every device decision reads it here: the
    one seam a test sets to check a GPU or Ascend decision on a CPU build."""
    return ms.get_context("device_target")


def check_device_dtypes(params, device_target):
    """Raises TypeError, naming the Parameter, for a dtype no implementation can update on `device_target`:
    bfloat16 on GPU (MindSpore's GPU kernels have no bfloat16: no Cast, Select or arithmetic for it in the
    r2.7 sources, no bfloat16 CUDA symbol in the 2.10 plugin; docs/devices.md)."""
    if device_target != "GPU":
        return
    for param in params:
        if param.dtype == mstype.bfloat16:
            raise TypeError(f"Parameter {param.name!r} is bfloat16, and MindSpore's GPU kernels have no bfloat16 "
                            f"(the update's Cast, Select and arithmetic among them), so it can't be updated on GPU. "
                            f"Train it as float16 or float32 on GPU (net.to_float(mindspore.float16) keeps float32 "
                            f"weights and computes in float16), or keep bfloat16 on Ascend or CPU")


def select_implementation(fused, params, device_target=None, kahan=False):
    """The implementation name for a group of `params` under the `fused` option (None/True/False): the
    first faster implementation that can run it, else the portable path; ``fused=True`` raises
    ``RuntimeError`` with the reason where none can, and a dtype no implementation runs on the device
    raises TypeError (:func:`check_device_dtypes`)."""
    device_target = device_target or current_device()
    check_device_dtypes(params, device_target)
    if fused is False:
        return PORTABLE
    reasons = []
    for name, implementation in IMPLEMENTATIONS.items():
        if name == PORTABLE:
            continue
        reason = implementation.blocker(params, device_target, kahan)
        if reason is None:
            return name
        reasons.append(reason)
    if fused:
        raise RuntimeError(f"fused=True, but {'; '.join(reasons)}"
                           + (f"; {_fused.INSTALL_HINT}" if not _fused.available() else ""))
    return PORTABLE
