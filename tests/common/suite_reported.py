"""Shared tests of situations from public bug reports (torch.optim, transformers, avalanche, mindcv and
others) that used to fail silently: each either works as the anchor (torch's semantics, or MindSpore's
built-in RAdam in the same code) or raises a clear error before anything changes, naming what works.
Every test has a control."""
import copy

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from mindspore_radam import RAdam
from tests.common.harness import IMPLEMENTATIONS, PORTABLE, set_mode


def _net():
    ms.set_seed(0)
    return nn.SequentialCell(nn.Dense(4, 3), nn.Dense(3, 2))


def _grads(params, value=0.1):
    return tuple(Tensor(np.full(p.shape, value, np.float32)) for p in params)


# --- edits of a group's params list (avalanche's update_optimizer appends and removes in place) ---

EDITS = {
    "append": lambda params, extra: params.append(extra),
    "extend": lambda params, extra: params.extend([extra]),
    "insert": lambda params, extra: params.insert(0, extra),
    "remove": lambda params, extra: params.remove(params[0]),
    "pop": lambda params, extra: params.pop(),
    "del": lambda params, extra: params.__delitem__(0),
    "setitem": lambda params, extra: params.__setitem__(0, extra),
    "iadd": lambda params, extra: params.__iadd__([extra]),
    "clear": lambda params, extra: params.clear(),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_in_place_edit_of_a_groups_params_raises_naming_add_param_group(edit):
    """torch steps the listed Parameters; ours can't follow an edit (state and compiled step are built
    for the Parameters), so the edit raises, the list and the training unchanged."""
    set_mode("pynative")
    net = _net()
    params = net.trainable_params()
    optimizer = RAdam(params[:2], lr=0.1)
    extra = params[2]
    listed = optimizer.param_groups[0]["params"]
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\] can't be edited in place.*add_param_group"):
        EDITS[edit](listed, extra)
    assert list(optimizer.param_groups[0]["params"]) == params[:2]
    optimizer(_grads(params[:2]))
    # control: what works, add_param_group, steps the new Parameter
    before = extra.asnumpy().copy()
    optimizer.add_param_group({"params": [extra]})
    optimizer(_grads(params[:3]))
    assert not np.array_equal(extra.asnumpy(), before)


def test_group_params_read_copy_and_pickle_as_lists():
    """Control: reading the list and copying it (or the group) work as with plain lists."""
    net = _net()
    params = net.trainable_params()
    optimizer = RAdam(params, lr=0.1)
    listed = optimizer.param_groups[0]["params"]
    assert isinstance(listed, list) and len(listed) == 4 and listed[0] is params[0]
    assert [p.name for p in listed] == [p.name for p in params]
    for duplicate in (listed.copy(), copy.copy(listed), list(listed), listed + []):
        duplicate.append(params[0])  # copies are the caller's own
        assert type(duplicate) is list  # pylint: disable=unidiomatic-typecheck
    assert type(copy.deepcopy(optimizer.param_groups[0])["params"]) is list  # pylint: disable=unidiomatic-typecheck


# --- Parameters renamed after the optimizer was built (a wrapper Cell prefixes them, as frameworks do) ---

class _Wrapper(nn.Cell):
    """A framework's wrapper: assigning the network renames its Parameters (``net.0.weight``)."""

    def __init__(self, net):
        super().__init__()
        self.net = net


def _renamed_run(front, steps, checkpoint=None, tmp_path=None):
    """Builds net and optimizer, then wraps the net (renaming its Parameters); loads `checkpoint` if given,
    trains `steps` steps from Python and returns the weights (and the checkpoint path, when `tmp_path`)."""
    set_mode("pynative")
    net = _net()
    params = net.trainable_params()
    optimizer = RAdam(params, lr=0.1) if front == "ours" else ms.experimental.optim.RAdam(params, lr=0.1)
    _Wrapper(net)
    assert params[0].name.startswith("net."), "control: the wrapper renamed the Parameters"
    if checkpoint is not None:
        ms.load_checkpoint(checkpoint, net=optimizer)
    grad_fn = ms.value_and_grad(lambda x: (net(x) ** 2).sum(), None, optimizer.parameters)
    x = Tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    for _ in range(steps):
        optimizer(grad_fn(x)[1])
    path = None
    if tmp_path is not None:
        path = str(tmp_path / f"{front}.ckpt")
        ms.save_checkpoint(optimizer, path)
    return [p.asnumpy().copy() for p in params], path


