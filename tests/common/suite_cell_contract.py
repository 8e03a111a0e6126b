"""Shared tests of the Cell contract: every public method our optimizers inherit from
``Cell``/``Optimizer``/``nn.Optimizer`` keeps its base signature and contract, called on ours and on
Cells that hold ours (a train-step Cell, Lookahead); ``copy.deepcopy`` gives an independent optimizer
that continues exactly like the original."""
import copy
import inspect

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn
from mindspore.experimental.optim import Optimizer

from mindspore_radam import Lookahead, RAdam
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.configs import make_arrays, make_params
from tests.common.harness import make_stepper, set_mode
from tests.common.suite import grad_sequence
from tests.common.suite_nn import LinearLoss

SHAPES = ((4, 3), (7,), (), (2, 3, 2))
FRONTS = ("core", "lookahead", "nn")
CELL_METHODS = ("state_dict", "load_state_dict", "parameters_dict", "get_parameters", "trainable_params",
                "untrainable_params", "cells_and_names", "to_float", "set_train", "parameters_and_names")


def build(front, params):
    if front == "core":
        return RAdam(params, lr=0.01, weight_decay=0.1)
    if front == "lookahead":
        return Lookahead(RAdam(params, lr=0.01), k=2)
    return NNRAdam(params, learning_rate=0.01, weight_decay=0.1)


@pytest.mark.parametrize("front", FRONTS)
def test_inherited_methods_keep_their_base_signatures(front):
    optimizer = build(front, make_params(make_arrays(80, SHAPES)))
    for name in CELL_METHODS:
        assert inspect.signature(getattr(optimizer, name)) == inspect.signature(getattr(nn.Cell(), name)), name
    if front != "nn":
        assert inspect.signature(optimizer.add_param_group).parameters.keys() == \
            inspect.signature(Optimizer.add_param_group).parameters.keys() - {"self"}


@pytest.mark.parametrize("front", FRONTS)
def test_cell_methods_on_ours_and_on_cells_holding_ours(front, tmp_path):
    set_mode("pynative")
    params = make_params(make_arrays(81, SHAPES))
    optimizer = build(front, params)
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    grads = grad_sequence(82, steps=2, shapes=SHAPES)
    for g in grads:
        train(*(Tensor(x) for x in g))
    for cell in (optimizer, train):
        state = cell.state_dict()
        assert all(isinstance(value, ms.Parameter) for value in state.values())
        assert {p.name for p in params} <= set(cell.parameters_dict()) <= set(state) | set(cell.parameters_dict())
        assert {p.name for p in cell.get_parameters()} == set(cell.parameters_dict())
        assert {p.name for p in cell.trainable_params()} >= {p.name for p in params}
        assert all(not p.requires_grad for p in cell.untrainable_params())
        assert any(c is optimizer for _, c in cell.cells_and_names())
        assert cell.set_train(True) is cell and cell.to_float(ms.float32) is cell
    # save_checkpoint / load_checkpoint round trip through the train-step Cell, bit-identical after.
    path = str(tmp_path / "cell.ckpt")
    ms.save_checkpoint(train, path)
    saved = {name: value.asnumpy().copy() for name, value in train.parameters_dict().items()}
    train(*(Tensor(x) for x in grads[0]))
    not_loaded, _ = ms.load_param_into_net(train, ms.load_checkpoint(path))
    assert not not_loaded
    for name, value in train.parameters_dict().items():
        np.testing.assert_array_equal(value.asnumpy(), saved[name], err_msg=name)
    # Cell.load_state_dict takes what state_dict gives (MindSpore's own optimizers raise "Unexpected key(s)").
    state = {key: Tensor(value.asnumpy().copy()) for key, value in train.state_dict().items()}
    train(*(Tensor(x) for x in grads[1]))
    train.load_state_dict(state)
    for key, value in train.state_dict().items():
        np.testing.assert_array_equal(value.asnumpy(), state[key].asnumpy(), err_msg=key)


@pytest.mark.parametrize("pattern", ("pynative", "jit"))
@pytest.mark.parametrize("front", ("core", "lookahead"))
def test_deepcopy_continues_like_the_original_and_is_independent(front, pattern):
    """deepcopy((params, optimizer)) after 3 steps: the copy and the original, fed the same 4 steps,
    end bit-identical; stepping the copy leaves the original untouched (control)."""
    params = make_params(make_arrays(83, SHAPES))
    optimizer = build(front, params)
    step = make_stepper(pattern, optimizer)
    grads = grad_sequence(84, steps=7, shapes=SHAPES)
    for g in grads[:3]:
        step(g)
    copied_params, copied = copy.deepcopy((params, optimizer))
    assert all(a is b for a, b in zip(copied.parameters, copied_params)) and not set(map(id, copied_params)) & \
        set(map(id, params))
    before = [p.asnumpy().copy() for p in params]
    copied_step = make_stepper(pattern, copied)
    for g in grads[3:]:
        copied_step(g)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.asnumpy(), b)  # the original did not move
    for g in grads[3:]:
        step(g)
    for a, b in zip(params, copied_params):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    copied.param_groups[0]["lr"] = 0.5  # the copy's groups are its own
    assert float(optimizer.param_groups[0]["lr"].asnumpy()) == pytest.approx(0.01)


def test_nn_deepcopy_continues_like_the_original():
    params = make_params(make_arrays(85, SHAPES))
    optimizer = build("nn", params)
    set_mode("graph")
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    grads = grad_sequence(86, steps=5, shapes=SHAPES)
    for g in grads[:2]:
        train(*(Tensor(x) for x in g))
    copied_params, copied = copy.deepcopy((params, optimizer))
    copied_train = nn.TrainOneStepCell(LinearLoss(copied_params), copied)
    for g in grads[2:]:
        train(*(Tensor(x) for x in g))
        copied_train(*(Tensor(x) for x in g))
    for a, b in zip(params, copied_params):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    assert int(copied.global_step.asnumpy()[0]) == 5
