"""Shared tests of what users write between steps: every value, written every way, in every pattern,
takes effect from the next step (against the float64 reference fed the same values at the same step);
checkpoints loaded in-process (rollback) continue bit-identically to a fresh resume; writes that can't
reach a compiled graph raise or warn; empty groups and one-element lr Tensors. Every test carries its
negative control: the reference run without the write must differ from the one with it."""
from dataclasses import dataclass
import warnings

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer
import mindspore.common.dtype as mstype
from mindspore.experimental import optim
from mindspore.experimental.optim import lr_scheduler

from mindspore_radam import RAdam, keep_loads_in_place, load_builtin_checkpoint
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.configs import make_arrays, make_params
from tests.common.harness import PORTABLE, assert_unchanged, make_stepper, set_mode, snapshot
from tests.common.reference import ReferenceRAdam
from tests.common.suite import IMPLEMENTATIONS, assert_matches, grad_sequence, make_radam
from tests.common.suite_nn import LinearLoss, make_nn_radam

SHAPES = ((4, 3), (7,), (), (0,))
STEPS, WRITE_AT = 9, 4  # the write lands before step 4; steps 6-9 are rectified at beta2 = 0.999
# Calls from Python in PyNative and GRAPH_MODE; a user's jit train step; TrainOneStepCell in GRAPH_MODE.
PATTERNS = ("pynative", "graph", "jit", "cell")
INLINE = ("jit", "cell")  # the patterns where a caller's graph compiles the optimizer inline


def live_stepper(pattern, optimizer, params):
    if pattern != "cell":
        return make_stepper(pattern, optimizer)
    set_mode("graph")
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    return lambda grads: train(*(Tensor(g) for g in grads))


def _load_hyperparameters(optimizer, **options):
    """Writes hyperparameters the way a checkpoint does: load_param_into_net of another optimizer's."""
    other = RAdam([Parameter(Tensor(p.asnumpy()), name=p.name) for p in optimizer.parameters],
                  **dict(dict(lr=0.01, weight_decay=0.1), **options))
    ms.load_param_into_net(optimizer, {"hyperparameters.group_0": other.hyperparameters[0]})


@dataclass(frozen=True)
class Write:
    desc: str
    apply: object  # apply(optimizer): the user's write
    change: dict  # what the reference's group gets at the same step
    structural: bool = False  # changes which lines the portable update compiles


WRITES = (
    Write("lr_group_number", lambda o: o.param_groups[0].__setitem__("lr", 0.05), {"lr": 0.05}),
    Write("lr_group_tensor", lambda o: o.param_groups[0].__setitem__("lr", Tensor(0.05, mstype.float64)),
          {"lr": 0.05}),
    Write("lr_group_tensor_1d", lambda o: o.param_groups[0].__setitem__("lr", Tensor([0.05])), {"lr": 0.05}),
    Write("lr_set_data", lambda o: o.lrs[0].set_data(Tensor(0.05, mstype.float32)), {"lr": 0.05}),
    Write("lr_ops_assign", lambda o: ops.assign(o.lrs[0], Tensor(0.05, mstype.float32)), {"lr": 0.05}),
    Write("lr_zero", lambda o: o.param_groups[0].__setitem__("lr", 0.0), {"lr": 0.0}),
    Write("betas", lambda o: o.param_groups[0].__setitem__("betas", (0.8, 0.99)), {"betas": (0.8, 0.99)}),
    Write("betas_by_checkpoint", lambda o: _load_hyperparameters(o, betas=(0.8, 0.99)), {"betas": (0.8, 0.99)}),
    Write("eps", lambda o: o.param_groups[0].__setitem__("eps", 0.5), {"eps": 0.5}),
    Write("weight_decay_value", lambda o: o.param_groups[0].__setitem__("weight_decay", 0.5), {"weight_decay": 0.5}),
    Write("threshold", lambda o: o.param_groups[0].__setitem__("threshold", 7.5), {"threshold": 7.5}),
    Write("degenerated_to_sgd", lambda o: o.param_groups[0].__setitem__("degenerated_to_sgd", False),
          {"degenerated_to_sgd": False}),
    Write("maximize", lambda o: o.param_groups[0].__setitem__("maximize", True), {"maximize": True}, True),
    Write("decoupled_weight_decay", lambda o: o.param_groups[0].__setitem__("decoupled_weight_decay", True),
          {"decoupled_weight_decay": True}, True),
    Write("weight_decay_off", lambda o: o.param_groups[0].__setitem__("weight_decay", 0.0), {"weight_decay": 0.0},
          True),
    Write("maximize_by_checkpoint", lambda o: _load_hyperparameters(o, maximize=True), {"maximize": True}, True),
)
START = dict(lr=0.01, weight_decay=0.1)  # every write changes something from here


