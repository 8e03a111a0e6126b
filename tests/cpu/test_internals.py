"""Canaries for mindspore_radam._internals: each checks, on the MindSpore installed, the behaviour one hook
relies on, and fails naming the hook when a release changes it. The version tier runs them on every
supported release (2.7-2.10)."""
import copy

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, jit, nn, ops

from mindspore_radam import _internals
from tests.common.harness import WaitCounter

pytestmark = pytest.mark.versions


def _param(value=1.0, name="w"):
    return Parameter(Tensor(np.full((2, 3), value, np.float32)), name=name)


def test_set_data_and_the_loader_write_through_the_instance_assign_value():
    param, calls = _param(), []

    def recording(self, value):
        calls.append(value)
        return _internals.class_assign_value(self, value)

    assert _internals.install_assign_value(param, recording)
    assert not _internals.install_assign_value(param, recording)  # once only
    param.set_data(Tensor(np.zeros((2, 3), np.float32)))
    cell = nn.Cell()
    cell.w = param
    ms.load_param_into_net(cell, {"w": Parameter(Tensor(np.ones((2, 3), np.float32)), name="w")})
    assert len(calls) == 2, ("_internals.install_assign_value: Parameter.set_data or load_param_into_net no longer "
                             "call the instance's assign_value; loads into the optimizer's state would miss "
                             "compiled graphs")
    np.testing.assert_array_equal(param.asnumpy(), np.ones((2, 3), np.float32))
    # control: without the hook, set_data gives new storage (MindSpore's semantics, which the user's keep)
    plain = _param()
    before = plain.data_ptr()
    plain.set_data(Tensor(np.zeros((2, 3), np.float32)))
    assert plain.data_ptr() != before


