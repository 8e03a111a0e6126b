"""Shared tests that our optimizers leave MindSpore's meaning of the user's code alone: set_data and
aliasing on the network's Parameters (an EMA swap through a cache Parameter), the loader's name
fallback refused before anything is written, every mutating path of a group dict, and loads that
compiled graphs can't follow (followed where our own step can, warned where it can't). The anchor is
the same sequence with MindSpore's built-in RAdam, or with no optimizer; each test has a control."""
import warnings

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
import mindspore.common.dtype as mstype
from mindspore.experimental import optim
from mindspore.experimental.optim import lr_scheduler

from mindspore_radam import Lookahead, RAdam, keep_loads_in_place
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.harness import assert_unchanged, set_mode, snapshot

FRONTS = ("core", "nn", "lookahead", "builtin", "none")


def _optimizer(front, params):
    if front == "core":
        return RAdam(params, lr=0.1)
    if front == "nn":
        return NNRAdam(params, learning_rate=0.1)
    if front == "lookahead":
        return Lookahead(RAdam(params, lr=0.1), k=2)
    if front == "builtin":
        return optim.RAdam(params, lr=0.1)
    return None


def _ema_swap(weight):
    """mindone 0.5's EMA.swap_before_eval / swap_after_eval (offloading=True), for one weight."""
    cache = Parameter(Tensor(np.zeros(weight.shape, np.float32)), name="swap_cache")
    cache.set_data(weight)  # keep the training weights (shares their storage)
    weight.set_data(Tensor(np.full(weight.shape, 7.0, np.float32)))  # EMA weights in, for evaluation
    evaluated = weight.asnumpy().copy()
    weight.set_data(cache)  # training weights back
    return evaluated


@pytest.mark.parametrize("front", FRONTS)
def test_an_ema_swap_restores_the_weights_as_without_our_optimizer(front):
    """The six-line swap: with ours the weights come back exactly as with the built-in or no optimizer."""
    set_mode("pynative")
    net = nn.Dense(3, 2)
    _optimizer(front, net.trainable_params())
    original = net.weight.asnumpy().copy()
    assert (_ema_swap(net.weight) == 7.0).all()
    np.testing.assert_array_equal(net.weight.asnumpy(), original)


def test_ema_swap_control_in_place_loads_break_it():
    """Control: with keep_loads_in_place (the opt-in that changes set_data) the same swap keeps 7.0, so
    the test above would fail on an optimizer that patched the user's Parameters."""
    net = keep_loads_in_place(nn.Dense(3, 2))
    _ema_swap(net.weight)
    assert (net.weight.asnumpy() == 7.0).all()


