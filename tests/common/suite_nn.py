"""The shared suite of mindspore_radam.nn.RAdam, the nn.Optimizer front door: the float64 reference
over the config table through TrainOneStepCell, nn-style learning rates and weight decays, groups,
loss scaling, checkpoint resume, Model.train, and argument errors. Device folders import it."""
import math

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore.amp import all_finite
import mindspore.common.dtype as mstype
from mindspore.train import Model

import mindspore_radam
from mindspore_radam import dispatch
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.configs import CONFIGS, STEPS, build_groups, make_arrays, make_params, reference_groups
from tests.common.harness import make_stepper, rotating, set_mode, snapshot
from tests.common.reference import ReferenceRAdam
from tests.common.suite import IMPLEMENTATIONS, assert_matches, require_fused_kernel, require_implementation

# TrainOneStepCell eager (the optimizer's construct compiled), TrainOneStepCell compiled whole, and a
# user's jit value_and_grad step calling the optimizer from PyNative.
NN_MODES = ("pynative", "graph", "jit")
# nn groups carry only lr and weight_decay: the table's configs whose groups fit that.
NN_CONFIGS = tuple(c for c in CONFIGS if c.groups is None or all(set(g) <= {"lr", "weight_decay"} for g in c.groups))


def nn_kwargs(kwargs):
    """The table's torch-style keywords as nn.RAdam's."""
    kwargs = dict(kwargs)
    if "lr" in kwargs:
        kwargs["learning_rate"] = kwargs.pop("lr")
    if "betas" in kwargs:
        kwargs["beta1"], kwargs["beta2"] = kwargs.pop("betas")
    return kwargs


def make_nn_radam(params, implementation, **kwargs):
    require_implementation(implementation)
    optimizer = NNRAdam(params, **dispatch.IMPLEMENTATIONS[implementation].demand, **kwargs)
    assert set(optimizer.implementations) == {implementation}
    return optimizer


class LinearLoss(nn.Cell):
    """loss = sum(param * target): its gradient with respect to each parameter is exactly `target`."""

    def __init__(self, params):
        super().__init__()
        self.weights = ParameterTuple(params)

    def construct(self, *targets):
        total = 0.0
        for param, target in zip(self.weights, targets):
            total = total + (ops.cast(param, mstype.float32) * target).sum()
        return total


def make_cell_stepper(mode, optimizer, params):
    """step(grad_arrays) through ``nn.TrainOneStepCell`` in PyNative or GRAPH_MODE, or (mode "jit")
    a ``mindspore.jit`` value_and_grad step that calls the optimizer (harness.make_stepper)."""
    if mode == "jit":
        return make_stepper("jit", optimizer)
    set_mode(mode)
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    return lambda grads: train(*(Tensor(g) for g in grads))


@pytest.mark.parametrize("implementation, mode, config", rotating(NN_CONFIGS, NN_MODES))
def test_nn_matches_float64_reference_every_step(implementation, mode, config):
    arrays = make_arrays(0)
    params = make_params(arrays)
    optimizer = make_nn_radam(build_groups(config, params), implementation, **nn_kwargs(config.kwargs))
    reference = ReferenceRAdam(reference_groups(config, arrays))
    step = make_cell_stepper(mode, optimizer, params)
    rng = np.random.default_rng(1)
    for t in range(1, STEPS + 1):
        grads = [(config.grad_scale * rng.standard_normal(a.shape)).astype(np.float32) for a in arrays]
        step(grads)
        reference.step(grads)
        assert_matches(params, reference.params, f"{config.desc}, {mode}, step {t}")
    assert {int(s.asnumpy()) for s in optimizer.steps} == {STEPS}
    assert int(optimizer.global_step.asnumpy()[0]) == STEPS


def test_nn_reference_comparison_can_fail():
    """Negative control: the same comparison with the reference one step ahead fails."""
    arrays = make_arrays(0)
    params = make_params(arrays)
    step = make_cell_stepper("graph", NNRAdam(params, learning_rate=0.1), params)
    reference = ReferenceRAdam([dict(params=arrays, lr=0.1)])
    grads = [np.ones_like(a) for a in arrays]
    step(grads)
    reference.step(grads)
    reference.step(grads)
    with pytest.raises(AssertionError):
        assert_matches(params, reference.params, "control")