@pytest.mark.parametrize("front", ("ours", "builtin"))
def test_a_run_whose_parameters_were_renamed_resumes_its_own_checkpoint(front, tmp_path):
    """The same code resumes its own checkpoint bit-identically, as the built-in (and nn.Adam) do."""
    whole, _ = _renamed_run(front, 5)
    _, path = _renamed_run(front, 3, tmp_path=tmp_path)
    resumed, _ = _renamed_run(front, 2, checkpoint=path)
    for a, b in zip(resumed, whole):
        np.testing.assert_array_equal(a, b)
    # control: two steps from a fresh start are not the continuation
    fresh, _ = _renamed_run(front, 2)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh, whole))


# --- gradients handed over as a list (a jit train step that builds one, as torch users write) ---

def _list_or_tuple_run(container, mode, implementation, door):
    """Three steps with the gradients passed as `container` (list or tuple) in `mode`; the weights after."""
    set_mode("graph" if mode == "graph" else "pynative")
    net = _net()
    params = net.trainable_params()
    fused = implementation != PORTABLE
    if door == "nn":
        from mindspore_radam.nn import RAdam as NNRAdam  # pylint: disable=import-outside-toplevel
        optimizer = NNRAdam(params, learning_rate=0.1, fused=fused)
    else:
        optimizer = RAdam(params, lr=0.1, fused=fused)
    grads = _grads(params)

    def step(*gradients):
        return optimizer(container(gradients))
    if mode == "jit":
        step = ms.jit(step)
    for _ in range(3):
        step(*grads)
    steps = optimizer.global_step if door == "nn" else optimizer.steps[0]
    return [p.asnumpy().copy() for p in params], int(steps.asnumpy().reshape(-1)[0])


LIST_CASES = [pytest.param(mode, IMPLEMENTATIONS[(index + offset) % len(IMPLEMENTATIONS)], door,
                           id=f"{mode}-{IMPLEMENTATIONS[(index + offset) % len(IMPLEMENTATIONS)]}-{door}")
              for index, mode in enumerate(("pynative", "jit", "graph")) for offset, door in enumerate(("core", "nn"))]


@pytest.mark.parametrize("mode, implementation, door", LIST_CASES)
def test_gradients_as_a_list_step_as_a_tuple_does(mode, implementation, door):
    """torch takes a list; ours steps it bit-identically to the tuple, in every pattern (a jit step used to
    leave the parameters and the step count where they were); control: the parameters moved."""
    from_list, count = _list_or_tuple_run(list, mode, implementation, door)
    from_tuple, tuple_count = _list_or_tuple_run(tuple, mode, implementation, door)
    assert count == tuple_count == 3
    for a, b in zip(from_list, from_tuple):
        np.testing.assert_array_equal(a, b)
    start = [p.asnumpy() for p in _net().trainable_params()]
    assert all(not np.array_equal(a, b) for a, b in zip(from_list, start))


@pytest.mark.parametrize("mode", ("pynative", "jit"))
def test_gradients_neither_tuple_nor_list_raise_a_type_error(mode):
    """Anything else (a dict, a single Tensor) raises TypeError naming what works, in Python and while a jit
    step compiles; nothing moves. Control: the same call with a tuple steps."""
    set_mode("pynative")
    net = _net()
    params = net.trainable_params()
    optimizer = RAdam(params, lr=0.1)
    grads = _grads(params)
    before = [p.asnumpy().copy() for p in params]

    def call(value):
        return optimizer(value)
    call_in_mode = ms.jit(call) if mode == "jit" else call
    for bad in ({i: g for i, g in enumerate(grads)}, grads[0]):
        with pytest.raises(TypeError, match="gradients must be a tuple or list of Tensors"):
            call_in_mode(bad)

    def built_inside(g0, g1, g2, g3):  # a dict made in the graph (its raise must be a compile-time constant)
        return optimizer({"a": g0, "b": g1, "c": g2, "d": g3})
    with pytest.raises(TypeError, match="gradients must be a tuple or list of Tensors.*but got a dict"):
        (ms.jit(built_inside) if mode == "jit" else built_inside)(*grads)
    from mindspore_radam.nn import RAdam as NNRAdam  # pylint: disable=import-outside-toplevel
    with pytest.raises(TypeError, match="gradients must be a tuple or list of Tensors.*but got a dict"):
        NNRAdam(params, learning_rate=0.1)(dict(enumerate(grads)))
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.asnumpy(), b)
    call(grads)
    assert not np.array_equal(params[0].asnumpy(), before[0])


