"""Which implementation updates a parameter group.

All implementations take one keyword-only signature (see
:func:`mindspore_radam.functional.hypermap_radam`) and the same per-group scalars:

- ``"fused"``: the C++ kernel (:mod:`mindspore_radam._fused`), one pass over memory per group.
  CPU and float32 parameters only.
- ``"hypermap"``: ``HyperMap`` of the per-tensor update; portable (CPU, GPU, Ascend, any float dtype).

``RAdam(fused=None)`` uses ``"fused"`` for every group it can run (CPU, all parameters float32,
library built) and ``"hypermap"`` elsewhere, logging once why the kernel is unavailable.
``fused=True`` demands the kernel for every group and raises ``RuntimeError`` with the reason
otherwise; ``fused=False`` always uses ``"hypermap"``.
"""
import mindspore as ms
import mindspore.common.dtype as mstype

from mindspore_radam import _fused
from mindspore_radam.functional import hypermap_radam

IMPLEMENTATIONS = {"fused": _fused.fused_radam, "hypermap": hypermap_radam}


def _fused_blocker(params, device_target):
    """Why the kernel can't run this group, or None."""
    if device_target != "CPU":
        return f"the fused kernel runs on CPU; the device is {device_target}"
    for param in params:
        if param.dtype != mstype.float32:
            return f"the fused kernel takes float32 parameters; {param.name!r} is {param.dtype}"
    if not _fused.available():
        return _fused.unavailable_reason()
    return None


def select_implementation(fused, params, device_target=None):
    """The implementation name for a group of `params` under the `fused` option (None/True/False)."""
    if fused is False:
        return "hypermap"
    blocker = _fused_blocker(params, device_target or ms.get_context("device_target"))
    if blocker is None:
        return "fused"
    if fused:
        raise RuntimeError(f"fused=True, but {blocker}"
                           + (f"; {_fused.INSTALL_HINT}" if not _fused.available() else ""))
    if not _fused.available():
        _fused.warn_fallback_once()
    return "hypermap"
