"""Shared tests that a call from Python does not wait for MindSpore's pipeline.

In PyNative, a jitted backward pass (or any queued op) runs behind the host; reading a Parameter's
``requires_grad`` or ``name`` (``Parameter.param_info`` calls ``TensorPy.wait_pipeline``), its ``data_ptr``,
or a queued gradient's shape or dtype waits until that work is done, and each such wait cost about a
scheduler tick per read on 2 cores (the split train step went from 0.3x to 1x the built-in's time).
Time is no signal for this, so :class:`WaitCounter` counts the waits: it wraps MindSpore's Python-visible
entry points that synchronize, and the shape and dtype reads of the Tensors a call is given. Every
test has a control that shows the counter sees the read the old code made.
"""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.amp import all_finite

from mindspore_radam import Lookahead, RAdam
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.harness import IMPLEMENTATIONS, PORTABLE, WaitCounter, set_mode

def _net():
    ms.set_seed(0)
    return nn.SequentialCell(nn.Dense(4, 3), nn.ReLU(), nn.Dense(3, 2))


def _optimizer(front, implementation, params):
    fused = implementation != PORTABLE
    if front == "core":
        return RAdam(params, lr=0.01, fused=fused)
    if front == "core-groups":
        return RAdam([{"params": params[:2], "weight_decay": 0.1}, {"params": params[2:]}], lr=0.01, fused=fused)
    if front == "nn":
        return NNRAdam(params, learning_rate=0.01, fused=fused)
    return Lookahead(RAdam(params, lr=0.01, fused=fused), k=2)


def _gradients(params):
    return tuple(Tensor(np.full(p.shape, 0.1, np.float32)) for p in params)


FRONTS = ("core", "core-groups", "nn", "lookahead")


# Every front door with every implementation; grads_finite given on alternate rows (the nn door takes none).
WAIT_CASES = [pytest.param(front, implementation, front != "nn" and (index + offset) % 2 == 1,
                           id=f"{'grads_finite' if front != 'nn' and (index + offset) % 2 else 'plain'}-"
                              f"{implementation}-{front}")
              for index, front in enumerate(FRONTS) for offset, implementation in enumerate(IMPLEMENTATIONS)]


@pytest.mark.parametrize("front, implementation, gated", WAIT_CASES)
def test_a_call_from_python_does_not_wait_for_the_pipeline(front, implementation, gated):
    """Compiled (two warm-up calls), a call from Python reads nothing that waits: no flag, name or address
    of a Parameter, no shape or dtype of a gradient (checked while the step compiles instead)."""
    set_mode("pynative")
    net = _net()
    optimizer = _optimizer(front, implementation, net.trainable_params())
    grads = _gradients(net.trainable_params())
    args = (grads, all_finite(grads)) if gated else (grads,)
    for _ in range(2):
        optimizer(*args)
    counter = WaitCounter()
    counter.watch(args[0] + args[1:])
    with counter.counting():
        optimizer(*args)
    net.trainable_params()[0].asnumpy()  # the step ran
    from mindspore_radam import _internals  # pylint: disable=import-outside-toplevel
    waits = counter.waits
    if not _internals._storage_objects_follow():  # pylint: disable=protected-access
        # Releases whose storage objects don't follow set_data: the addresses are read (documented).
        waits = [wait for wait in waits if not wait.startswith("TensorPy._data_ptr from _internals.py")]
    assert waits == [], f"a call from Python waited for MindSpore's pipeline: {waits}"