# --- Parameters holding a view (set_data of a slice or a transpose) ---

def _view(kind):
    table = Tensor(np.arange(40, dtype=np.float32).reshape(10, 4) / 40)
    return table[3:7] if kind == "rows" else table[:4].transpose(1, 0)


VIEW_CASES = [pytest.param(when, implementation, ("rows", "transpose")[(index + offset) % 2],
                           id=f"{when}-{implementation}-{('rows', 'transpose')[(index + offset) % 2]}")
              for index, when in enumerate(("construction", "between-calls", "jit-compile"))
              for offset, implementation in enumerate(IMPLEMENTATIONS)]


@pytest.mark.parametrize("when, implementation, kind", VIEW_CASES)
def test_a_parameter_holding_a_view_is_refused_naming_what_works(when, implementation, kind):
    """torch updates the viewed tensor; MindSpore's kernels can't write through a view (the fused path used to
    update a copy while the step count advanced), so every implementation refuses it, before anything
    changes; control: the same values in storage of their own train."""
    set_mode("pynative")
    view = _view(kind)
    weight = Parameter(Tensor(np.zeros(view.shape, np.float32)), name="viewed")
    other = Parameter(Tensor(np.ones((3,), np.float32)), name="other")
    fused = implementation != PORTABLE
    grads = _grads([weight, other])
    if when == "construction":
        weight.set_data(view)
        with pytest.raises(ValueError, match=r"'viewed'\] hold a view of another tensor.*set_data\(view.copy\(\)\)"):
            RAdam([weight, other], lr=0.1, fused=fused)
    else:
        optimizer = RAdam([weight, other], lr=0.1, fused=fused)

        def call(g0, g1):
            return optimizer((g0, g1))
        if when == "jit-compile":
            call = ms.jit(call)
        if when == "between-calls":
            call(*grads)
        weight.set_data(view)
        before = (other.asnumpy().copy(), optimizer.steps[0].asnumpy().copy())
        with pytest.raises(ValueError, match="hold a view of another tensor"):
            call(*grads)
        np.testing.assert_array_equal(other.asnumpy(), before[0])
        np.testing.assert_array_equal(optimizer.steps[0].asnumpy(), before[1])
    weight.set_data(view.copy())  # control: its own storage
    optimizer = RAdam([weight, other], lr=0.1, fused=fused)
    start = weight.asnumpy().copy()
    optimizer(grads)
    assert not np.array_equal(weight.asnumpy(), start)


@pytest.mark.parametrize("door", ("core", "nn"))
def test_a_checkpoint_that_does_not_fit_writes_nothing_not_even_the_weights(door, tmp_path):
    """An optimizer's checkpoint holds the network's weights too; when its state is of other Parameters, the
    load raises before MindSpore's loader writes anything (it wrote the weights first). Control: a checkpoint
    that fits loads the weights."""
    from mindspore_radam.nn import RAdam as NNRAdam  # pylint: disable=import-outside-toplevel
    set_mode("pynative")
    build = (lambda p: RAdam(p, lr=0.1)) if door == "core" else (lambda p: NNRAdam(p, learning_rate=0.1))
    net = _net()
    params = net.trainable_params()
    saved = build(params)
    saved(_grads(params))
    path = str(tmp_path / "whole.ckpt")
    ms.save_checkpoint(saved, path)
    fresh = _net()
    for p in fresh.trainable_params():
        p.set_data(Tensor(np.full(p.shape, 3.0, np.float32)))
    partial = build(fresh.trainable_params()[:2])  # over other Parameters (a frozen layer's gone)
    with pytest.raises(ValueError, match="held other Parameters.*nothing was loaded"):
        ms.load_checkpoint(path, net=partial)
    assert all((p.asnumpy() == 3.0).all() for p in fresh.trainable_params())
    fitting = build(fresh.trainable_params())
    ms.load_checkpoint(path, net=fitting)
    np.testing.assert_array_equal(fresh.trainable_params()[0].asnumpy(), params[0].asnumpy())