# Every write in every pattern; the implementation alternates, so each meets both in every pattern
# (a structural switch: refused for the portable path inside a caller's graph, live for the kernel).
CASES = [pytest.param(IMPLEMENTATIONS[(w + p) % len(IMPLEMENTATIONS)], pattern, write,
                      id=f"{IMPLEMENTATIONS[(w + p) % len(IMPLEMENTATIONS)]}-{pattern}-{write.desc}")
         for w, write in enumerate(WRITES) for p, pattern in enumerate(PATTERNS)]


@pytest.mark.versions
@pytest.mark.parametrize("implementation, pattern, write", CASES)
def test_a_value_written_between_steps_takes_effect(implementation, pattern, write):
    arrays = make_arrays(50, SHAPES)
    params = make_params(arrays)
    optimizer = make_radam(params, implementation, **START)
    step = live_stepper(pattern, optimizer, params)
    reference = ReferenceRAdam([dict(START, params=arrays)])
    control = ReferenceRAdam([dict(START, params=arrays)])  # the run in which the write is dropped
    refused = write.structural and pattern in INLINE and implementation == "hypermap"
    for t, grads in enumerate(grad_sequence(51, steps=STEPS, shapes=SHAPES), start=1):
        if t == WRITE_AT:
            if refused:  # the caller's compiled graph can't follow: an error naming the key, nothing changed
                before, groups = snapshot(optimizer), dict(optimizer.param_groups[0])
                with pytest.raises(ValueError, match=rf"{list(write.change)[0]}.*compiled this optimizer inline"):
                    write.apply(optimizer)
                assert_unchanged(before, snapshot(optimizer))
                assert dict(optimizer.param_groups[0]) == groups
            else:
                write.apply(optimizer)
                reference.groups[0].update(write.change)
                for key, value in write.change.items():
                    got = optimizer.param_groups[0][key]
                    assert (float(got.asnumpy()) if key == "lr" else got) == pytest.approx(value), key
        step(grads)
        reference.step(grads)
        control.step(grads)
        assert_matches(params, reference.params, f"{write.desc}, {pattern}, step {t}")
    # Negative control: the write changes the result, so a dropped write would fail the comparison.
    if not refused:
        assert max(np.abs(a - b).max() for a, b in zip(reference.params, control.params) if a.size) > 1e-4


def test_structural_switch_recompiles_calls_from_python_once():
    """maximize switched between calls from Python: one new compile, then it takes effect every step."""
    arrays = make_arrays(52, SHAPES)
    params = make_params(arrays)
    optimizer = make_radam(params, "hypermap", lr=0.01)
    step = make_stepper("pynative", optimizer)
    grads = grad_sequence(53, steps=4, shapes=SHAPES)
    step(grads[0])
    created = optimizer.create_time
    optimizer.param_groups[0]["maximize"] = True
    assert optimizer.create_time != created
    created = optimizer.create_time
    optimizer.param_groups[0]["betas"] = (0.85, 0.995)  # a value: no recompilation
    optimizer.param_groups[0]["maximize"] = True  # unchanged: no recompilation
    assert optimizer.create_time == created


