"""Shared tests of the group engine behind both front doors (mindspore_radam.engine): the ``nn`` door with
the core's state options is the core, bit for bit; ``betas`` for the ``nn`` door; checkpoints written by
the release before the engine load and continue bit-identically."""
import os

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn
import mindspore.common.dtype as mstype

import mindspore_radam
from mindspore_radam import dispatch
from mindspore_radam.functional import H
from mindspore_radam.nn import RAdam as NNRAdam
from tests.common.harness import IMPLEMENTATIONS
from tests.common.configs import make_arrays
from tests.common.suite_nn import LinearLoss, make_cell_stepper

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
SHAPES = ((4, 3), (7,), (), (2, 3, 2))
LR = 2.0 ** -5  # exact in float32: the nn door keeps its learning rate in float32, the core in float64


def _half_params(arrays, dtype):
    return [Parameter(Tensor(a).astype(dtype), name=f"p{i}") for i, a in enumerate(arrays)]


def _run(front, dtype, state_dtype, kahan, mode, steps=10):
    params = _half_params(make_arrays(5, SHAPES), dtype)
    common = dict(weight_decay=0.1, state_dtype=state_dtype, kahan_summation=kahan)
    if front == "nn":
        optimizer = NNRAdam(params, learning_rate=LR, beta1=0.9, beta2=0.99, **common)
    else:
        optimizer = mindspore_radam.RAdam(params, lr=LR, betas=(0.9, 0.99), **common)
    step = make_cell_stepper(mode, optimizer, params)
    rng = np.random.default_rng(9)
    for _ in range(steps):
        step([rng.standard_normal(s).astype(np.float32) for s in SHAPES])
    state = [p.astype(mstype.float32).asnumpy() for p in optimizer.exp_avg_sq]
    return [p.astype(mstype.float32).asnumpy() for p in params], state, optimizer


DTYPES = {"float16": mstype.float16, "bfloat16": mstype.bfloat16, "float32": mstype.float32}
STATE_CASES = ((None, False), ("param", False), (None, True), ("param", True))