class _Quadratic(nn.Cell):
    """loss = sum((w x - 1)^2): gradients depend on the weights, so a step on storage the forward
    doesn't read shows."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(3, 2, weight_init="ones", bias_init="zeros")

    def construct(self, x):
        return ((self.dense(x) - 1.0) ** 2).sum()


def _train_with_swaps(front, pattern, swap_every):
    """8 steps of _Quadratic, an EMA swap (eval + save sequence) after every `swap_every` steps."""
    set_mode("graph" if pattern == "cell" else "pynative")
    net = _Quadratic()
    optimizer = _optimizer(front, net.trainable_params())
    x = Tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    if pattern == "cell":
        step = nn.TrainOneStepCell(net, optimizer)
    else:
        grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

        def eager(data):
            loss, grads = grad_fn(data)
            optimizer(grads)
            return loss

        step = ms.jit(eager) if pattern == "jit" else eager
    for t in range(1, 9):
        step(x)
        if swap_every and t % swap_every == 0:
            _ema_swap(net.dense.weight)
    return net.dense.weight.asnumpy().copy()


@pytest.mark.parametrize("pattern", ("pynative", "jit", "cell"))
@pytest.mark.parametrize("front", ("core", "nn", "builtin"))
def test_training_with_ema_swaps_equals_training_without(front, pattern):
    """EMA swaps around every second step change nothing of the run, with ours as with the built-in (the
    anchor); control: the run with one swap that is not swapped back differs."""
    if front == "nn" and pattern == "jit":
        pytest.skip("nn.Optimizer subclasses are called from TrainOneStepCell or Model, not from a jit step here")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a swap that comes back is no load: nothing to say
        swapped = _train_with_swaps(front, pattern, 2)
    plain = _train_with_swaps(front, pattern, 0)
    np.testing.assert_array_equal(swapped, plain)
    assert not np.allclose(plain, 7.0)


def _state_only(optimizer, weights):
    names = {p.name for p in weights}
    return {p.name: Parameter(Tensor(p.asnumpy()), name=p.name) for p in optimizer.get_parameters()
            if p.name not in names}


@pytest.mark.parametrize("front", ("core", "nn", "lookahead"))
def test_an_optimizer_only_checkpoint_is_refused_where_the_loader_would_fall_back_on_names(front):
    """load_param_into_net(optimizer, state-only checkpoint): MindSpore's name fallback would load
    exp_avg.weight into weight; refused before anything changes, naming both and strict_load=True,
    which then loads the state alone. Control: a checkpoint with the weights loads."""
    set_mode("pynative")
    net = _Quadratic()
    optimizer = _optimizer(front, net.trainable_params())
    TrainOneStep = nn.TrainOneStepCell(net, optimizer)  # pylint: disable=invalid-name
    TrainOneStep(Tensor(np.ones((4, 3), np.float32)))
    checkpoint = _state_only(optimizer, net.trainable_params())
    for name, p in checkpoint.items():
        if name.startswith("exp_avg."):
            p.set_data(p + 1.0)
    before = snapshot(optimizer)
    with pytest.raises(ValueError, match=r"no 'dense\.(weight|bias)'.*would load '\w+\.dense.*strict_load=True"):
        ms.load_param_into_net(optimizer, checkpoint)
    assert_unchanged(before, snapshot(optimizer))
    not_loaded, _ = ms.load_param_into_net(optimizer, checkpoint, strict_load=True)
    assert set(not_loaded) == {"dense.weight", "dense.bias"}
    np.testing.assert_array_equal(net.dense.weight.asnumpy(), before["dense.weight"])
    exp_avg = [p for p in optimizer.get_parameters() if p.name.startswith("exp_avg.")][0]
    np.testing.assert_array_equal(exp_avg.asnumpy(), checkpoint[exp_avg.name].asnumpy())
    full = {p.name: Parameter(Tensor(p.asnumpy()), name=p.name) for p in optimizer.get_parameters()}
    assert ms.load_param_into_net(optimizer, full) == ([], [])  # control


def test_every_mutating_path_of_a_group_dict_writes_through_or_raises():
    set_mode("pynative")
    params = [Parameter(Tensor(np.ones(3, np.float32)), name="w")]
    optimizer = RAdam(params, lr=0.1)
    group = optimizer.param_groups[0]
    group |= {"lr": 0.25}
    assert float(optimizer.lrs[0].asnumpy()) == 0.25
    group.update(eps=1e-3)
    assert float(optimizer.hyperparameters[0].asnumpy()[4]) == 1e-3
    group["betas"] = (0.8, 0.99)
    assert tuple(optimizer.hyperparameters[0].asnumpy()[:2]) == (0.8, 0.99)
    assert group.setdefault("threshold", 9.0) == 5.0  # present: unchanged, as dict.setdefault
    group.setdefault("note", "metadata")
    assert group.pop("note") == "metadata"
    for mutate in (lambda: group.pop("lr"), lambda: group.__delitem__("eps"), group.clear, group.popitem):
        with pytest.raises(KeyError):
            mutate()
    with pytest.raises(ValueError, match=r"betas'\]\[0\]=2\.0"):
        group |= {"lr": 0.5, "betas": (2.0, 0.9)}
    assert float(optimizer.lrs[0].asnumpy()) == 0.25  # all or nothing
    plain = dict(lr=0.1)
    plain |= {"lr": 0.5}  # control: a plain dict's |= never reaches an optimizer
    assert float(optimizer.lrs[0].asnumpy()) == 0.25


@pytest.mark.parametrize("front", ("core", "nn"))
def test_an_eager_step_after_set_data_updates_the_storage_the_forward_reads(front):
    """Eager forward and backward, optimizer called from Python: after set_data the weight trains from the
    loaded value (our step recompiles for the new storage, and warns about graphs compiled before).
    Control: the loaded value moved, so a step on the old storage would leave it at 3.0."""
    def run(which):
        set_mode("pynative")
        net = _Quadratic()
        optimizer = _optimizer(which, net.trainable_params())
        grad_fn = ms.value_and_grad(net, None, optimizer.parameters)
        x = Tensor(np.ones((4, 3), np.float32))
        for _ in range(2):
            optimizer(grad_fn(x)[1])
        net.dense.weight.set_data(Tensor(np.full((2, 3), 3.0, np.float32)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer(grad_fn(x)[1])
        return net.dense.weight.asnumpy(), [str(w.message) for w in caught if w.category is RuntimeWarning]

    ours, said = run(front)
    assert (ours < 3.0).all()  # a step on the old storage would have left 3.0
    assert any("dense.weight" in message and "keep_loads_in_place" in message for message in said)


@pytest.mark.parametrize("front", ("core", "nn"))
def test_a_state_load_into_an_inlined_optimizer_whose_weights_moved_warns(front, tmp_path):
    """A jit train step compiled ours inline; the net's weights get new storage (the step doesn't see it),
    then the optimizer's state is loaded: a RuntimeWarning names the weights and keep_loads_in_place.
    The step goes on from the storage it compiled with, forward and update alike. Control: with
    keep_loads_in_place the same load says nothing."""
    for kept in (False, True):
        set_mode("graph" if front == "nn" else "pynative")
        net = _Quadratic()
        if kept:
            keep_loads_in_place(net)
        optimizer = _optimizer(front, net.trainable_params())
        x = Tensor(np.ones((4, 3), np.float32))
        if front == "nn":
            step = nn.TrainOneStepCell(net, optimizer)
            step.set_inputs(x)
        else:
            grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

            @ms.jit
            def step(data):
                return optimizer(grad_fn(data)[1])
        step(x)
        path = str(tmp_path / f"state{kept}.ckpt")
        ms.save_checkpoint(optimizer, path)
        checkpoint = ms.load_checkpoint(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ms.load_param_into_net(optimizer, checkpoint)
        said = [str(w.message) for w in caught if w.category is RuntimeWarning]
        if front == "nn":  # a GRAPH_MODE Cell's graph follows every load: nothing to warn about
            assert not said
        elif kept:
            assert not said
        else:
            assert any("keeps training their old storage" in m and "keep_loads_in_place" in m for m in said)


@pytest.mark.parametrize("ours", (True, False), ids=("ours", "experimental"))
def test_scheduler_rollback_inside_a_jit_step(ours):
    """A scheduler stepped inside the jit step, its last_epoch restored with set_data: the lr follows (ours
    keep their storage; MindSpore's with keep_loads_in_place(scheduler)). Controls: without the restore the
    lr differs; without the opt-in a MindSpore scheduler's restore doesn't reach the jit step."""
    from mindspore_radam import lr_scheduler as our_schedulers  # pylint: disable=import-outside-toplevel

    def run(opt_in, restore=True):
        set_mode("pynative")
        params = [Parameter(Tensor(np.ones(3, np.float32)), name="w")]
        optimizer = RAdam(params, lr=0.1)
        if ours:
            scheduler = our_schedulers.WarmupCosineLR(optimizer, warmup_steps=2, total_steps=10)
        else:
            scheduler = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
            if opt_in:
                keep_loads_in_place(scheduler)
        def loss():
            return (params[0] * params[0]).sum()

        grad_fn = ms.value_and_grad(loss, None, optimizer.parameters)

        @ms.jit
        def step():
            optimizer(grad_fn()[1])
            scheduler.step()
            return True

        for _ in range(3):
            step()
        if restore:
            scheduler.last_epoch.set_data(Tensor(1, scheduler.last_epoch.dtype))
        step()
        if not ours:  # StepLR's rate is recursive (from the current lr): its epoch count is what rolls back
            return float(scheduler.last_epoch.asnumpy())
        return float(optimizer.lrs[0].asnumpy())

    expected = run(True)
    if ours:
        # lr after restoring epoch 1 and one step: the schedule's value at epoch 2
        assert expected == pytest.approx(float(_closed(our_schedulers)), rel=1e-12)
    else:
        assert expected == 2.0
        assert run(False) != expected  # control: without the opt-in the restore doesn't reach the jit step
    assert run(True, restore=False) != pytest.approx(expected)  # control


def _closed(our_schedulers):
    params = [Parameter(Tensor(np.ones(3, np.float32)), name="w")]
    optimizer = RAdam(params, lr=0.1)
    scheduler = our_schedulers.WarmupCosineLR(optimizer, warmup_steps=2, total_steps=10)
    scheduler.step()
    scheduler.step()
    return optimizer.lrs[0].asnumpy()


def test_to_float_on_a_cell_holding_ours_leaves_the_float64_update_alone():
    """amp-style to_float(float32) on a train-step Cell reaches our optimizer's flags; a recompile after
    it (a structural switch) still runs the float64 schedule and the kernel. Control: a plain Cell
    takes the flag."""
    set_mode("pynative")
    net = _Quadratic()
    optimizer = RAdam(net.trainable_params(), lr=0.1)
    train = nn.TrainOneStepCell(net, optimizer).to_float(mstype.float32)
    x = Tensor(np.ones((4, 3), np.float32))
    train(x)
    optimizer.param_groups[0]["maximize"] = True  # recompiles our step
    train(x)
    assert not getattr(optimizer, "fp32", False) and getattr(net, "fp32", False)
    assert ops.isfinite(net.dense.weight).all()


def test_a_foreign_parameter_class_is_named_with_its_module():
    """mindtorch's Parameter is a mindspore.Tensor subclass named Parameter: the message names its module,
    not "must be a mindspore.Parameter, but got Parameter". Control: a mindspore.Parameter is taken."""
    class Parameter(Tensor):  # pylint: disable=redefined-outer-name,unused-variable
        """Named like mindtorch.nn.Parameter."""

    with pytest.raises(TypeError, match=r"params\[0\] must be a mindspore.Parameter, but got "
                                        r"tests\.common\.suite_semantics\..*Parameter"):
        RAdam([Parameter(np.ones(3, np.float32))])
    with pytest.raises(TypeError, match=r"but got tests\.common\.suite_semantics\..*Parameter"):
        NNRAdam([Parameter(np.ones(3, np.float32))])
    assert RAdam([ms.Parameter(Tensor(np.ones(3, np.float32)), name="w")]) is not None


@pytest.mark.parametrize("front", FRONTS)
def test_clone_and_copies_of_a_weight_mean_what_they_mean_without_our_optimizer(front):
    """Parameter.clone, copy.copy and copy.deepcopy of a weight, then set_data on either side: the same
    values and independence with ours as with the built-in or no optimizer (the anchors)."""
    import copy  # pylint: disable=import-outside-toplevel
    set_mode("pynative")
    net = nn.Dense(3, 2)
    _optimizer(front, net.trainable_params())
    original = net.weight.asnumpy().copy()
    clone, deep = net.weight.clone(), copy.deepcopy(net.weight)
    net.weight.set_data(Tensor(np.full((2, 3), 7.0, np.float32)))
    for other in (clone, deep):
        np.testing.assert_array_equal(other.asnumpy(), original)
    clone.set_data(Tensor(np.full((2, 3), 5.0, np.float32)))
    assert (net.weight.asnumpy() == 7.0).all()
    shallow = copy.copy(net.weight)
    np.testing.assert_array_equal(shallow.asnumpy(), net.weight.asnumpy())
    # control: the opt-in that changes set_data (keep_loads_in_place) is told apart: a cache sharing the
    # weight's storage then changes with it
    cache = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="cache")
    cache.set_data(net.weight)
    net.weight.set_data(Tensor(np.full((2, 3), 3.0, np.float32)))
    assert (cache.asnumpy() == 7.0).all()


class _SwapCallback(ms.train.Callback):
    """An EMA swap in and out at the end of every epoch (mindone's EvalSaveCallback does one per save)."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def on_train_epoch_end(self, run_context):
        _ema_swap(self.weight)


@pytest.mark.parametrize("front", ("nn", "nn_adam"))
def test_ema_swaps_in_model_train_leave_training_unchanged(front):
    """mindspore.train.Model (GRAPH_MODE, no sink) with a swap callback trains as without it, with ours as
    with nn.Adam (the anchor)."""
    results = []
    for callbacks in (True, False):
        set_mode("graph")
        net = _Quadratic()
        optimizer = (NNRAdam(net.trainable_params(), learning_rate=0.1) if front == "nn"
                     else nn.Adam(net.trainable_params(), learning_rate=0.1))
        model = ms.train.Model(net, optimizer=optimizer, loss_fn=None)
        x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        data = ms.dataset.NumpySlicesDataset({"x": x}, shuffle=False).batch(4)
        model.train(3, data, callbacks=[_SwapCallback(net.dense.weight)] if callbacks else [],
                    dataset_sink_mode=False)
        results.append(net.dense.weight.asnumpy().copy())
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.allclose(results[0], 7.0)  # control: it trained, and not from the EMA weights