@pytest.mark.parametrize("mode", ("pynative", "graph"))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_nn_and_core_give_the_same_parameters(implementation, mode):
    """12 TrainOneStepCell steps, betas (0.9, 0.99999), L2 weight decay: the two front doors agree."""
    arrays = make_arrays(3)
    results = []
    for front in ("nn", "core"):
        params = make_params(arrays)
        if front == "nn":
            optimizer = make_nn_radam(params, implementation, learning_rate=0.05, beta2=0.99999, weight_decay=0.1)
        else:
            optimizer = mindspore_radam.RAdam(params, lr=0.05, betas=(0.9, 0.99999), weight_decay=0.1,
                                              **dispatch.IMPLEMENTATIONS[implementation].demand)
        step = make_cell_stepper(mode, optimizer, params)
        rng = np.random.default_rng(4)
        for _ in range(12):
            step([rng.standard_normal(a.shape).astype(np.float32) for a in arrays])
        results.append([p.asnumpy().copy() for p in params])
    moved = max(float(np.max(np.abs(a - b), initial=0)) for a, b in zip(results[0], arrays))
    assert moved > 0.1
    for ours, core in zip(*results):
        np.testing.assert_allclose(ours, core, rtol=1e-5, atol=1e-7)


def _cosine_rates(max_lr, min_lr, decay_steps, steps):
    """nn.CosineDecayLR's documented formula, independently."""
    return [min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * min(t, decay_steps) / decay_steps))
            for t in range(steps)]


def _warmup_rates(lr, warmup_steps, steps):
    """nn.WarmUpLR's documented formula: lr * min(t, warmup_steps) / warmup_steps."""
    return [lr * min(t, warmup_steps) / warmup_steps for t in range(steps)]


DYNAMIC_LRS = {
    "list": (lambda: [0.1 * 0.8 ** t for t in range(STEPS)], lambda: [0.1 * 0.8 ** t for t in range(STEPS)]),
    "tensor_1d": (lambda: Tensor(np.linspace(0.1, 0.01, STEPS).astype(np.float32)),
                  lambda: list(np.linspace(0.1, 0.01, STEPS).astype(np.float32))),
    "CosineDecayLR": (lambda: nn.CosineDecayLR(0.001, 0.1, 10), lambda: _cosine_rates(0.1, 0.001, 10, STEPS)),
    "WarmUpLR": (lambda: nn.WarmUpLR(0.05, 6), lambda: _warmup_rates(0.05, 6, STEPS)),
}


@pytest.mark.parametrize("implementation, mode, name", rotating(sorted(DYNAMIC_LRS), ("pynative", "graph"), ids=str))
def test_nn_dynamic_learning_rates_match_reference_fed_the_same_rates(implementation, mode, name):
    """The rates come from closed forms written here, not from the optimizer (float32 rounding of
    the schedule is within the tolerance)."""
    make_lr, rates = DYNAMIC_LRS[name]
    arrays = make_arrays(5)
    params = make_params(arrays)
    optimizer = make_nn_radam(params, implementation, learning_rate=make_lr(), weight_decay=0.05)
    step = make_cell_stepper(mode, optimizer, params)
    reference = ReferenceRAdam([dict(params=arrays, weight_decay=0.05)])
    rng = np.random.default_rng(6)
    for t, rate in enumerate(rates(), start=1):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
        step(grads)
        reference.step(grads, lrs=[float(np.float32(rate))])
        assert_matches(params, reference.params, f"{name}, step {t}")


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_group_lrs_decays_order_params_and_decay_schedule(mode):
    """Groups with their own lr (one a list) and weight decay (one a schedule Cell), reordered by
    order_params, against the reference with the same per-step values."""
    arrays = make_arrays(7)
    params = make_params(arrays)
    decay_schedule = nn.ExponentialDecayLR(0.2, 0.5, 1)  # 0.2 * 0.5 ** t, a schedule Cell of the step
    group_lrs = [0.05 * 0.9 ** t for t in range(STEPS)]
    order = [params[4], params[0], params[1], params[2], params[3]]
    optimizer = NNRAdam([{"params": params[:2], "lr": group_lrs, "weight_decay": decay_schedule},
                         {"params": params[2:], "weight_decay": 0.1},
                         {"order_params": order}], learning_rate=[0.02] * STEPS)
    assert [p.name for p in optimizer.parameters] == [p.name for p in order]
    step = make_cell_stepper(mode, optimizer, list(optimizer.parameters))
    reference = ReferenceRAdam([dict(params=[arrays[4]], weight_decay=0.1), dict(params=arrays[:2]),
                                dict(params=arrays[2:4], weight_decay=0.1)])
    rng = np.random.default_rng(8)
    for t in range(STEPS):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
        reference.groups[1]["weight_decay"] = float(np.float32(0.2 * 0.5 ** t))
        step([grads[4]] + grads[:4])
        reference.step([grads[4]] + grads[:4], lrs=[0.02, float(np.float32(group_lrs[t])), 0.02])
    assert_matches([params[4]] + params[:4], reference.params, f"{mode}, {STEPS} steps")