def _state_cases():
    """Every dtype with every state case, the mode alternating; each dtype without Kahan on one state dtype
    in the default tier, the rest in the extended tier."""
    cases = []
    for i, dtype in enumerate(DTYPES):
        for j, (state_dtype, kahan) in enumerate(STATE_CASES):
            default_tier = (j + i) % 2 == 0 and not kahan  # Kahan's (6-7 s each) extended
            cases.append(pytest.param(dtype, state_dtype, kahan, ("pynative", "graph")[j // 2],
                                      id=f"{dtype}-{state_dtype or 'default'}-{'kahan' if kahan else 'plain'}",
                                      marks=() if default_tier else pytest.mark.extended))
    return cases


@pytest.mark.parametrize("dtype, state_dtype, kahan, mode", _state_cases())
def test_nn_with_state_options_is_bit_identical_to_the_core(dtype, state_dtype, kahan, mode):
    nn_params, nn_state, nn_optimizer = _run("nn", DTYPES[dtype], state_dtype, kahan, mode)
    core_params, core_state, core_optimizer = _run("core", DTYPES[dtype], state_dtype, kahan, mode)
    assert [p.dtype for p in nn_optimizer.exp_avg] == [p.dtype for p in core_optimizer.exp_avg]
    assert len(nn_optimizer.kahan_comp) == len(core_optimizer.kahan_comp) == (len(SHAPES) if kahan else 0)
    assert nn_optimizer.implementations == core_optimizer.implementations
    for ours, core in zip(nn_params + nn_state, core_params + core_state):
        np.testing.assert_array_equal(ours, core)


def test_bit_identity_of_the_doors_can_fail():
    """Negative control: Kahan summation on one door only is told apart on bfloat16."""
    nn_params, _, _ = _run("nn", mstype.bfloat16, None, True, "pynative")
    core_params, _, _ = _run("core", mstype.bfloat16, None, False, "pynative")
    assert any(not np.array_equal(a, b) for a, b in zip(nn_params, core_params))


def test_state_dtype_param_keeps_half_precision_state_in_the_nn_door():
    _, _, optimizer = _run("nn", mstype.bfloat16, "param", False, "pynative", steps=1)
    assert {p.dtype for p in optimizer.exp_avg + optimizer.exp_avg_sq} == {mstype.bfloat16}
    _, _, optimizer = _run("nn", mstype.bfloat16, None, False, "pynative", steps=1)
    assert {p.dtype for p in optimizer.exp_avg + optimizer.exp_avg_sq} == {mstype.float32}


def _nn_params_after(mode, steps=8, **kwargs):
    arrays = make_arrays(6, SHAPES)
    params = [Parameter(Tensor(a), name=f"p{i}") for i, a in enumerate(arrays)]
    step = make_cell_stepper(mode, NNRAdam(params, learning_rate=0.05, **kwargs), params)
    rng = np.random.default_rng(2)
    for _ in range(steps):
        step([rng.standard_normal(s).astype(np.float32) for s in SHAPES])
    return [p.asnumpy() for p in params]


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_nn_betas_is_beta1_and_beta2(mode):
    with_betas = _nn_params_after(mode, betas=(0.8, 0.95))
    for ours, want in zip(with_betas, _nn_params_after(mode, beta1=0.8, beta2=0.95)):
        np.testing.assert_array_equal(ours, want)
    # control: another beta2 is told apart
    assert any(not np.array_equal(a, b) for a, b in zip(with_betas, _nn_params_after(mode, beta1=0.8, beta2=0.99)))


@pytest.mark.parametrize("kwargs, regex", [
    (dict(betas=(0.9, 0.99), beta1=0.9), r"either betas or beta1/beta2, not both.*beta1"),
    (dict(betas=(0.9, 0.99), beta2=0.99), r"not both.*beta2"),
    (dict(betas=(0.9, 1.0)), r"betas\[1\]=1\.0"),
    (dict(betas=(0.9,)), r"betas must be a pair"),
])
def test_nn_betas_bad_input_names_the_argument(kwargs, regex):
    params = [Parameter(Tensor(np.ones(3, np.float32)), name="w")]
    with pytest.raises(ValueError, match=regex):
        NNRAdam(params, **kwargs)


# --- checkpoints written by the release before the engine (tests/data/make_compat_checkpoints.py) ---

def _load_compat_module():
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.spec_from_file_location("make_compat_checkpoints",
                                                  os.path.join(DATA, "make_compat_checkpoints.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resume(door, checkpoint):
    compat = _load_compat_module()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    params = compat.make_params()
    optimizer = compat.make_optimizer(door, params)
    not_loaded = ms.load_param_into_net(optimizer, checkpoint)
    compat.run(door, optimizer, params, compat.AFTER, compat.BEFORE + 1)
    return params, not_loaded


@pytest.mark.versions
@pytest.mark.parametrize("door", ("core", "nn", "nn_interleaved"))
def test_a_checkpoint_of_the_release_before_loads_and_continues_bit_identically(door):
    checkpoint = ms.load_checkpoint(os.path.join(DATA, f"compat_{door}.ckpt"))
    params, not_loaded = _resume(door, checkpoint)
    assert not_loaded == (["group_layout"], [])  # recorded since; without it the groups load by number, as written
    want = np.load(os.path.join(DATA, f"compat_{door}_continued.npz"))
    assert sorted(want.files) == sorted(p.name for p in params)
    for param in params:
        np.testing.assert_array_equal(param.asnumpy(), want[param.name], err_msg=f"{door}: {param.name}")


@pytest.mark.parametrize("door", ("core", "nn", "nn_interleaved"))
def test_the_release_checkpoint_comparison_can_fail(door):
    """Negative control: the same checkpoint with its step counts left out continues elsewhere."""
    checkpoint = {key: value for key, value in ms.load_checkpoint(os.path.join(DATA, f"compat_{door}.ckpt")).items()
                  if not key.startswith("step.")}
    params, _ = _resume(door, checkpoint)
    want = np.load(os.path.join(DATA, f"compat_{door}_continued.npz"))
    assert any(not np.array_equal(p.asnumpy(), want[p.name]) for p in params)


def test_nn_setter_after_a_record_load_keeps_each_runs_structure():
    """A record loaded into one run switches that run only; a later eps/beta setter rewrites every run's
    values but not the other runs' structure (control: the loaded run keeps maximize)."""
    from mindspore_radam.functional import H  # pylint: disable=import-outside-toplevel
    params = [Parameter(Tensor(np.ones(3, np.float32)), name=f"w{i}") for i in range(2)]
    optimizer = NNRAdam([dict(params=params[:1], lr=0.1), dict(params=params[1:], lr=0.2)], fused=False)
    record = optimizer.hyperparameters[0].asnumpy().copy()
    record[H.maximize] = 1.0
    optimizer.hyperparameters[0].set_data(Tensor(record))
    optimizer.eps = 1e-7
    assert [options[H.maximize] for options in optimizer._options] == [True, False]  # pylint: disable=protected-access
    assert optimizer.hyperparameters[1].asnumpy()[H.maximize] == 0.0
    assert optimizer.hyperparameters[0].asnumpy()[H.maximize] == 1.0


@pytest.mark.parametrize("name", ("beta1", "beta2"))
def test_nn_beta_setters_refuse_none(name):
    optimizer = NNRAdam([Parameter(Tensor(np.ones(3, np.float32)), name="w")])
    with pytest.raises(TypeError, match=name):
        setattr(optimizer, name, None)
    assert (optimizer.beta1, optimizer.beta2) == (0.9, 0.999)


@pytest.mark.parametrize("door", ("core", "nn"))
def test_a_refused_record_in_a_checkpoint_writes_no_state(door):
    """MindSpore's loader writes in the optimizer's Parameter order: the records come first, so a checkpoint
    whose record is refused (beta1 = 2.0) has changed no moment when it raises."""
    from mindspore_radam.functional import H  # pylint: disable=import-outside-toplevel
    params = [Parameter(Tensor(np.ones(3, np.float32)), name="w")]
    optimizer = mindspore_radam.RAdam(params) if door == "core" else NNRAdam(params)
    checkpoint = {name: Parameter(Tensor(p.asnumpy()), name=name) for name, p in optimizer.parameters_dict().items()}
    checkpoint["exp_avg.w"] = Parameter(Tensor(np.full(3, 5.0, np.float32)), name="exp_avg.w")
    record = checkpoint["hyperparameters.group_0"].asnumpy().copy()
    record[H.beta1] = 2.0
    checkpoint["hyperparameters.group_0"] = Parameter(Tensor(record), name="hyperparameters.group_0")
    with pytest.raises(ValueError, match="beta"):
        ms.load_param_into_net(optimizer, checkpoint)
    np.testing.assert_array_equal(optimizer.exp_avg[0].asnumpy(), np.zeros(3, np.float32))
    # control: the same checkpoint with a valid record loads the moment
    checkpoint["hyperparameters.group_0"] = Parameter(Tensor(optimizer.hyperparameters[0].asnumpy()),
                                                      name="hyperparameters.group_0")
    ms.load_param_into_net(optimizer, checkpoint)
    np.testing.assert_array_equal(optimizer.exp_avg[0].asnumpy(), np.full(3, 5.0, np.float32))


# --- groups of one setting, interleaved (mindcv's decay/no-decay grouping) ---

def _interleaved(implementation, lr=0.015625):
    """Six Parameters whose groups alternate weight decay 0.1 and 0: six runs, two settings; an lr exact in
    float32, so that the nn door's float32 learning rate equals the core's float64 one."""
    params = _interleaved_params()
    optimizer = NNRAdam([dict(params=[p], weight_decay=0.1 if i % 2 == 0 else 0.0) for i, p in enumerate(params)],
                        learning_rate=lr, **dispatch.IMPLEMENTATIONS[implementation].demand)
    return params, optimizer


def _interleaved_params():
    rng = np.random.default_rng(11)
    return [Parameter(Tensor(rng.standard_normal(shape).astype(np.float32)), name=f"q{index}")
            for index, shape in enumerate([(3, 4), (4,), (5, 2), (2,), (6,), (3,)])]


def _interleaved_grads(params, steps=8):
    rng = np.random.default_rng(12)
    return [tuple(Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params) for _ in range(steps)]


@pytest.mark.parametrize("implementation, mode", [(name, ("graph", "pynative")[index % 2])
                                                  for index, name in enumerate(IMPLEMENTATIONS)])
def test_interleaved_groups_of_one_setting_take_one_call(implementation, mode):
    """nn.RAdam over groups whose settings interleave steps each setting with one implementation call (the
    fused kernel runs twice a step, not six times), bit-identical to the core door with one group per
    setting; every run's step count advances."""
    from mindspore_radam import _fused  # pylint: disable=import-outside-toplevel
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    params, optimizer = _interleaved(implementation)
    train = nn.TrainOneStepCell(LinearLoss(params), optimizer)
    grads = _interleaved_grads(params)
    calls = _fused.variant_calls() if implementation == "fused" else None
    for step_grads in grads:
        train(*step_grads)
    if calls is not None:
        assert sum(_fused.variant_calls().values()) - sum(calls.values()) == 2 * len(grads)
    assert [int(s.asnumpy()) for s in optimizer.steps] == [len(grads)] * 6
    anchor = _interleaved_params()
    core = mindspore_radam.RAdam([dict(params=anchor[0::2], weight_decay=0.1), dict(params=anchor[1::2])], lr=0.015625,
                                 **dispatch.IMPLEMENTATIONS[implementation].demand)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    for step_grads in grads:
        core(step_grads[0::2] + step_grads[1::2])
    for got, want in zip(params, anchor, strict=True):
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy(), err_msg=got.name)


def test_a_record_of_a_group_stepped_with_another_follows_it():
    """A record loaded into the lead group of a setting is copied into the other groups of the setting; one
    loaded into another group must equal the lead's (it can't take effect alone), else ValueError before
    anything changes."""
    params, optimizer = _interleaved("hypermap")
    assert optimizer.hyperparameters[0].name == "hyperparameters.group_0"
    lead = optimizer.hyperparameters[0].asnumpy().copy()
    changed = lead.copy()
    changed[H.eps] = 1e-3
    optimizer.hyperparameters[0].set_data(Tensor(changed))
    for index in (0, 2, 4):
        np.testing.assert_array_equal(optimizer.hyperparameters[index].asnumpy(), changed)
    np.testing.assert_array_equal(optimizer.hyperparameters[1].asnumpy()[H.eps], 1e-8)  # the other setting
    other = changed.copy()
    other[H.eps] = 1e-2
    with pytest.raises(ValueError, match=r"'hyperparameters.group_2': this group is stepped together with "
                                         r"'hyperparameters.group_0'"):
        optimizer.hyperparameters[2].set_data(Tensor(other))
    np.testing.assert_array_equal(optimizer.hyperparameters[2].asnumpy(), changed)
    optimizer.hyperparameters[2].set_data(Tensor(changed))  # control: the lead's values pass


def test_a_checkpoint_of_interleaved_groups_resumes_bit_identically(tmp_path):
    """Saved after 4 steps, loaded into a fresh optimizer, 4 more steps: the uninterrupted run's bits."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    params, optimizer = _interleaved("hypermap")
    grads = _interleaved_grads(params)
    for step_grads in grads[:4]:
        optimizer(step_grads)
    path = str(tmp_path / "interleaved.ckpt")
    ms.save_checkpoint(optimizer, path)
    for step_grads in grads[4:]:
        optimizer(step_grads)
    fresh, resumed = _interleaved("hypermap")
    assert ms.load_param_into_net(resumed, ms.load_checkpoint(path)) == ([], [])
    for step_grads in grads[4:]:
        resumed(step_grads)
    for got, want in zip(fresh, params, strict=True):
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy(), err_msg=got.name)