def test_bad_group_values_are_rejected_before_anything_changes():
    params = make_params(make_arrays(54, SHAPES))
    optimizer = make_radam(params, "hypermap", lr=0.01)
    make_stepper("pynative", optimizer)(grad_sequence(55, steps=1, shapes=SHAPES)[0])
    before, groups = snapshot(optimizer), dict(optimizer.param_groups[0])
    for key, value, error, message in (
            ("lr", -1.0, ValueError, r"param_groups\[0\]\['lr'\]=-1\.0"),
            ("lr", Tensor([0.1, 0.2]), ValueError, r"one element"),
            ("betas", (0.9, 1.0), ValueError, r"param_groups\[0\]\['betas'\]\[1\]=1\.0"),
            ("eps", "small", TypeError, r"param_groups\[0\]\['eps'\] must be a real number"),
            ("maximize", 1, TypeError, r"param_groups\[0\]\['maximize'\] must be a bool"),
            ("params", [], ValueError, r"can't be replaced.*add_param_group")):
        with pytest.raises(error, match=message):
            optimizer.param_groups[0][key] = value
    with pytest.raises(KeyError, match="can't be deleted"):
        del optimizer.param_groups[0]["betas"]
    with pytest.raises(KeyError, match="can't be cleared"):
        optimizer.param_groups[0].clear()
    with pytest.raises(ValueError, match=r"betas'\]\[0\]=2\.0"):  # all or nothing: lr is not written either
        optimizer.param_groups[0].update({"lr": 0.5, "betas": (2.0, 0.9)})
    for write, message in ((lambda: optimizer.lrs[0].set_data(Tensor(float("nan"), mstype.float64)), "nan"),
                           (lambda: optimizer.lrs[0].set_data(Tensor(-1.0, mstype.float64)), r"-1\.0"),
                           (lambda: optimizer.steps[0].set_data(Tensor(-3, mstype.int64)), r">= 0, but got -3")):
        with pytest.raises(ValueError, match=message):  # loads are checked like the constructor's arguments
            write()
    assert_unchanged(before, snapshot(optimizer))
    assert dict(optimizer.param_groups[0]) == groups
    optimizer.param_groups[0]["note"] = "metadata"  # other keys stay free
    assert optimizer.param_groups[0]["note"] == "metadata"


def _run(pattern, implementation, params, grads, optimizer=None):
    optimizer = optimizer or make_radam(params, implementation, lr=0.02, betas=(0.9, 0.99), weight_decay=0.05)
    step = live_stepper(pattern, optimizer, params)
    for g in grads:
        step(g)
    return optimizer, step


@pytest.mark.versions
@pytest.mark.parametrize("implementation, pattern", [
    pytest.param(name, pattern, marks=pytest.mark.extended if name == PORTABLE and pattern != "jit" else ())
    for name, pattern in [(IMPLEMENTATIONS[p % len(IMPLEMENTATIONS)], pattern) for p, pattern in enumerate(PATTERNS)]
    + [(IMPLEMENTATIONS[(p + 1) % len(IMPLEMENTATIONS)], pattern) for p, pattern in enumerate(PATTERNS[:2])]])