def test_nn_default_weight_decay_skips_beta_and_gamma():
    """Without groups, like nn.Adam: parameters named *beta*/*gamma* (normalization) are not decayed."""
    params = [Parameter(Tensor(np.ones(3, np.float32)), name=n) for n in ("fc.weight", "bn.gamma", "bn.beta")]
    optimizer = NNRAdam(params, learning_rate=0.1, weight_decay=0.5)
    make_cell_stepper("graph", optimizer, params)([np.zeros(3, np.float32)] * 3)
    values = [float(p.asnumpy()[0]) for p in params]
    assert values[0] < 1.0 and values[1:] == [1.0, 1.0]


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_grad_centralization_group(mode):
    """grad_centralization centralizes the gradient (MindSpore's rule: tensors of rank > 1 whose
    second dimension is a multiple of 16) before the update. MindSpore has no CPU kernel for it:
    there the optimizer refuses the option at construction, with the reason."""
    set_mode(mode)
    arrays = [np.random.default_rng(9).standard_normal((4, 16)).astype(np.float32)]
    params = make_params(arrays)
    if ms.get_context("device_target") == "CPU":
        with pytest.raises(ValueError, match=r"grad_centralization=True needs .* no CPU implementation"):
            NNRAdam([{"params": params, "grad_centralization": True}])
        return
    optimizer = NNRAdam([{"params": params, "grad_centralization": True}], learning_rate=0.01)
    step = make_cell_stepper(mode, optimizer, params)
    reference = ReferenceRAdam([dict(params=arrays, lr=0.01)])
    rng = np.random.default_rng(10)
    for _ in range(8):
        grad = rng.standard_normal((4, 16)).astype(np.float32) + 3.0
        step([grad])
        reference.step([grad - grad.mean(axis=1, keepdims=True)])
    assert_matches(params, reference.params, mode, atol=1e-5)


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_loss_scale_divides_the_gradients(mode):
    """loss_scale=1024 on gradients scaled by 1024 gives the unscaled run, bit for bit (a power of 2)."""
    arrays = make_arrays(11)
    results = []
    for scale in (1.0, 1024.0):
        params = make_params(arrays)
        step = make_cell_stepper(mode, NNRAdam(params, learning_rate=0.05, weight_decay=0.1, loss_scale=scale),
                                 params)
        rng = np.random.default_rng(12)
        for _ in range(8):
            step([(scale * rng.standard_normal(a.shape)).astype(np.float32) for a in arrays])
        results.append([p.asnumpy().copy() for p in params])
    for unscaled, scaled in zip(*results):
        np.testing.assert_array_equal(scaled, unscaled)


