"""Everything this package does against MindSpore's internals, in one place (MindSpore 2.7-2.10).

Each hook below names what it relies on; ``tests/cpu/test_internals.py`` holds a canary per hook that
fails with a clear message when a MindSpore release changes it (the version tier runs them on every
supported release). Nothing here touches a Parameter of the user's network: the optimizer's own
Parameters get :func:`install_assign_value`, and a network's only through the explicit
``mindspore_radam.keep_loads_in_place``; ``del param.assign_value`` undoes it on a Parameter.
"""
import inspect
import sys
import time
import types

import numpy as np
from mindspore import Tensor, ops
from mindspore._c_expression import TensorPy


def install_assign_value(param, method):
    """Makes `method(param, value)` the `param` instance's ``assign_value``, through which ``set_data``,
    ``load_param_into_net``, ``load_checkpoint(net=)`` and ``Cell.load_state_dict`` write a whole value.
    Relies on: ``Parameter.set_data`` calling ``self.assign_value`` (an instance attribute shadows the
    class's). Returns False, installing nothing, where one is installed already."""
    if "assign_value" in vars(param):
        return False
    param.assign_value = types.MethodType(method, param)
    return True


def requires_grad(param):
    """``param.requires_grad``, read without waiting for MindSpore's PyNative pipeline. The property goes
    through ``Parameter.param_info``, which first calls ``TensorPy.wait_pipeline`` and so waits for every
    queued op that uses `param` (a jitted backward pass, say); calls from Python read it for every
    Parameter, every step. Relies on: the property returning ``param._param_info.requires_grad``, and its
    setter writing there (after its own wait), so nothing queued can change the value."""
    return param._param_info.requires_grad  # pylint: disable=protected-access


_UNTYPED_STORAGE = getattr(TensorPy, "untyped_storage", None)
_STORAGE_OBJECTS_FOLLOW = []  # [bool], once probed


def _storage_objects_follow():
    """Whether ``TensorPy.untyped_storage`` gives a new object once a Tensor has new storage (2.10), rather than
    the one it made first, still holding the old storage (2.7, 2.9): probed once, on two small host Tensors."""
    if not _STORAGE_OBJECTS_FOLLOW:
        follows = False
        if _UNTYPED_STORAGE is not None:
            try:
                probe = Tensor(np.zeros(1, np.float32))
                before = _UNTYPED_STORAGE(probe)
                probe.assign_value(Tensor(np.ones(1, np.float32)))  # new storage, as set_data gives
                follows = _UNTYPED_STORAGE(probe) is not before
            except Exception:  # noqa: BLE001 - any failure: read the address instead
                follows = False
        _STORAGE_OBJECTS_FOLLOW.append(follows)
    return _STORAGE_OBJECTS_FOLLOW[0]


def storage_token(param):
    """A token of `param`'s storage; :func:`same_storage` compares two. Relies on: ``TensorPy.untyped_storage``
    returning, without waiting for MindSpore's pipeline, one Python object while the Parameter keeps its
    storage (a held object is returned again) and a new one once ``set_data`` gives it new storage (probed:
    :func:`_storage_objects_follow`). Where that does not hold, the address (``data_ptr``, which waits for
    every queued op that uses `param`)."""
    if not _storage_objects_follow():
        return param.data_ptr()
    return _UNTYPED_STORAGE(param)


def is_view(param):
    """Whether `param` holds a view into a larger or differently laid out storage (``set_data`` of a slice such as
    ``table[3:7]``, or of a transpose): MindSpore's kernels would update a contiguous copy, not the Parameter.
    Relies on: ``Tensor.storage_offset``, ``Tensor.is_contiguous`` and the storage object's ``nbytes`` (where it
    follows ``set_data``, :func:`_storage_objects_follow`) reading metadata, without waiting for the pipeline."""
    if param.has_init:
        return False
    if param.storage_offset() != 0 or not param.is_contiguous():
        return True
    return _storage_objects_follow() and _UNTYPED_STORAGE(param).nbytes() != param.nbytes


def same_storage(token, other):
    """Whether two :func:`storage_token`\ s (or None, for a Parameter not initialized yet) are of one storage: the
    same object, else (a new object, which happens only when the storage changed) the same address, read once
    per change."""
    if token is other:
        return True
    if token is None or other is None:
        return False
    if isinstance(token, int) or isinstance(other, int):
        return token == other
    return token.data_ptr() == other.data_ptr()


def class_assign_value(param, value):
    """MindSpore's own ``assign_value`` of `param`'s class (new storage for `value`)."""
    return type(param).assign_value(param, value)


def restore_parse_method(cell):
    """Points MindSpore's graph parser back at ``cell.construct``.

    Relies on: running a ``jit`` method of a Cell from Python (our ``_step``) leaves the method's name
    in the Cell's ``__parse_method__`` (``mindspore/graph/api.py``), so a graph that calls the Cell
    later parses that method instead of ``construct``: a warm-up step from Python then broke every
    ``jit`` train step with "The parameters number of the function is 2, but the number of provided
    arguments is 1" (the built-in RAdam fails the same way).
    """
    cell.__parse_method__ = "construct"