def test_wait_counter_control_sees_the_reads_that_wait():
    """Control: the counter sees each read the old per-call checks made (``requires_grad`` and ``name``
    through ``param_info``, ``data_ptr``, a given gradient's shape and dtype), and none of the reads that
    replaced them."""
    set_mode("pynative")
    net = _net()
    param = net.trainable_params()[0]
    grads = _gradients(net.trainable_params())
    from mindspore_radam import _internals  # pylint: disable=import-outside-toplevel
    for read in (lambda: param.requires_grad, lambda: param.name, param.data_ptr, lambda: grads[0].shape,
                 lambda: grads[0].dtype):
        counter = WaitCounter()
        counter.watch(grads)
        with counter.counting():
            read()
        assert counter.waits, "the counter missed a read that waits for the pipeline"
    counter = WaitCounter()
    counter.watch(grads)
    with counter.counting():
        _internals.requires_grad(param)
        _internals.storage_token(param)
        len(grads)
        isinstance(grads[0], Tensor)
    if _internals._storage_objects_follow():  # pylint: disable=protected-access
        assert counter.waits == []
    else:  # releases whose storage objects don't follow set_data: the address is read (documented)
        assert [wait.split(" from ")[0] for wait in counter.waits] == ["TensorPy._data_ptr"]


@pytest.mark.parametrize("front", ("core", "nn", "lookahead"))
def test_frozen_since_the_last_call_is_still_refused_before_anything_changes(front):
    """What the check guarantees stays: a Parameter frozen between calls is refused, nothing written."""
    set_mode("pynative")
    net = _net()
    optimizer = _optimizer(front, PORTABLE, net.trainable_params())
    grads = _gradients(net.trainable_params())
    optimizer(grads)
    before = [p.asnumpy().copy() for p in net.trainable_params()]
    net.trainable_params()[1].requires_grad = False
    with pytest.raises(ValueError, match="requires_grad=False"):
        optimizer(grads)
    for p, b in zip(net.get_parameters(), before):
        np.testing.assert_array_equal(p.asnumpy(), b)


def test_new_storage_since_the_last_call_is_still_followed():
    """What the storage check guarantees stays: a weight given new storage between calls is updated there
    (with a warning), read without waiting when nothing moved; control: the value really moved."""
    set_mode("pynative")
    net = _net()
    optimizer = RAdam(net.trainable_params(), lr=0.01)
    grads = _gradients(net.trainable_params())
    optimizer(grads)
    weight = net.trainable_params()[0]
    weight.set_data(Tensor(np.zeros(weight.shape, np.float32)))
    with pytest.warns(RuntimeWarning, match="new storage"):
        optimizer(grads)
    assert (weight.asnumpy() != 0).all()
    shared = Parameter(Tensor(np.ones(weight.shape, np.float32)), name="elsewhere")
    weight.set_data(shared)  # shares another Parameter's storage: a new token, a new address
    with pytest.warns(RuntimeWarning, match="new storage"):
        optimizer(grads)
    assert (weight.asnumpy() != 1).all()


def test_bad_gradients_from_python_are_refused_while_the_step_compiles():
    """Shapes and dtypes are checked in the compiled step, before it runs: nothing changes; the count and
    the type of each gradient are checked in Python, as before."""
    set_mode("pynative")
    net = _net()
    optimizer = RAdam(net.trainable_params(), lr=0.01)
    grads = _gradients(net.trainable_params())
    optimizer(grads)
    before = [p.asnumpy().copy() for p in net.get_parameters()] + [optimizer.steps[0].asnumpy().copy()]
    wrong_shape = grads[:1] + (ops.ones((5,), ms.float32),) + grads[2:]
    with pytest.raises(ValueError, match=r"gradients\[1\]: shape"):
        optimizer(wrong_shape)
    with pytest.raises(TypeError, match=r"gradients\[1\]: dtype Float16"):
        optimizer(grads[:1] + (grads[1].astype(ms.float16),) + grads[2:])
    with pytest.raises(TypeError, match="grads_finite must be a bool Tensor with one element"):
        optimizer(grads, Tensor([1, 2]))
    with pytest.raises(ValueError, match="expected 4 tensors"):
        optimizer(grads[:3])
    after = [p.asnumpy() for p in net.get_parameters()] + [optimizer.steps[0].asnumpy()]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