class CpuOverflowCheckCell(nn.TrainOneStepWithLossScaleCell):
    """MindSpore's loss-scale train cell with an overflow check that runs on CPU: its stock check
    uses NPU/GPU status ops. ``all_finite`` of the gradients decides, as on GPU."""

    def get_overflow_status(self, status, compute_output):
        return ops.logical_not(all_finite(compute_output))


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_loss_scale_cell_skips_an_overflowed_step(mode):
    set_mode(mode)
    arrays = make_arrays(13)
    params = make_params(arrays)
    optimizer = NNRAdam(params, learning_rate=0.05)
    manager = nn.DynamicLossScaleUpdateCell(loss_scale_value=2.0 ** 10, scale_factor=2, scale_window=100)
    train = CpuOverflowCheckCell(LinearLoss(params), optimizer, scale_sense=manager)
    finite = [Tensor(np.ones(a.shape, np.float32)) for a in arrays]
    _, overflow, _ = train(*finite)
    assert not bool(overflow.asnumpy())
    before = snapshot(optimizer)
    bad = list(finite)
    bad[0] = Tensor(np.full(arrays[0].shape, np.inf, np.float32))
    _, overflow, scale = train(*bad)
    assert bool(overflow.asnumpy()) and float(train.scale_sense.asnumpy()) == 2.0 ** 9
    after = snapshot(optimizer)
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=f"{name} changed on an overflowed step")
    train(*finite)
    assert int(optimizer.steps[0].asnumpy()) == 2


class Digits(nn.Cell):
    def __init__(self):
        super().__init__()
        self.body = nn.SequentialCell(nn.Dense(8, 16), nn.ReLU(), nn.Dense(16, 3))

    def construct(self, x):
        return self.body(x)