def recompile(cell):
    """Makes the next call from Python compile `cell`'s ``jit`` methods again, so they read its current
    structure and Parameters. Relies on: MindSpore keying a Cell's compiled methods by the Cell's
    ``_create_time``."""
    cell._create_time = max(cell._create_time + 1, time.time_ns())  # pylint: disable=protected-access


def own_parameter_names(cell):
    """The names of the Parameters registered on `cell` itself. Relies on: ``Cell._params``."""
    return tuple(cell._params)  # pylint: disable=protected-access


def share_stateless_helpers(cell, memo):
    """Enters `cell`'s ``Map``/``HyperMap`` helpers into a ``copy.deepcopy`` memo as themselves. Relies on:
    they are stateless C++ objects that can't be pickled (``cannot pickle 'Map' object``)."""
    for value in vars(cell).values():
        if isinstance(value, (ops.Map, ops.HyperMap)):
            memo[id(value)] = value


def loader_arguments(depth=2):
    """``(parameter_dict, strict_load)`` of the ``mindspore.load_param_into_net`` call asking for a Cell's
    Parameters, else None: looked for `depth` frames up from here (2: the caller's caller, a Cell's
    ``parameters_and_names``) and up to two more (the loader's own loop, or ``_is_auto_parallel_mode``).
    Relies on: the loader (unwrapped from its decorator) calling ``parameters_and_names`` before its first
    write, with those two names as locals."""
    frame = _loader_frame(sys._getframe(depth), limit=3)  # pylint: disable=protected-access
    if frame is None:
        return None
    return frame.f_locals.get("parameter_dict"), frame.f_locals.get("strict_load", False)


def _loader_frame(frame, limit=None):
    """The frame of ``mindspore.load_param_into_net`` (unwrapped from its decorator) among `frame` and its
    callers (at most `limit` of them), or None."""
    from mindspore.train import serialization  # pylint: disable=import-outside-toplevel
    code = inspect.unwrap(serialization.load_param_into_net).__code__
    while frame is not None and limit != 0:
        if frame.f_code is code:
            return frame
        frame, limit = frame.f_back, None if limit is None else limit - 1
    return None


def compiling_with_dynamic_shapes():
    """Whether a graph MindSpore is compiling now takes an input of dynamic shape (``jit(dynamic=1)`` once
    shapes have varied, ``enable_dynamic``, ``Cell.set_inputs`` with ``None`` dimensions). Relies on: the
    compile frames (``compile`` methods of ``*Executor`` classes and of ``Cell``) holding their arguments as
    ``compile_args`` or ``args``, a dynamic dimension being negative in ``Tensor.shape``; MindSpore may infer a
    Cell's graph on a worker thread while the thread that called ``compile`` waits, so every thread's stack is
    read."""
    for frame in sys._current_frames().values():  # pylint: disable=protected-access
        while frame is not None:
            if frame.f_code.co_name == "compile":
                arguments = frame.f_locals.get("compile_args", frame.f_locals.get("args"))
                if _has_dynamic_shape(arguments):
                    return True
            frame = frame.f_back
    return False


def _has_dynamic_shape(value):
    """A tensor (of any of MindSpore's tensor classes: ``jit(dynamic=1)`` compiles with C++ ones) or a nest of
    them with a dynamic dimension."""
    if isinstance(value, (tuple, list)):
        return any(_has_dynamic_shape(item) for item in value)
    shape = getattr(value, "shape", None)
    if isinstance(value, Tensor) or (isinstance(shape, (tuple, list)) and hasattr(value, "dtype")):
        return any(dim is None or dim < 0 for dim in shape)
    return False


def loading_dict():
    """The ``parameter_dict`` of the ``mindspore.load_param_into_net`` call that is writing a Parameter now
    (``load_checkpoint(net=...)`` goes through it too), else None. Relies on: the loader (unwrapped from its
    decorator) holding it as a local named ``parameter_dict`` while it writes."""
    frame = _loader_frame(sys._getframe(1))  # pylint: disable=protected-access
    return None if frame is None else frame.f_locals.get("parameter_dict")


CELL_GRAPH_EXECUTOR = "_CellGraphExecutor"


def compiling_a_cell_graph():
    """Whether the outermost graph MindSpore is compiling now is a GRAPH_MODE Cell call's (its cell
    executor binds the Parameters' storage at every run, so it follows ``set_data``) rather than a
    ``jit`` function's or method's (bound at compile time). Relies on: the compile frames' executor
    classes (``_CellGraphExecutor.compile``; ``_JitExecutor.compile`` in 2.10, other ``*Executor`` names
    before)."""
    frame, kind = sys._getframe(1), None  # pylint: disable=protected-access
    while frame is not None:
        if frame.f_code.co_name == "compile":
            executor = type(frame.f_locals.get("self")).__name__
            if executor.endswith("Executor"):
                kind = executor  # the outermost compile decides
        frame = frame.f_back
    return kind == CELL_GRAPH_EXECUTOR