def test_in_process_rollback_continues_like_a_fresh_resume(implementation, pattern, tmp_path):
    """2 steps, checkpoint, 2 other steps, load the checkpoint into the net and the optimizer that
    already stepped (mindspore.load_param_into_net), 5 steps: bit-identical to a fresh optimizer that
    loaded the checkpoint before its first step and took the same 5 steps."""
    arrays = make_arrays(56, SHAPES)
    grads = grad_sequence(57, steps=7, shapes=SHAPES)
    detour = grad_sequence(58, steps=2, shapes=SHAPES)
    path = str(tmp_path / "rollback.ckpt")

    params = make_params(arrays)
    if pattern == "jit":  # a jit function holds the storage it compiled with: the documented opt-in
        keep_loads_in_place(params)
    optimizer, step = _run(pattern, implementation, params, grads[:2])
    ms.save_checkpoint(optimizer, path)
    for g in detour:
        step(g)
    diverged = [p.asnumpy().copy() for p in params]
    checkpoint = ms.load_checkpoint(path)
    ms.load_param_into_net(LinearLoss(params), checkpoint)
    ms.load_param_into_net(optimizer, checkpoint)
    assert [int(s.asnumpy()) for s in optimizer.steps] == [2]
    for g in grads[2:]:
        step(g)
    rolled_back = [p.asnumpy().copy() for p in params]

    fresh = make_params(arrays)
    resumed = make_radam(fresh, implementation, lr=0.02, betas=(0.9, 0.99), weight_decay=0.05)
    ms.load_param_into_net(resumed, ms.load_checkpoint(path))
    _run(pattern, implementation, fresh, grads[2:], resumed)
    for got, expected in zip(rolled_back, fresh, strict=True):
        np.testing.assert_array_equal(got, expected.asnumpy())
    # Control: the run that ignored the load goes elsewhere.
    ignored = make_params(diverged)
    _run(pattern, implementation, ignored, grads[2:])
    assert max(np.abs(a - b.asnumpy()).max() for a, b in zip(rolled_back, ignored) if a.size) > 1e-4


@pytest.mark.parametrize("implementation, pattern", [(name, ("jit", "pynative")[index % 2])
                                                     for index, name in enumerate(IMPLEMENTATIONS)])
def test_builtin_checkpoint_loaded_mid_run_continues_like_a_fresh_switch(implementation, pattern, tmp_path):
    """load_builtin_checkpoint into our optimizer after it stepped (and the built-in's weights into the
    net) continues exactly like an optimizer that loaded it before its first step."""
    shapes = SHAPES[:3]  # the built-in rejects zero-size parameters
    arrays = make_arrays(59, shapes)
    grads = grad_sequence(60, steps=8, shapes=shapes)
    builtin_params = make_params(arrays)
    builtin = optim.RAdam(builtin_params, lr=0.01)
    builtin_step = make_stepper(pattern, builtin)
    for g in grads[:5]:
        builtin_step(g)
    path = str(tmp_path / "builtin.ckpt")
    ms.save_checkpoint(builtin, path)

    def continue_from_checkpoint(steps_before):
        params = make_params(arrays)
        if pattern == "jit":  # a jit function holds the storage it compiled with: the documented opt-in
            keep_loads_in_place(params)
        optimizer = make_radam(params, implementation, lr=0.01)
        step = make_stepper(pattern, optimizer)
        for g in grad_sequence(61, steps=steps_before, shapes=shapes):
            step(g)
        ms.load_param_into_net(LinearLoss(params), ms.load_checkpoint(path))
        assert load_builtin_checkpoint(optimizer, path) == 5
        for g in grads[5:]:
            step(g)
        return [p.asnumpy() for p in params]

    for mid_run, fresh in zip(continue_from_checkpoint(3), continue_from_checkpoint(0), strict=True):
        np.testing.assert_array_equal(mid_run, fresh)


@pytest.mark.versions
@pytest.mark.parametrize("implementation, mode", [(name, ("graph", "pynative")[index % 2])
                                                  for index, name in enumerate(IMPLEMENTATIONS)])