class _Stepper(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = _param(2.0)
        self.scale = 1.0

    @jit(backend="ms_backend")
    def step(self, x):
        return self.w * x * self.scale

    def construct(self, x):
        return self.w * x


def test_a_jit_method_called_from_python_leaves_parse_method_set():
    cell = _Stepper()
    cell.step(Tensor(np.ones((2, 3), np.float32)))
    assert getattr(cell, "__parse_method__", "construct") in ("step", "construct"), (
        "_internals.restore_parse_method: MindSpore no longer keeps the parsed method's name in "
        "Cell.__parse_method__")
    _internals.restore_parse_method(cell)
    assert cell.__parse_method__ == "construct"


def test_bumping_create_time_recompiles_a_cells_jit_methods():
    cell = _Stepper()
    x = Tensor(np.ones((2, 3), np.float32))
    assert float(cell.step(x).asnumpy()[0, 0]) == 2.0
    cell.scale = 3.0  # a Python constant of the compiled graph
    assert float(cell.step(x).asnumpy()[0, 0]) == 2.0, "control: the compiled method is reused"
    _internals.recompile(cell)
    assert float(cell.step(x).asnumpy()[0, 0]) == 6.0, (
        "_internals.recompile: a new Cell._create_time no longer makes MindSpore compile the Cell's jit "
        "methods again (structural switches would keep the old compiled step)")


def test_own_parameter_names_are_the_cells_and_load_state_dict_reports_dotted_ones():
    cell = nn.Cell()
    cell.state = ms.ParameterTuple([_param(name="exp_avg.w")])
    assert _internals.own_parameter_names(cell) == ("exp_avg.w",)
    result = cell.load_state_dict(cell.state_dict(), strict=False)
    assert "exp_avg.w" in result.unexpected_keys, (
        "_cell.keep_state_dict_loadable: MindSpore no longer reports dotted names as unexpected; the hook "
        "that takes them off may be dropped")


def test_map_helpers_cannot_be_deep_copied_but_can_be_shared():
    class Holder(nn.Cell):
        def __init__(self):
            super().__init__()
            self.hyper_map = ops.HyperMap()

    holder = Holder()
    with pytest.raises(Exception):
        copy.deepcopy(holder.hyper_map)  # control: the reason for the hook
    memo = {}
    _internals.share_stateless_helpers(holder, memo)
    assert memo[id(holder.hyper_map)] is holder.hyper_map


def test_the_loader_is_found_from_parameters_and_names():
    seen = []

    class Probe(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = _param()

        def parameters_and_names(self, name_prefix="", expand=True):
            seen.append(_internals.loader_arguments())
            return super().parameters_and_names(name_prefix, expand)

    checkpoint = {"w": Parameter(Tensor(np.ones((2, 3), np.float32)), name="w")}
    ms.load_param_into_net(Probe(), checkpoint, strict_load=True)
    found = [item for item in seen if item is not None]
    assert found and found[0][0] is checkpoint and found[0][1] is True, (
        "_internals.loader_arguments: load_param_into_net no longer calls parameters_and_names with "
        "parameter_dict/strict_load as locals; the loader's name fallback would go unrefused")
    seen.clear()
    list(Probe().parameters_and_names())
    assert seen == [None]  # control: outside the loader


def test_compiling_a_cell_graph_is_told_from_a_jit_function():
    from mindspore.ops import constexpr  # pylint: disable=import-outside-toplevel
    kinds = []

    @constexpr
    def note():
        kinds.append(_internals.compiling_a_cell_graph())
        return True

    class Net(nn.Cell):
        def construct(self, x):
            note()
            return x * 2

    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.GRAPH_MODE)
        Net()(Tensor(np.ones(3, np.float32)))
    finally:
        ms.set_context(mode=mode)

    @jit
    def function(x):
        note()
        return x * 3

    function(Tensor(np.ones(3, np.float32)))
    assert kinds == [True, False], (
        f"_internals.compiling_a_cell_graph: the compile frames' executor classes changed ({kinds}); a state "
        f"load into an optimizer a jit step compiled inline would not warn")


def test_compiling_with_dynamic_shapes_is_seen_from_inside_the_graph():
    """A constexpr inside a nested Cell (MindSpore may infer it on a worker thread) sees whether the graph
    compiles with dynamic-shape inputs: the third batch size of a jit(dynamic=1) function (the first two
    compile static), a set_inputs Cell with None dimensions; not a plain jit function."""
    from mindspore.ops import constexpr  # pylint: disable=import-outside-toplevel
    seen = []

    @constexpr
    def note():
        seen.append(_internals.compiling_with_dynamic_shapes())
        return True

    class Inner(nn.Cell):
        def construct(self, x):
            note()
            return x * 2

    inner = Inner()

    def body(x):
        return inner(x).sum()

    auto = jit(body, dynamic=1)
    for size in (2, 3, 4):
        auto(Tensor(np.ones((size, 3), np.float32)))
    plain = jit(body)
    plain(Tensor(np.ones((5, 3), np.float32)))
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.GRAPH_MODE)

        class Outer(nn.Cell):
            def construct(self, x):
                return inner(x)
        outer = Outer()
        outer.set_inputs(Tensor(shape=[None, 3], dtype=ms.float32))
        outer(Tensor(np.ones((6, 3), np.float32)))
    finally:
        ms.set_context(mode=mode)
    assert seen == [False, False, True, False, True], (
        f"_internals.compiling_with_dynamic_shapes: the compile frames' arguments changed ({seen}); the fused "
        f"kernel would run (and fail inside MindSpore) in dynamic-shape graphs")


def test_the_loading_dict_is_seen_from_a_parameter_being_written():
    """A Parameter's assign_value, run by load_param_into_net, sees the checkpoint being loaded; outside a load,
    nothing (a checkpoint of an optimizer over other Parameters would land its group entries elsewhere)."""
    seen = []
    param = _param()

    def writer(target, value):
        seen.append(_internals.loading_dict())
        _internals.class_assign_value(target, value)

    _internals.install_assign_value(param, writer)
    checkpoint = {"w": _param(2.0)}
    net = nn.Cell()
    net.w = param
    ms.load_param_into_net(net, checkpoint)
    param.set_data(Tensor(np.zeros((2, 3), np.float32)))
    assert len(seen) == 2 and seen[0] is checkpoint and seen[1] is None, (
        f"_internals.loading_dict: the loader's locals changed ({seen}); a checkpoint of an optimizer over other "
        f"Parameters would not be refused")


