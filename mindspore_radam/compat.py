"""Switching from ``mindspore.experimental.optim.RAdam``: continue a run from its checkpoint."""
import os

import mindspore as ms
from mindspore import Tensor
import mindspore.common.dtype as mstype

from mindspore_radam import _validation
from mindspore_radam.radam import RAdam

_HALF = (mstype.float16, mstype.bfloat16)


def _read(checkpoint):
    if isinstance(checkpoint, dict):
        return checkpoint
    if isinstance(checkpoint, (str, os.PathLike)):
        try:
            return ms.load_checkpoint(os.fspath(checkpoint))
        except Exception as error:  # noqa: BLE001 - MindSpore raises several types for bad files
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"checkpoint: cannot read {os.fspath(checkpoint)!r}: {message}") from None
    raise TypeError("checkpoint must be a path or the dict of mindspore.load_checkpoint, "
                    f"but got {_validation.class_name(checkpoint)}")


def _fits(value, target, name):
    """`value` (from the checkpoint) as a Tensor for `target`, or ValueError naming the mismatch."""
    if not isinstance(value, Tensor):
        raise ValueError(f"checkpoint: {name!r} is a {_validation.class_name(value)}, not a Tensor")
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(f"checkpoint: {name!r} has shape {tuple(value.shape)}, but {target.name!r} has shape "
                         f"{tuple(target.shape)}")
    # The built-in keeps moments in the parameter's dtype; ours are float32 for half-precision
    # parameters by default, which holds every half-precision value exactly.
    # The built-in keeps learning rates in float32; ours are float64, which holds every float32 exactly.
    widening = (value.dtype in _HALF and target.dtype == mstype.float32) or \
        (value.dtype == mstype.float32 and target.dtype == mstype.float64)
    if value.dtype != target.dtype and not widening:
        raise ValueError(f"checkpoint: {name!r} is {value.dtype}, but {target.name!r} is {target.dtype}")
    return value.astype(target.dtype)


def load_builtin_checkpoint(optimizer, checkpoint):
    """Loads the state of a ``mindspore.experimental.optim.RAdam`` checkpoint into `optimizer`.

    The built-in names its moments as ours do (``exp_avg.<param>``, ``exp_avg_sq.<param>``) but
    counts steps in one global ``step_t``, which has no place of its own in our optimizer; loaded
    by name alone, our per-group step counts would restart at 0, and the bias corrections and the
    rectification with them. This loads the moments, sets every group's step count to ``step_t``,
    and takes each group's learning rate (``learning_rate_group_<i>``) when the checkpoint has it.
    Load the network's parameters as usual (``mindspore.load_param_into_net``).

    Everything is checked before anything is written: a checkpoint whose names, shapes or dtypes
    do not fit raises ``ValueError`` naming the first mismatch, and the optimizer is left as it was.

    Args:
        optimizer (mindspore_radam.RAdam): the optimizer to continue with, built over the same
            parameters (and groups) as the built-in was.
        checkpoint (Union[str, os.PathLike, dict]): a checkpoint file written with
            ``mindspore.save_checkpoint(builtin_optimizer, path)`` (or a network that holds it), or
            the dict ``mindspore.load_checkpoint`` returns for it.

    Returns:
        int, the step count loaded.

    Raises:
        TypeError: if `optimizer` is not a :class:`mindspore_radam.RAdam` or `checkpoint` is neither
            a path nor a dict.
        ValueError: if the checkpoint can't be read or does not fit the optimizer.
    """
    if not isinstance(optimizer, RAdam):
        raise TypeError(f"optimizer must be a mindspore_radam.RAdam, but got {_validation.class_name(optimizer)}")
    state = _read(checkpoint)
    writes = []
    for prefix, moments in (("exp_avg", optimizer.exp_avg), ("exp_avg_sq", optimizer.exp_avg_sq)):
        for param, moment in zip(optimizer.parameters, moments):
            name = f"{prefix}.{param.name}"
            if param.size == 0:  # MindSpore writes no zero-size tensors to checkpoints
                continue
            if name not in state:
                raise ValueError(f"checkpoint: no {name!r}: it was not written from an optimizer over these "
                                 f"parameters")
            writes.append((moment, _fits(state[name], moment, name)))
    if "step_t" not in state:
        raise ValueError("checkpoint: no 'step_t': it was not written from mindspore.experimental.optim.RAdam")
    step_t = state["step_t"]
    if not isinstance(step_t, Tensor) or step_t.size != 1 or step_t.dtype not in (mstype.int32, mstype.int64):
        raise ValueError(f"checkpoint: 'step_t' must be one int32 or int64 value, but got {step_t!r}")
    step = int(step_t.asnumpy().reshape(()))
    if step < 0:
        raise ValueError(f"checkpoint: 'step_t' must be >= 0, but got {step}")
    for group_step in optimizer.steps:
        writes.append((group_step, Tensor(step, mstype.int64)))
    for group_id, lr in enumerate(optimizer.lrs):
        name = f"learning_rate_group_{group_id}"
        if name in state:
            writes.append((lr, _fits(state[name], lr, name)))
    for target, value in writes:
        target.set_data(value)
    return step
