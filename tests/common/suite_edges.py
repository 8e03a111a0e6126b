"""Shared tests of the edges users train into: sparse gradients and frozen Parameters, in the patterns
they run (a call from Python after a compiled backward, a jit train step, nn.TrainOneStepCell in both
modes). Each refusal happens before anything changes and names the Parameter and what works instead."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

import mindspore_radam
from mindspore_radam.nn import RAdam as NNRAdam


class EmbeddingNet(nn.Cell):
    def __init__(self, sparse):
        super().__init__()
        ms.set_seed(1)
        # the sparse gradient of the CPU lookup, or the dense one of the device lookup
        self.emb = nn.EmbeddingLookup(10, 3, sparse=sparse, target="CPU" if sparse else "DEVICE")
        self.head = nn.Dense(3, 1)

    def construct(self, ids):
        return self.head(self.emb(ids)).sum()


IDS = np.array([[1, 2], [3, 1]], np.int32)
SPARSE_PATTERNS = ("split", "jit", "cell-graph", "cell-pynative")


def _embedding_step(pattern, sparse):
    """(step(), optimizer) for the embedding net in `pattern`; core RAdam for split/jit, nn.RAdam in cells."""
    ms.set_context(mode=ms.GRAPH_MODE if pattern == "cell-graph" else ms.PYNATIVE_MODE)
    net = EmbeddingNet(sparse)
    ids = Tensor(IDS)
    if pattern.startswith("cell"):
        optimizer = NNRAdam(net.trainable_params(), learning_rate=0.1)
        train = nn.TrainOneStepCell(net, optimizer)
        return lambda: train(ids), optimizer
    optimizer = mindspore_radam.RAdam(net.trainable_params(), lr=0.1)
    grad_fn = ms.value_and_grad(net, None, optimizer.parameters)
    if pattern == "split":
        compiled = ms.jit(grad_fn)

        def split():
            _, grads = compiled(ids)
            return optimizer(grads)
        return split, optimizer

    @ms.jit
    def step(x):
        loss, grads = grad_fn(x)
        optimizer(grads)
        return loss
    return lambda: step(ids), optimizer


def _snapshot(optimizer):
    return [p.asnumpy().copy() for p in optimizer.get_parameters()]


@pytest.mark.parametrize("pattern", SPARSE_PATTERNS)
def test_sparse_gradients_are_refused_naming_the_parameter(pattern):
    step, optimizer = _embedding_step(pattern, sparse=True)
    before = _snapshot(optimizer)
    # PyNative's autodiff hands on a RowTensor's rows alone: a shape mismatch there, with the same advice.
    error = ValueError if pattern == "cell-pynative" else TypeError
    with pytest.raises(error, match=r"emb\.embedding_table.*sparse=False"):
        step()
    for value, want in zip(_snapshot(optimizer), before):
        np.testing.assert_array_equal(value, want)


@pytest.mark.parametrize("pattern", SPARSE_PATTERNS)
def test_dense_embedding_gradients_train_in_the_same_patterns(pattern):
    """Negative control: the same net with sparse=False steps, and its embedding moves."""
    step, optimizer = _embedding_step(pattern, sparse=False)
    before = optimizer.parameters[0].asnumpy().copy()
    step()
    step()
    assert not np.array_equal(optimizer.parameters[0].asnumpy(), before)


# --- frozen Parameters (requires_grad=False) ---

def _frozen_net():
    ms.set_seed(2)
    net = nn.Dense(3, 2)
    net.bias.requires_grad = False
    return net


@pytest.mark.parametrize("door", ("core", "nn"))
def test_frozen_parameters_are_refused_at_construction(door):
    net = _frozen_net()
    with pytest.raises(ValueError, match=r"'bias'.*requires_grad=False.*trainable_params\(\)"):
        if door == "core":
            mindspore_radam.RAdam(net.get_parameters(), lr=0.1)
        else:
            NNRAdam(net.get_parameters(), learning_rate=0.1)


X, Y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)


def _train_step(pattern, net, optimizer):
    ms.set_context(mode=ms.GRAPH_MODE if pattern == "cell-graph" else ms.PYNATIVE_MODE)
    loss = nn.WithLossCell(net, nn.MSELoss())
    if pattern.startswith("cell"):
        train = nn.TrainOneStepCell(loss, optimizer)
        return lambda: train(Tensor(X), Tensor(Y))
    grad_fn = ms.value_and_grad(loss, None, optimizer.parameters)

    def step(x, y):
        value, grads = grad_fn(x, y)
        optimizer(grads)
        return value
    step = ms.jit(step) if pattern == "jit" else step
    return lambda: step(Tensor(X), Tensor(Y))


@pytest.mark.parametrize("pattern", ("pynative", "jit", "cell-graph", "cell-pynative"))
def test_trainable_params_leave_frozen_ones_bit_identical(pattern):
    """The way that works: built from trainable_params(), a frozen bias stays bit-identical, the weight moves."""
    net = _frozen_net()
    bias, weight = net.bias.asnumpy().copy(), net.weight.asnumpy().copy()
    make = NNRAdam if pattern.startswith("cell") else mindspore_radam.RAdam
    optimizer = make(net.trainable_params(), 0.1)
    step = _train_step(pattern, net, optimizer)
    for _ in range(3):
        step()
    np.testing.assert_array_equal(net.bias.asnumpy(), bias)
    assert not np.array_equal(net.weight.asnumpy(), weight)  # control: the trainable one moved


@pytest.mark.parametrize("pattern", ("pynative", "cell-pynative"))
def test_a_parameter_frozen_between_calls_from_python_is_refused(pattern):
    net = nn.Dense(3, 2)
    make = NNRAdam if pattern.startswith("cell") else mindspore_radam.RAdam
    optimizer = make(net.trainable_params(), 0.1)
    step = _train_step(pattern, net, optimizer)
    step()
    net.bias.requires_grad = False
    before = _snapshot(optimizer)
    with pytest.raises(ValueError, match=r"'bias'.*requires_grad=False"):
        step()
    for value, want in zip(_snapshot(optimizer), before):
        np.testing.assert_array_equal(value, want)
    net.bias.requires_grad = True  # control: unfrozen, it steps again
    step()
    assert not np.array_equal(net.bias.asnumpy(), before[1])


@pytest.mark.parametrize("pattern", ("jit", "cell-graph"))
def test_a_graph_compiled_after_a_freeze_is_refused(pattern):
    net = nn.Dense(3, 2)
    make = NNRAdam if pattern.startswith("cell") else mindspore_radam.RAdam
    optimizer = make(net.trainable_params(), 0.1)
    net.bias.requires_grad = False
    step = _train_step(pattern, net, optimizer)
    with pytest.raises((ValueError, RuntimeError), match=r"'bias'.*requires_grad=False"):
        step()


# --- dynamic shapes: batch sizes that vary from step to step ---

DYNAMIC_PATTERNS = ("jit-dynamic", "enable-dynamic", "cell-set-inputs", "nn-cell-set-inputs")
BATCHES = (4, 7, 5, 9, 4, 3, 11)


class MLPLoss(nn.Cell):
    """A two-layer MLP's MSE: its weight gradients (input^T @ error) take the batch's dynamic dimensions."""

    def __init__(self):
        super().__init__()
        ms.set_seed(0)
        self.net = nn.SequentialCell(nn.Dense(8, 16), nn.ReLU(), nn.Dense(16, 4))
        self.loss = nn.MSELoss()

    def construct(self, x, y):
        return self.loss(self.net(x), y)


def _batches(seed=3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((b, 8)).astype(np.float32), rng.standard_normal((b, 4)).astype(np.float32))
            for b in BATCHES]


def _dynamic_run(pattern, implementation, dynamic=True):
    """The parameters after one step per batch of BATCHES in `pattern` (compiled per shape if not `dynamic`),
    and the optimizer; `implementation` is a registered name or None (the default)."""
    from mindspore_radam import dispatch
    ms.set_context(mode=ms.GRAPH_MODE if "cell" in pattern else ms.PYNATIVE_MODE)
    net = MLPLoss()
    params = net.trainable_params()
    demand = {} if implementation is None else dispatch.IMPLEMENTATIONS[implementation].demand
    if pattern.startswith("nn"):
        optimizer = NNRAdam(params, learning_rate=0.05, weight_decay=0.01, **demand)
    else:
        optimizer = mindspore_radam.RAdam(params, lr=0.05, weight_decay=0.01, **demand)
    # Every dimension dynamic, as jit(dynamic=1) generalizes them.
    dynamic_inputs = [Tensor(shape=[None, None], dtype=ms.float32) for _ in range(2)]
    if pattern.startswith("nn"):
        step = nn.TrainOneStepCell(net, optimizer)
    else:
        grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

        def body(x, y):
            loss, grads = grad_fn(x, y)
            optimizer(grads)
            return loss

        class Step(nn.Cell):
            def construct(self, x, y):
                return body(x, y)
        step = Step()
    if pattern == "jit-dynamic":
        step = ms.jit(body, dynamic=1 if dynamic else 0)
    elif pattern == "enable-dynamic":
        step = ms.jit(ms.enable_dynamic(x=dynamic_inputs[0], y=dynamic_inputs[1])(body) if dynamic else body)
    elif dynamic:
        step.set_inputs(*dynamic_inputs)
    for x, y in _batches():
        step(Tensor(x), Tensor(y))
    return [p.asnumpy().copy() for p in params], optimizer


# jit(dynamic=1), where the kernel failed, in the default tier; the other patterns (15-20 s each) extended.
@pytest.mark.parametrize("pattern", [pytest.param(p, marks=() if p == "jit-dynamic" else pytest.mark.extended)
                                     for p in DYNAMIC_PATTERNS])
def test_varying_batch_sizes_train_as_a_static_run_with_the_default(pattern):
    """Dynamic-shape graphs with the default implementation (the fused kernel on CPU) give the bits of the
    portable path compiled per shape; steps in a graph compiled with dynamic shapes, where the kernel fails
    inside MindSpore, take the portable path."""
    got, optimizer = _dynamic_run(pattern, None)
    static, _ = _dynamic_run(pattern, "hypermap", dynamic=False)
    start = [p.asnumpy() for p in MLPLoss().trainable_params()]
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(got, start)), "control: the run trained"
    for index, (a, b) in enumerate(zip(got, static, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{pattern}: parameter {index}, dynamic vs static")
    assert int(optimizer.steps[0].asnumpy()) == len(BATCHES)


@pytest.mark.parametrize("pattern", ("jit-dynamic", pytest.param("cell-set-inputs", marks=pytest.mark.extended)))
def test_an_implementation_that_cannot_run_dynamic_shapes_is_refused_when_demanded(pattern):
    """fused=True (an implementation without dynamic-shape support, demanded) raises at the dynamic compile,
    naming what works, before that step changes anything; the portable path runs there."""
    from mindspore_radam import dispatch
    for name, implementation in dispatch.IMPLEMENTATIONS.items():
        if implementation.dynamic_shapes:
            _dynamic_run(pattern, name)
            continue
        if implementation.devices is not None and ms.get_context("device_target") not in implementation.devices:
            continue
        with pytest.raises(RuntimeError, match=r"fused=True, but this graph compiles with dynamic-shape inputs.*"
                                               r"use fused=None"):
            _dynamic_run(pattern, name)


@pytest.mark.parametrize("dynamic", (True, False), ids=("dynamic", "static-control"))
def test_a_structural_switch_after_a_dynamic_shape_compile_is_refused(dynamic):
    """A switch of the update's structure (weight decay 0 -> 0.5) once a dynamic-shape step has compiled the
    portable path inline: refused, naming the switch, nothing changed (the graph can't follow it), as for
    fused=False. Control: after static compiles only, the fused kernel follows it."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = MLPLoss()
    optimizer = mindspore_radam.RAdam(net.trainable_params(), lr=0.015625)
    grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

    def body(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss
    step = ms.jit(body, dynamic=1 if dynamic else 0)
    for x, y in _batches()[:3]:
        step(Tensor(x), Tensor(y))
    if not dynamic:
        optimizer.param_groups[0]["weight_decay"] = 0.5
        assert optimizer.param_groups[0]["weight_decay"] == 0.5
        return
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['weight_decay'\]: this switches .* a graph of yours"):
        optimizer.param_groups[0]["weight_decay"] = 0.5
    assert optimizer.param_groups[0]["weight_decay"] == 0.0


def _layered_net():
    ms.set_seed(2)
    return nn.SequentialCell(nn.Dense(4, 6), nn.ReLU(), nn.Dense(6, 5), nn.ReLU(), nn.Dense(5, 2))


def _layer_groups(door, params):
    """One group per layer with its own lr and weight decay (core), or mindcv's decay/no-decay split (nn)."""
    if door == "nn":
        return [dict(params=[p for p in params if "bias" not in p.name], weight_decay=1e-4),
                dict(params=[p for p in params if "bias" in p.name], weight_decay=0.0), dict(order_params=params)]
    layers = sorted({p.name.split(".")[0] for p in params})
    return [dict(params=[p for p in params if p.name.split(".")[0] == layer], lr=2.0 ** -(6 + i), weight_decay=i * 1e-4)
            for i, layer in enumerate(layers)]


@pytest.mark.parametrize("door", ("core", "nn"))
def test_group_entries_of_an_optimizer_over_other_parameters_are_refused(door):
    """The state of an optimizer over every layer, loaded into one built after a layer was frozen: its entries
    numbered by group would land on other groups (learning rates and weight decays swapped), so they are
    refused, naming what loads instead; that recipe loads. Control: the same layout loads whole."""
    make = (lambda groups: NNRAdam(groups, learning_rate=2.0 ** -6)) if door == "nn" else mindspore_radam.RAdam
    net = _layered_net()
    old = make(_layer_groups(door, net.trainable_params()))
    same = make(_layer_groups(door, net.trainable_params()))
    assert ms.load_param_into_net(same, old.parameters_dict(), strict_load=True) == ([], [])
    for param in net[0].get_parameters():
        param.requires_grad = False
    new = make(_layer_groups(door, net.trainable_params()))
    records = [h.asnumpy().copy() for h in new.hyperparameters]
    with pytest.raises(ValueError, match=r"this checkpoint's optimizer held other Parameters \('0\.\w+' is in one "
                                         r"of the two only\).*exp_avg_sq"):
        ms.load_param_into_net(new, old.parameters_dict(), strict_load=True)
    for record, hyper in zip(records, new.hyperparameters):
        np.testing.assert_array_equal(hyper.asnumpy(), record)
    state = {k: v for k, v in old.parameters_dict().items()
             if k.startswith(("exp_avg.", "exp_avg_sq.", "kahan_comp.", "global_step"))}
    ms.load_param_into_net(new, state, strict_load=True)


def test_a_group_added_then_compiled_with_dynamic_shapes_refuses_a_structural_switch():
    """The same after add_param_group: a dynamic-shape step built again with the new group compiles the
    portable path for it too, so switching the new group's structure is refused, nothing changed."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = MLPLoss()
    params = net.trainable_params()
    optimizer = mindspore_radam.RAdam(params[:2], lr=0.015625)

    def dynamic_step():
        grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

        def body(x, y):
            loss, grads = grad_fn(x, y)
            optimizer(grads)
            return loss
        return ms.jit(body, dynamic=1)
    step = dynamic_step()
    for x, y in _batches()[:3]:
        step(Tensor(x), Tensor(y))
    optimizer.add_param_group({"params": params[2:]})
    step = dynamic_step()
    for x, y in _batches()[3:6]:
        step(Tensor(x), Tensor(y))
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['weight_decay'\]: this switches .* a graph of yours"):
        optimizer.param_groups[1]["weight_decay"] = 0.5
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
