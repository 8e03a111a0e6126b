"""Drivers shared by the suites: run an optimizer in one of the three execution modes; count the waits
for MindSpore's pipeline (:class:`WaitCounter`)."""
import contextlib
import traceback

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, ops
from mindspore._c_expression import TensorPy
from mindspore.amp import all_finite
import mindspore.common.dtype as mstype

from mindspore_radam import dispatch

MODES = ("pynative", "graph", "jit")
# Every registered implementation (mindspore_radam.dispatch), the portable one first: the tables cross
# them all, and the bitwise comparisons hold each of the others against the portable one.
IMPLEMENTATIONS = tuple(dispatch.IMPLEMENTATIONS)
PORTABLE = dispatch.PORTABLE
FASTER = tuple(name for name in IMPLEMENTATIONS if name != PORTABLE)


def rotating(cases, modes=MODES, implementations=IMPLEMENTATIONS, ids=lambda case: case.desc):
    """Pairwise crossing: each case once per implementation, the mode rotating from case to case and
    from implementation to implementation, so every (implementation, mode) and (case, implementation)
    pair recurs without the full product (the mutation check shows what each row catches).
    Returns pytest params ``(implementation, mode, case)``."""
    params = []
    for index, case in enumerate(cases):
        for offset, implementation in enumerate(implementations):
            mode = modes[(index + offset) % len(modes)]
            params.append(pytest.param(implementation, mode, case, id=f"{implementation}-{mode}-{ids(case)}"))
    return params


def set_mode(mode):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)


def make_stepper(mode, optimizer, then=None, half=None, gated=False):
    """Returns step(grad_arrays) that applies one optimizer step in `mode`, then calls `then()`
    (e.g. ``scheduler.step``) if given. `half` (a MindSpore dtype): the gradients' dtype, for
    half-precision parameters. `gated`: call ``optimizer(grads, all_finite(grads))``; ``"if"``: call
    ``optimizer(grads)`` under ``if all_finite(grads):`` (control flow in graph code).

    pynative / graph: ``optimizer(grads)`` called directly in that context mode.
    jit: a ``value_and_grad`` train step under ``@mindspore.jit`` whose loss is
    ``sum(p * g)``, so the gradient reaching the optimizer is exactly ``g``; `then` runs inside it.
    """
    set_mode(mode)

    def update(grads):
        if gated == "if":  # MindSpore's mixed-precision tutorial: skip the call on overflow
            if all_finite(grads):
                optimizer(grads)
            return True
        return optimizer(grads, all_finite(grads)) if gated else optimizer(grads)

    def tensor(array):  # as given (bad-call tests pass wrong dtypes), or in the half dtype
        return Tensor(array) if half is None else Tensor(np.asarray(array, np.float32)).astype(half)

    if mode in ("pynative", "graph"):
        def step(grads):
            update(ms.mutable(tuple(tensor(g) for g in grads)))
            if then is not None:
                then()
        return step

    params = optimizer.parameters

    def linear_loss(*targets):
        total = 0.0
        for param, target in zip(params, targets):
            if param.dtype == mstype.float64:  # keep float64 gradients float64
                total = total + (param * target).sum()
            else:
                total = total + (ops.cast(param, mstype.float32) * target).sum()
        return total

    grad_fn = ms.value_and_grad(linear_loss, None, params)

    @ms.jit
    def train_step(*targets):
        loss, grads = grad_fn(*targets)
        update(grads)
        if then is not None:
            then()
        return loss

    def step(grads):
        train_step(*(Tensor(g) if half is None else Tensor(np.asarray(g, np.float32)) for g in grads))
    return step


def snapshot(optimizer):
    """Copies of every Parameter the optimizer owns or updates, by name."""
    return {p.name: p.asnumpy().copy() for p in optimizer.get_parameters()}


def assert_unchanged(before, after):
    assert before.keys() == after.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=f"{name} changed")


# TensorPy methods that wait for the pipeline (wait_pipeline behind Parameter.param_info, requires_grad
# and name; the address; a copy to the host).
WAITING_METHODS = ("wait_pipeline", "_data_ptr", "storage", "asnumpy", "_item", "_tolist", "data_sync")
# Tensor attributes that wait when the Tensor is queued (read on the Tensors handed to the call).
WAITING_ATTRIBUTES = ("shape", "dtype", "size", "ndim")


class WaitCounter:
    """Counts waits for MindSpore's pipeline while active: each entry names what waited and where."""

    def __init__(self):
        self.waits = []
        self._watched = set()

    def watch(self, tensors):
        """Counts reads of the shape, dtype, size and ndim of these Tensors too."""
        self._watched.update(id(tensor) for tensor in tensors if isinstance(tensor, Tensor))
        return tensors

    def _note(self, what):
        caller = traceback.extract_stack(limit=4)[0]
        self.waits.append(f"{what} from {caller.filename.rsplit('/', 2)[-1]}:{caller.lineno} ({caller.name})")

    @contextlib.contextmanager
    def counting(self):
        saved = {}
        try:
            for name in WAITING_METHODS:
                original = getattr(TensorPy, name, None)
                if original is None:
                    continue
                saved[(TensorPy, name)] = original
                setattr(TensorPy, name, self._counted_method(name, original))
            for name in WAITING_ATTRIBUTES:
                original = Tensor.__dict__.get(name)
                if isinstance(original, property):
                    saved[(Tensor, name)] = original
                    setattr(Tensor, name, self._counted_property(name, original))
            yield self
        finally:
            for (owner, name), original in saved.items():
                setattr(owner, name, original)

    def _counted_method(self, name, original):
        def counted(*args, **kwargs):
            self._note(f"TensorPy.{name}")
            return original(*args, **kwargs)
        return counted

    def _counted_property(self, name, original):
        def read(tensor):
            if id(tensor) in self._watched:
                self._note(f"Tensor.{name} of a given Tensor")
            return original.fget(tensor)
        return property(read, original.fset)
