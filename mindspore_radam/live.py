r"""Writes made between steps reach every compiled graph: in-place ``set_data`` and live groups.

MindSpore (2.10, measured on CPU) compiles a graph against the storage its Parameters have at
compile time, and ``Parameter.set_data`` gives a Parameter new storage: every graph compiled before
(our step, a user's ``jit`` train step, ``TrainOneStepCell``, ``Model``) keeps reading and writing
the old one, while ``param.asnumpy()`` shows the new one. ``mindspore.load_param_into_net`` and
``mindspore.load_checkpoint(..., net=...)`` write with ``set_data``, so loading a checkpoint into a
net and optimizer that had already stepped left training running on memory nobody reads.

Two mechanisms keep every write live, and both front doors (:class:`mindspore_radam.RAdam`,
:class:`mindspore_radam.nn.RAdam`) use them:

- :func:`keep_in_place` makes each Parameter an optimizer updates or owns (the network's weights,
  moments, step counts, learning rates, hyperparameters) keep its storage when a whole new value
  is written into it: ``set_data``, ``load_param_into_net``, ``load_checkpoint(..., net=...)``,
  ``Cell.load_state_dict`` and item assignment all end in ``Tensor.assign_value``, which on these
  Parameters writes the value into the existing storage (``Assign``; ``copy_`` for bfloat16), so
  every compiled graph sees it. Only a value of another shape or dtype still replaces the storage,
  with a ``RuntimeWarning`` naming the Parameter: graphs compiled before will not see it.
- :class:`LiveGroup` is the dict of a parameter group in ``optimizer.param_groups``: assigning
  ``group["lr"]``, ``["betas"]``, ``["eps"]``, ``["weight_decay"]``, ... validates the value and
  writes it into the optimizer's Parameters in place, so it takes effect from the next step in
  every pattern, without recompiling.

A switch that changes the structure of the compiled update (``maximize``, ``decoupled_weight_decay``,
a weight decay going from 0 to non-zero or back) can be followed only by graphs compiled after it:
our own step (calls from Python) recompiles once; a caller's graph that compiled the optimizer inline
cannot be reached from here, so the write raises ``ValueError`` instead (see :func:`note_inlined`).
"""
import itertools
import time
import types
import warnings
import weakref

from mindspore import Tensor
from mindspore.ops import constexpr

from mindspore_radam.functional import write_value

# Keys of optimizers that a caller's graph (a user's jit function, a GRAPH_MODE Cell) compiled inline.
_INLINED = set()
_KEYS = itertools.count()


def new_key():
    """A process-unique key for one optimizer (graph code records it with :func:`note_inlined`)."""
    return next(_KEYS)


@constexpr
def note_inlined(key):
    """Records, at compile time, that a caller's graph compiled optimizer `key` inline.

    Runs in Python while MindSpore compiles the caller's graph (``constexpr``), never at run time.
    """
    _INLINED.add(key)
    return True


def is_inlined(key):
    """Whether a caller's graph compiled optimizer `key` inline (it then can't follow structural changes)."""
    return key in _INLINED


def _assign_value_in_place(param, value):
    """``Tensor.assign_value`` that keeps `param`'s storage when `value` fits it (same shape and
    dtype), so every compiled graph sees the new value. ``set_data``, ``load_param_into_net``,
    ``Cell.load_state_dict`` and item assignment all write through ``assign_value``."""
    if not getattr(param, "_radam_materialized", True):
        # Built uninitialized (mindspore.nn.utils.no_init_parameters, lazy initializers): its first
        # value gives it storage, which no compiled graph can have held before.
        param._radam_materialized = True  # pylint: disable=protected-access
        return type(param).assign_value(param, value)
    if not isinstance(value, Tensor) or tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
        if isinstance(value, Tensor):
            warnings.warn(
                f"Parameter {param.name!r} was given new storage of shape {tuple(value.shape)} and dtype "
                f"{value.dtype} (it had {tuple(param.shape)}, {param.dtype}); graphs compiled before (an "
                f"optimizer's step, a jit train step, a train-step Cell) keep using the old storage. Write "
                f"values of the Parameter's own shape and dtype (param.set_data, mindspore.ops.assign, "
                f"load_param_into_net), or build a new optimizer and train step.", RuntimeWarning, stacklevel=3)
        return type(param).assign_value(param, value)
    writer = getattr(param, "_radam_writer", None)
    writer = writer() if writer is not None else None
    if writer is not None:
        writer(param, value)
    elif param.size != 0 and value is not param:
        write_value(param, value)
    return param