def _toy_data(batches=6, batch=8):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((batches * batch, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return x, y


def _model(mode, implementation, metrics=None, learning_rate=None):
    set_mode(mode)
    ms.set_seed(1)
    net = Digits()
    if learning_rate is None:
        learning_rate = [0.02 * 0.95 ** t for t in range(64)]
    optimizer = make_nn_radam(net.trainable_params(), implementation, learning_rate=learning_rate, weight_decay=0.01)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return net, optimizer, Model(net, loss, optimizer, metrics=metrics)


def _dataset():
    x, y = _toy_data()
    return ms.dataset.NumpySlicesDataset({"x": x, "y": y}, shuffle=False).batch(8)


@pytest.mark.versions
@pytest.mark.parametrize("implementation, mode", [
    pytest.param(name, mode, marks=() if (i + j) % 2 == 0 else pytest.mark.extended)
    for i, name in enumerate(IMPLEMENTATIONS) for j, mode in enumerate(("pynative", "graph"))])
def test_nn_model_checkpoint_resume_is_bit_identical(implementation, mode, tmp_path):
    """Model.train with ModelCheckpoint for 2 epochs, then a fresh Model loads the checkpoint
    (load_checkpoint / load_param_into_net) and trains 2 more: the same as 4 epochs in one go."""
    from mindspore.train import CheckpointConfig, ModelCheckpoint
    net, _, model = _model(mode, implementation)
    model.train(4, _dataset(), dataset_sink_mode=False)
    uninterrupted = {p.name: p.asnumpy().copy() for p in net.trainable_params()}

    net, _, model = _model(mode, implementation)
    save = ModelCheckpoint(prefix="toy", directory=str(tmp_path), config=CheckpointConfig(save_checkpoint_steps=12))
    model.train(2, _dataset(), callbacks=[save], dataset_sink_mode=False)
    checkpoint = ms.load_checkpoint(str(tmp_path / "toy-2_6.ckpt"))
    assert {"step.group_0", "global_step", "exp_avg.body.0.weight", "exp_avg_sq.body.2.bias"} <= set(checkpoint)

    net, optimizer, model = _model(mode, implementation)
    ms.load_param_into_net(net, checkpoint)
    not_loaded, _ = ms.load_param_into_net(optimizer, checkpoint)
    assert not not_loaded and int(optimizer.steps[0].asnumpy()) == 12
    model.train(4, _dataset(), initial_epoch=2, dataset_sink_mode=False)
    for p in net.trainable_params():
        np.testing.assert_array_equal(p.asnumpy(), uninterrupted[p.name], err_msg=p.name)


@pytest.mark.versions
@pytest.mark.parametrize("sink", (False, True), ids=("no_sink", "sink"))
@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_model_trains_and_evaluates_with_callbacks(mode, sink):
    """Model.train as users call it: with callbacks, with and without dataset sinking (the default)."""
    from mindspore.train import Accuracy, LossMonitor, TimeMonitor
    net, optimizer, model = _model(mode, "hypermap", metrics={"accuracy": Accuracy()}, learning_rate=0.05)
    before = model.eval(_dataset(), dataset_sink_mode=False)["accuracy"]
    model.train(16, _dataset(), callbacks=[LossMonitor(6), TimeMonitor()], dataset_sink_mode=sink)
    after = model.eval(_dataset(), dataset_sink_mode=False)["accuracy"]
    assert int(optimizer.steps[0].asnumpy()) == 96 and after > max(before, 0.8)


@pytest.mark.parametrize("level", ("O0", "O1", "O2"))
def test_nn_amp_build_train_network(level, tmp_path, monkeypatch):
    """amp.build_train_network (what Model(..., amp_level=...) builds) with our optimizer; O2 with
    the loss scaling MindSpore allows on CPU, FixedLossScaleManager(drop_overflow_update=False),
    and the same loss_scale on the optimizer. The loss falls."""
    monkeypatch.chdir(tmp_path)  # amp's network rewriting writes a 'rewritten_network' folder there
    set_mode("graph")
    ms.set_seed(2)
    net = Digits()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    scale, options = 1.0, {}
    if level == "O2":
        scale = 1024.0
        options = dict(loss_scale_manager=ms.amp.FixedLossScaleManager(scale, drop_overflow_update=False))
    optimizer = NNRAdam(net.trainable_params(), learning_rate=0.02, loss_scale=scale)
    train = ms.amp.build_train_network(net, optimizer, loss, level=level, **options)
    x, y = _toy_data()
    losses = [float(train(Tensor(x), Tensor(y)).asnumpy()) for _ in range(40)]
    assert losses[-1] < 0.9 * losses[0] and int(optimizer.steps[0].asnumpy()) == 40


NN_BAD_INPUTS = (
    ("learning_rate_negative", dict(learning_rate=-0.1), ValueError, r"Invalid learning rate: learning_rate"),
    ("learning_rate_list_nan", dict(learning_rate=[0.1, math.nan]), ValueError, r"learning_rate must be finite"),
    ("learning_rate_string", dict(learning_rate="0.1"), TypeError, r"learning_rate must be a float"),
    ("learning_rate_tensor_2d", dict(learning_rate=Tensor(np.ones((2, 2), np.float32))), ValueError,
     r"learning_rate must be a 0-d or 1-d Tensor"),
    ("learning_rate_empty_list", dict(learning_rate=[]), ValueError, r"learning_rate is empty"),
    ("beta1_one", dict(beta1=1.0), ValueError, r"beta1: 1\.0"),
    ("beta2_negative", dict(beta2=-0.5), ValueError, r"beta2: -0\.5"),
    ("eps_negative", dict(eps=-1.0), ValueError, r"Invalid epsilon value: eps=-1\.0"),
    ("weight_decay_negative", dict(weight_decay=-0.1), ValueError, r"Invalid weight_decay value: weight_decay"),
    ("weight_decay_string", dict(weight_decay="0.1"), TypeError, r"weight_decay must be a float, int or a Cell"),
    ("loss_scale_zero", dict(loss_scale=0.0), ValueError, r"Invalid loss_scale: 0\.0"),
    ("loss_scale_string", dict(loss_scale="8"), TypeError, r"loss_scale must be a float"),
    ("threshold_nan", dict(threshold=math.nan), ValueError, r"Invalid threshold value"),
    ("maximize_not_bool", dict(maximize=1), TypeError, r"maximize must be a bool"),
    ("fused_not_bool", dict(fused="yes"), TypeError, r"fused must be None, True or False"),
)
# A second Parameter named as the first of _params(): made here, since the test forbids new Parameters.
_NAMESAKE = Parameter(Tensor(np.ones(3, np.float32)), name="p0")
NN_BAD_PARAMS = (
    ("empty", lambda ps: [], ValueError, r"params is empty"),
    ("single_parameter", lambda ps: ps[0], TypeError, r"params must be a list"),
    ("duplicate", lambda ps: [ps[0], ps[0]], ValueError, r"Parameter 'p0' appears more than once"),
    ("two_parameters_one_name", lambda ps: [ps[0], _NAMESAKE], ValueError,
     r"params: two different Parameters are named 'p0'; the optimizer saves its state under each"),
    ("group_parameters_one_name", lambda ps: [{"params": ps[:2]}, {"params": [_NAMESAKE]}], ValueError,
     r"params\[1\]: two different Parameters are named 'p0'"),
    ("group_unknown_key_without_guess", lambda ps: [{"params": ps, "momentum": 0.9}], ValueError,
     r"params\[0\] has an unknown key 'momentum'; a group holds 'params', 'lr', 'weight_decay', 'grad_centralization'"),
    ("group_unknown_key", lambda ps: [{"params": ps, "learning_rate": 0.1}], ValueError,
     r"params\[0\] has an unknown key 'learning_rate'.*did you mean 'lr'\?"),
    ("group_betas_not_nn", lambda ps: [{"params": ps, "betas": (0.9, 0.99)}], ValueError,
     r"params\[0\] has an unknown key 'betas'"),
    ("group_lr_negative", lambda ps: [{"params": ps, "lr": -1.0}], ValueError, r"params\[0\]\['lr'\]"),
    ("group_gc_not_bool", lambda ps: [{"params": ps, "grad_centralization": 1}], TypeError,
     r"params\[0\]\['grad_centralization'\] must be a bool"),
    ("order_params_twice", lambda ps: [{"params": ps}, {"order_params": ps}, {"order_params": ps}], ValueError,
     r"params\[2\]: a second 'order_params' dict; give at most one"),
    ("order_params_incomplete", lambda ps: [{"params": ps}, {"order_params": ps[:2]}], ValueError,
     r"'order_params' must list exactly the Parameters"),
)


@pytest.mark.parametrize("desc, kwargs, error, regex", NN_BAD_INPUTS, ids=[b[0] for b in NN_BAD_INPUTS])
def test_nn_bad_arguments_raise_before_anything_is_created(desc, kwargs, error, regex, monkeypatch):
    params = _params()
    monkeypatch.setattr(Parameter, "__init__", lambda *a, **k: pytest.fail("a Parameter was created"))
    with pytest.raises(error, match=regex):
        NNRAdam(params, **kwargs)


@pytest.mark.parametrize("desc, make, error, regex", NN_BAD_PARAMS, ids=[b[0] for b in NN_BAD_PARAMS])
def test_nn_bad_params_raise_before_anything_is_created(desc, make, error, regex, monkeypatch):
    params = _params()
    monkeypatch.setattr(Parameter, "__init__", lambda *a, **k: pytest.fail("a Parameter was created"))
    with pytest.raises(error, match=regex):
        NNRAdam(make(params))


def _params():
    return make_params(make_arrays(15))


def test_nn_fused_true_where_it_cannot_run_says_why():
    params = [Parameter(Tensor(np.ones(3, np.float16)), name="half")]
    with pytest.raises(RuntimeError, match=r"fused=True, but .*float32"):
        NNRAdam(params, fused=True)


def test_nn_takes_numpy_scalars_as_numbers():
    """numpy scalars (a config read with numpy) for learning_rate and weight_decay, at the top and in groups,
    are the numbers they hold (nn.Optimizer alone refuses them after it started building)."""
    params = _params()
    with_numpy = NNRAdam([dict(params=params[:2], weight_decay=np.float64(1e-4), lr=np.float32(0.5))],
                         learning_rate=np.float32(0.015625), weight_decay=np.float64(1e-4))
    plain = NNRAdam([dict(params=_params()[:2], weight_decay=1e-4, lr=float(np.float32(0.5)))], learning_rate=0.015625,
                    weight_decay=1e-4)
    for a, b in zip(with_numpy.hyperparameters, plain.hyperparameters, strict=True):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