# --- a resume with the groups laid out otherwise (torch refuses; a load must never swap groups' values) ---

def _grouped(door, params, order, split=False):
    """An optimizer over `params` in two groups (lr 0.1 with weight decay, lr 0.01), listed in `order`; `split`:
    the first group split in two (a decay/no-decay split)."""
    from mindspore_radam.nn import RAdam as NNRAdam  # pylint: disable=import-outside-toplevel
    first = [{"params": params[:1], "weight_decay": 0.1}, {"params": params[1:2], "weight_decay": 0.1}] if split \
        else [{"params": params[:2], "weight_decay": 0.1}]
    groups = {"a": first, "b": [{"params": params[2:]}]}
    listed = [dict(group, lr=0.1 if key == "a" else 0.01) for key in order for group in groups[key]]
    if door == "nn":
        return NNRAdam(listed, learning_rate=0.01)
    return RAdam(listed, lr=0.01)


def _train(optimizer, params, steps):
    grad_fn = ms.value_and_grad(lambda: sum((p * p).sum() for p in params), None, optimizer.parameters)
    for _ in range(steps):
        optimizer(grad_fn()[1])


@pytest.mark.parametrize("door", ("core", "nn"))
def test_a_resume_with_the_groups_in_another_order_continues_per_parameter(door):
    """Each group takes the step count, record and learning rate of the checkpoint's group that held its
    Parameters (core door), bit-identical to the uninterrupted run; the nn door, whose learning rates are
    numbered by nn.Optimizer's groups, refuses. Control: without the layout record (an older release's
    checkpoint) the entries load by number, and the continuation differs."""
    set_mode("pynative")
    net = _net()
    params = net.trainable_params()
    original = _grouped(door, params, "ab")
    _train(original, params, 3)
    checkpoint = {name: Parameter(p.value().copy(), name=name) for name, p in original.parameters_dict().items()}
    _train(original, params, 2)
    want = [p.asnumpy().copy() for p in params]

    def resumed(entries):
        fresh = _net()
        fresh_params = fresh.trainable_params()
        optimizer = _grouped(door, fresh_params, "ba")
        ms.load_param_into_net(optimizer, dict(entries))
        _train(optimizer, fresh_params, 2)
        return [p.asnumpy() for p in fresh_params]
    if door == "nn":
        with pytest.raises(ValueError, match="another layout.*another order"):
            resumed(checkpoint)
        return
    for got, expected in zip(resumed(checkpoint), want):
        np.testing.assert_array_equal(got, expected)
    legacy = {k: v for k, v in checkpoint.items() if k != "group_layout"}
    assert not all(np.array_equal(a, b) for a, b in zip(resumed(legacy), want))


@pytest.mark.parametrize("door", ("core", "nn"))
def test_a_resume_with_another_number_of_groups_is_refused_naming_what_works(door):
    """A decay/no-decay split of one group over the same Parameters: torch refuses; ours too, before anything
    changes, naming the per-Parameter load (which then works). Control: the same layout loads."""
    set_mode("pynative")
    net = _net()
    params = net.trainable_params()
    original = _grouped(door, params, "ab")
    _train(original, params, 3)
    checkpoint = original.parameters_dict()
    split = _grouped(door, params, "ab", split=True)
    before = [p.asnumpy().copy() for p in split.get_parameters()]
    with pytest.raises(ValueError, match="another layout.*group 0 here shares its group.*load the state of each"
                                         "|another layout.*nothing was loaded. Load the state of each Parameter"):
        ms.load_param_into_net(split, checkpoint)
    for p, b in zip(split.get_parameters(), before):
        np.testing.assert_array_equal(p.asnumpy(), b)
    state = {k: v for k, v in checkpoint.items() if k.startswith(("exp_avg.", "exp_avg_sq.", "global_step"))}
    ms.load_param_into_net(split, state, strict_load=True)
    np.testing.assert_array_equal(split.exp_avg[0].asnumpy(), original.exp_avg[0].asnumpy())
    same = _grouped(door, params, "ab")
    ms.load_param_into_net(same, checkpoint)
    np.testing.assert_array_equal(same.exp_avg[0].asnumpy(), original.exp_avg[0].asnumpy())