def recompile(cell):
    """Makes the next call from Python compile `cell`'s ``jit`` methods again, so they read its current
    structure and Parameters: MindSpore (2.7-2.10) keys a Cell's compiled methods by its creation time."""
    cell._create_time = max(cell._create_time + 1, time.time_ns())  # pylint: disable=protected-access


def keep_in_place(params, writer=None):
    """Makes every write of a whole value into each of `params` keep its storage (see the module docstring).

    Args:
        params (Iterable[Parameter]): Parameters an optimizer updates or owns (or a network's, see
            :func:`mindspore_radam.keep_in_place`). Installing twice is harmless; a Parameter whose data
            is not initialized yet gets its storage from its first value, and keeps it from then on.
        writer (Optional[callable]): ``writer(param, value)`` replaces the plain in-place write for
            these Parameters (the optimizer's hyperparameters: it validates and syncs the group
            dicts); held weakly, as a bound method of the optimizer.
    """
    for param in params:
        if "assign_value" not in vars(param):
            param.assign_value = types.MethodType(_assign_value_in_place, param)
            param._radam_materialized = not param.has_init  # pylint: disable=protected-access
        if writer is not None:
            param._radam_writer = weakref.WeakMethod(writer)  # pylint: disable=protected-access


def keep_loads_in_place(cell):
    """Makes every Parameter of `cell` keep its storage when a whole value is loaded into it, so graphs
    compiled before see the value (see the module docstring); returns `cell`.

    Our optimizers do this for the Parameters they update or own. Call it once on a network whose other
    Parameters (BatchNorm's ``moving_mean``/``moving_variance``, anything not trained by gradients)
    should roll back too when a checkpoint is loaded in the same process into a compiled train step.

    Args:
        cell (Union[Cell, Iterable[Parameter]]): the network, or its Parameters.

    Raises:
        TypeError: if `cell` is neither a Cell nor an iterable of Parameters.
    """
    from mindspore import Parameter, nn  # pylint: disable=import-outside-toplevel
    params = cell.get_parameters() if isinstance(cell, nn.Cell) else cell
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"cell must be a mindspore.nn.Cell or an iterable of Parameters, but got "
                        f"{type(cell).__name__}") from None
    for index, param in enumerate(params):
        if not isinstance(param, Parameter):
            raise TypeError(f"cell[{index}] must be a mindspore.Parameter, but got {type(param).__name__}")
    keep_in_place(params)
    return cell


class LiveGroup(dict):
    """A parameter group of an optimizer whose hyperparameters are live (see the module docstring).

    Reading is plain ``dict`` reading. Assigning a hyperparameter key calls the optimizer's
    ``_set_group_values(group_id, {key: value})``, which validates it, writes it into the optimizer's
    Parameters in place and returns the normalized value stored here; any other key is kept as
    metadata. ``update`` passes all its hyperparameters in one call (all or nothing), and
    ``setdefault`` goes the same way. Hyperparameter keys and ``params`` can't be deleted (nor the
    group cleared).
    """

    def __init__(self, owner, group_id, items):
        super().__init__(items)
        self._owner = weakref.ref(owner)
        self._group_id = group_id

    def __setitem__(self, key, value):
        self.update({key: value})

    def store(self, key, value):
        """Sets `key` without the optimizer's checks (the optimizer itself syncing the dict)."""
        super().__setitem__(key, value)

    def update(self, *args, **kwargs):
        items = dict(*args, **kwargs)
        owner = self._owner()
        live_items = {key: value for key, value in items.items() if owner is not None and key in owner.LIVE_KEYS}
        if live_items:
            items.update(owner._set_group_values(self._group_id, live_items))  # pylint: disable=protected-access
        for key, value in items.items():
            super().__setitem__(key, value)

    def clear(self):
        raise KeyError(f"param_groups[{self._group_id}] can't be cleared: the optimizer reads its values every step")

    def popitem(self):
        raise KeyError(f"param_groups[{self._group_id}]: popitem would remove a value the optimizer reads")

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __delitem__(self, key):
        owner = self._owner()
        if owner is not None and (key in owner.LIVE_KEYS or key == "params"):
            raise KeyError(f"param_groups[{self._group_id}][{key!r}] can't be deleted: the optimizer reads it "
                           f"every step; assign a new value instead")
        super().__delitem__(key)

    def pop(self, key, *default):
        if key in self:
            value = self[key]
            del self[key]
            return value
        return super().pop(key, *default)

    def __reduce__(self):  # copies and pickles are plain dicts
        return (dict, (dict(self),))

    def __deepcopy__(self, memo):
        import copy  # pylint: disable=import-outside-toplevel
        return {copy.deepcopy(key, memo): copy.deepcopy(value, memo) for key, value in self.items()}