def test_nn_model_rollback_and_live_values(implementation, mode, tmp_path):
    """Model.train: a checkpoint loaded into the net and optimizer mid-run continues like a fresh Model
    that loaded it; beta1/beta2/eps and learning_rate written between epochs take effect (control: the
    run without the writes differs)."""
    from tests.common.suite_nn import _dataset, _model  # pylint: disable=import-outside-toplevel
    path = str(tmp_path / "model.ckpt")

    def train(load_mid_run, write):
        net, optimizer, model = _model(mode, implementation, learning_rate=0.05)
        model.train(1, _dataset(), dataset_sink_mode=False)
        if load_mid_run:
            model.train(1, _dataset(), dataset_sink_mode=False)  # the detour
        else:
            ms.save_checkpoint(optimizer, path)
        if load_mid_run:
            checkpoint = ms.load_checkpoint(path)
            ms.load_param_into_net(net, checkpoint)
            ms.load_param_into_net(optimizer, checkpoint)
        if write:
            optimizer.beta1, optimizer.beta2, optimizer.eps = 0.8, 0.99, 1e-3
            optimizer.learning_rate.set_data(Tensor(0.02, mstype.float32))
        model.train(2, _dataset(), dataset_sink_mode=False)
        return [p.asnumpy().copy() for p in net.trainable_params()], optimizer

    fresh, _ = train(False, True)
    rolled_back, optimizer = train(True, True)
    for got, expected in zip(rolled_back, fresh, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert (optimizer.beta1, optimizer.beta2, optimizer.eps) == (0.8, 0.99, 1e-3)
    without_writes, _ = train(False, False)
    assert max(np.abs(a - b).max() for a, b in zip(fresh, without_writes)) > 1e-4


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_live_values_match_the_reference(mode):
    """nn.RAdam through TrainOneStepCell: beta1/beta2/eps and learning_rate (set_data, ops.assign)
    written between steps, against the reference fed the same values; control: without them it differs."""
    arrays = make_arrays(62, SHAPES)
    params = make_params(arrays)
    optimizer = make_nn_radam(params, "hypermap", learning_rate=0.01)
    set_mode(mode)
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    reference = ReferenceRAdam([dict(params=arrays, lr=0.01)])
    control = ReferenceRAdam([dict(params=arrays, lr=0.01)])
    for t, grads in enumerate(grad_sequence(63, steps=STEPS, shapes=SHAPES), start=1):
        if t == 3:
            optimizer.beta1, optimizer.beta2 = 0.8, 0.99
            optimizer.learning_rate.set_data(Tensor(0.05, mstype.float32))
            reference.groups[0].update(betas=(0.8, 0.99), lr=0.05)
        if t == 6:
            optimizer.eps = 0.5
            ops.assign(optimizer.learning_rate, Tensor(0.03, mstype.float32))
            reference.groups[0].update(eps=0.5, lr=0.03)
        train(*(Tensor(g) for g in grads))
        reference.step(grads)
        control.step(grads)
        assert_matches(params, reference.params, f"nn, {mode}, step {t}")
    assert max(np.abs(a - b).max() for a, b in zip(reference.params, control.params) if a.size) > 1e-4
    with pytest.raises(ValueError, match=r"beta1: 1\.0"):
        optimizer.beta1 = 1.0


def test_a_value_of_another_shape_for_the_optimizers_state_is_refused():
    params = make_params(make_arrays(64, SHAPES))
    optimizer = make_radam(params, "hypermap", lr=0.01)
    make_stepper("pynative", optimizer)(grad_sequence(65, steps=1, shapes=SHAPES)[0])
    state = optimizer.exp_avg
    before = snapshot(optimizer)
    with pytest.raises(ValueError, match=r"'exp_avg.p1' is of shape \(7,\).*shape \(3,\).*nothing was written"):
        state[1].set_data(Tensor(np.zeros(3, np.float32)))
    assert_unchanged(before, snapshot(optimizer))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # control: a value of the Parameter's own shape is written in place
        pointer = state[0].data_ptr()
        state[0].set_data(Tensor(np.full((4, 3), 5.0, np.float32)))
    assert state[0].asnumpy()[0, 0] == 5.0 and state[0].data_ptr() == pointer


@pytest.mark.versions
@pytest.mark.parametrize("pattern", [pytest.param(p, marks=pytest.mark.extended if p == "pynative" else ())
                                     for p in PATTERNS])
def test_every_way_of_loading_keeps_the_storage_the_step_updates(pattern):
    """set_data, load_param_into_net, Cell.load_state_dict and item assignment on the network's
    Parameters mid-run: the next step starts from the loaded values. Calls from Python recompile our step
    for the new storage; a GRAPH_MODE Cell follows it; a jit step needs keep_loads_in_place."""
    arrays = make_arrays(66, SHAPES)
    params = make_params(arrays)
    if pattern == "jit":  # a jit function holds the storage it compiled with: the documented opt-in
        keep_loads_in_place(params)
    optimizer = make_radam(params, "hypermap", lr=0.0)  # lr 0: a step leaves the parameters as loaded
    step = live_stepper(pattern, optimizer, params)
    grads = grad_sequence(67, steps=1, shapes=SHAPES)[0]
    step(grads)
    loads = (
        lambda value: params[0].set_data(Tensor(value)),
        lambda value: ms.load_param_into_net(LinearLoss(params), {"p0": Parameter(Tensor(value), name="p0")}),
        lambda value: LinearLoss(params).load_state_dict({"p0": Tensor(value)}, strict=False),
        lambda value: params[0].__setitem__(slice(None), Tensor(value)),
    )
    for index, load in enumerate(loads):
        value = np.full((4, 3), float(index + 7), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # new storage, followed (the semantics suite)
            load(value)
        optimizer.param_groups[0]["lr"] = 1e-3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            step(grads)
        optimizer.param_groups[0]["lr"] = 0.0
        moved = params[0].asnumpy()
        assert np.abs(moved - value).max() < 2e-3 and not np.array_equal(moved, value), index


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("pattern", ("pynative", "jit"))
def test_empty_groups_step_nothing_and_keep_their_place(implementation, pattern):
    """An empty group (as MindSpore's scheduler tests build) is accepted at construction and by
    add_param_group, keeps its place in param_groups and lrs (schedulers drive it), steps nothing."""
    arrays = make_arrays(68, SHAPES)
    params = make_params(arrays)
    optimizer = make_radam([{"params": []}, {"params": params[:2]}, {"params": params[2:], "lr": 0.02}],
                           implementation, lr=0.01)
    optimizer.add_param_group({"params": [], "lr": 0.5})
    assert len(optimizer.param_groups) == len(optimizer.lrs) == 4 and optimizer.group_start_id == [0, 0, 2, 4, 4]
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    step = make_stepper(pattern, optimizer)
    reference = ReferenceRAdam([dict(params=arrays[:2], lr=0.01), dict(params=arrays[2:], lr=0.02)])
    for t, grads in enumerate(grad_sequence(69, steps=8, shapes=SHAPES), start=1):
        step(grads)
        reference.step(grads, lrs=[0.01 * 0.5 ** ((t - 1) // 2), 0.02 * 0.5 ** ((t - 1) // 2)])
        scheduler.step()
        assert_matches(params, reference.params, f"empty groups, step {t}")
    assert [int(s.asnumpy()) for s in optimizer.steps] == [0, 8, 8, 0]
    assert float(optimizer.lrs[3].asnumpy()) == pytest.approx(0.5 * 0.5 ** 4)


def test_lr_as_a_one_element_tensor_of_any_rank():
    for lr in (Tensor([0.03]), Tensor([[0.03]], mstype.float64), Tensor(np.array([3], np.int32))):
        optimizer = RAdam(make_params(make_arrays(70, SHAPES)), lr=lr)
        assert optimizer.lrs[0].shape == () and float(optimizer.lrs[0].asnumpy()) == pytest.approx(float(lr.asnumpy()))
    with pytest.raises(ValueError, match="one element"):  # control
        RAdam(make_params(make_arrays(70, SHAPES)), lr=Tensor([0.1, 0.2]))


@pytest.mark.parametrize("pattern", ("jit", "cell"))
def test_rollback_of_a_net_built_with_no_init_parameters(pattern, tmp_path):
    """A net built under mindspore.nn.utils.no_init_parameters (its Parameters get storage when the
    pretrained weights are loaded, after the optimizer was built) rolls back like any other."""
    from mindspore.nn.utils import no_init_parameters  # pylint: disable=import-outside-toplevel
    arrays = make_arrays(71, SHAPES[:3])
    init = {f"p{i}": Parameter(Tensor(a), name=f"p{i}") for i, a in enumerate(arrays)}
    grads = grad_sequence(72, steps=6, shapes=SHAPES[:3])
    path = str(tmp_path / "lazy.ckpt")

    def build():
        with no_init_parameters():
            params = [Parameter(initializer("normal", a.shape, mstype.float32), name=f"p{i}")
                      for i, a in enumerate(arrays)]
        if pattern == "jit":  # the documented opt-in for jit steps
            keep_loads_in_place(params)
        optimizer = RAdam(params, lr=0.02)
        ms.load_param_into_net(LinearLoss(params), init)
        return params, optimizer, live_stepper(pattern, optimizer, params)

    params, optimizer, step = build()
    for g in grads[:2]:
        step(g)
    ms.save_checkpoint(optimizer, path)
    for g in grads[4:]:
        step(g)
    checkpoint = ms.load_checkpoint(path)
    ms.load_param_into_net(LinearLoss(params), checkpoint)
    ms.load_param_into_net(optimizer, checkpoint)
    for g in grads[2:4]:
        step(g)
    fresh, resumed, fresh_step = build()
    ms.load_param_into_net(resumed, ms.load_checkpoint(path))
    for g in grads[2:4]:
        fresh_step(g)
    for a, b in zip(params, fresh):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


class _Normed(nn.Cell):
    """A Dense layer and a BatchNorm1d, whose moving statistics no optimizer owns."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(4, 3)
        self.norm = nn.BatchNorm1d(3)

    def construct(self, x):
        return self.norm(self.dense(x)).sum()


@pytest.mark.parametrize("kept", (True, False), ids=("kept", "control"))
def test_keep_loads_in_place_keeps_the_storage_of_batchnorm_statistics(kept, tmp_path):
    """keep_loads_in_place(net): a checkpoint loaded into a network after a compiled step writes the
    weights and BatchNorm statistics into their existing storage, the storage the compiled step
    updates; control: without it, MindSpore's load gives them new storage (our optimizers change nothing)."""
    from mindspore_radam import keep_loads_in_place  # pylint: disable=import-outside-toplevel
    set_mode("pynative")
    net = _Normed()
    optimizer = RAdam(net.trainable_params(), lr=0.05)
    if kept:
        assert keep_loads_in_place(net) is net
    grad_fn = ms.value_and_grad(net, None, optimizer.parameters)

    @ms.jit
    def step(x):
        _, grads = grad_fn(x)
        return optimizer(grads)

    net.set_train(True)
    step(Tensor(np.ones((8, 4), np.float32)))
    path = str(tmp_path / "bn.ckpt")
    ms.save_checkpoint(net, path)
    storage = {p.name: p.data_ptr() for p in net.get_parameters()}
    ms.load_param_into_net(net, ms.load_checkpoint(path))
    moved = {name for name, pointer in storage.items() if dict(net.parameters_and_names())[name].data_ptr() != pointer}
    statistics = {"norm.moving_mean", "norm.moving_variance"}
    weights = {p.name for p in net.trainable_params()}
    # Kept: nothing moves. Control: MindSpore's semantics, every loaded Parameter gets new storage.
    assert moved == (set() if kept else weights | statistics)
    with pytest.raises(TypeError, match="cell must be a mindspore.nn.Cell"):
        keep_loads_in_place(3)


def test_keep_loads_in_place_names_what_it_takes():
    """A string (a Cell's name, say) is refused naming what works, not as "cell[0] must be a Parameter"."""
    with pytest.raises(TypeError, match=r"cell must be a mindspore\.nn\.Cell, a scheduler or an iterable of "
                                        r"mindspore\.Parameter, but got str"):
        keep_loads_in_place("net")