def test_requires_grad_reads_the_flag_without_waiting():
    param = _param()
    for value in (False, True, False):
        param.requires_grad = value
        counter = WaitCounter()
        with counter.counting():
            read = _internals.requires_grad(param)
        assert read is param.requires_grad is value, (
            "_internals.requires_grad: Parameter.requires_grad no longer reads param._param_info.requires_grad; "
            "the frozen check would read a stale flag")
        assert counter.waits == [], "_internals.requires_grad waits for MindSpore's pipeline"
    # control: the property itself waits (why the hook exists)
    counter = WaitCounter()
    with counter.counting():
        param.requires_grad  # pylint: disable=pointless-statement
    assert counter.waits, "control: Parameter.requires_grad no longer waits; the hook may go"


def test_storage_token_follows_set_data_without_waiting():
    param, other = _param(), _param(5.0, name="other")

    @jit
    def step(x):
        ops.assign(param, param * x)
        return param

    token = _internals.storage_token(param)
    step(Tensor(2.0, ms.float32)).asnumpy()
    ops.assign(param, Tensor(np.zeros((2, 3), np.float32)))
    again = _internals.storage_token(param)
    assert _internals.same_storage(token, again), (
        "_internals.storage_token: in-place writes (a compiled step, ops.assign) now change the token; every call "
        "from Python would recompile the optimizer's step")
    if _internals._storage_objects_follow():  # pylint: disable=protected-access
        assert again is token, "_internals.storage_token: TensorPy.untyped_storage no longer returns its held object"
        counter = WaitCounter()
        with counter.counting():
            _internals.storage_token(param)
        assert counter.waits == [], f"_internals.storage_token waits for MindSpore's pipeline ({counter.waits})"
    param.set_data(Tensor(np.ones((2, 3), np.float32)))
    moved = _internals.storage_token(param)
    assert not _internals.same_storage(token, moved), (
        "_internals.storage_token: set_data's new storage is not seen; calls from Python would update the old one")
    param.set_data(other)  # shares other's storage
    assert not _internals.same_storage(moved, _internals.storage_token(param))
    assert _internals.same_storage(_internals.storage_token(other), _internals.storage_token(param)), (
        "control: two Parameters sharing one storage compare as one")


def test_the_storage_probe_matches_what_set_data_does_to_a_parameter():
    """The probe (on plain Tensors) says whether storage objects follow set_data; a Parameter behaves alike."""
    from mindspore._c_expression import TensorPy  # pylint: disable=import-outside-toplevel
    if not hasattr(TensorPy, "untyped_storage"):
        pytest.skip("no TensorPy.untyped_storage in this release: the address is read")
    param = _param()
    before = TensorPy.untyped_storage(param)
    param.set_data(Tensor(np.zeros((2, 3), np.float32)))
    follows = TensorPy.untyped_storage(param) is not before
    assert follows == _internals._storage_objects_follow(), (  # pylint: disable=protected-access
        "_internals._storage_objects_follow: the probe on Tensors disagrees with a Parameter's set_data")


def test_is_view_tells_a_view_from_storage_of_its_own():
    table = Tensor(np.arange(40, dtype=np.float32).reshape(10, 4))
    for label, view in (("rows at an offset", table[3:7]), ("a transpose", table[:4].transpose(1, 0))):
        param = Parameter(Tensor(np.zeros(view.shape, np.float32)), name="viewed")
        assert not _internals.is_view(param), "control: a Parameter of its own storage"
        param.set_data(view)
        assert _internals.is_view(param), (
            f"_internals.is_view: a Parameter holding {label} is no longer seen (storage_offset/is_contiguous "
            f"changed); kernels would update a copy silently")
        param.set_data(view.copy())
        assert not _internals.is_view(param), "_internals.is_view: a copy of a view is taken for a view"
