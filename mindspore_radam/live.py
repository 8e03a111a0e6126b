r"""Writes made between steps: what reaches which compiled graph, for both front doors and Lookahead.

MindSpore (2.7-2.10, measured on CPU) compiles a graph against the storage its Parameters have at
compile time, and ``Parameter.set_data`` (which ``load_param_into_net``, ``load_checkpoint(net=)``
and ``Cell.load_state_dict`` use) gives a Parameter new storage, or, given another Parameter, shares
that one's storage. Every graph compiled before keeps reading and writing the old storage; eager
code, ``asnumpy`` and graphs compiled later read the new one. Frameworks rely on exactly that
(mindone's EMA swaps weights in and out with ``set_data`` around each save), so **the network's
Parameters keep MindSpore's semantics**: nothing here changes what ``set_data``, ``assign_value``,
``clone`` or aliasing mean on them. What follows from it:

- :func:`follow_storage` (every call from Python): when a weight has new storage since our step
  compiled, the step is compiled again, so it updates the storage the Parameter has now (what eager
  code and graphs compiled from now on read), and a ``RuntimeWarning`` names the Parameter, since
  a graph of the caller's compiled before the write (a jitted forward and backward pass) still reads
  the old storage.
- A caller's graph that compiled an optimizer inline (a ``jit`` train step, a GRAPH_MODE train-step
  Cell, ``Model``) keeps the storage it compiled with, the forward, the backward and our update
  alike, as with any MindSpore optimizer: nothing trains storage the forward does not read. A load
  into the optimizer's own state while the weights it updates have new storage would mix a loaded
  state with weights the graph never sees: it warns (:func:`check_state_load`), naming the way that
  works: :func:`keep_loads_in_place` before the step compiles, or building the train step again.
- What an optimizer owns (moments, step counts, learning rates, hyperparameters) keeps its storage
  on every load (:func:`keep_in_place`), so loading optimizer state reaches every graph.
- :func:`keep_loads_in_place` is the explicit opt-in that gives a network's Parameters the same
  in-place loads; it changes what ``set_data`` means on them (documented there).
- :func:`refuse_name_fallback`: MindSpore's loader, missing a Parameter's name in the checkpoint,
  loads a key that ends with it (``exp_avg.weight`` into ``weight``); into an optimizer of ours that
  load is refused before anything is written.

:class:`LiveGroup` is the dict of a parameter group: every mutating path writes through the
optimizer's checks into its Parameters (in place, no recompile) or raises.
"""
import warnings
import weakref

from mindspore import Tensor
from mindspore.ops import constexpr

from mindspore_radam import _internals, _validation
from mindspore_radam.functional import write_value

# key -> the optimizer Cell, weakly: graph code knows an optimizer by its key only (constexpr arguments).
_OWNERS = weakref.WeakValueDictionary()
_NEXT_KEY = [0]


def owner(key):
    """The optimizer of `key` (:func:`new_key`), or None once it is gone."""
    return _OWNERS.get(key)


def new_key(cell):
    """Registers `cell` (an optimizer of ours) and returns its process-unique key for graph code."""
    _NEXT_KEY[0] += 1
    _OWNERS[_NEXT_KEY[0]] = cell
    return _NEXT_KEY[0]


class StorageRecord(tuple):
    """Each Parameter's :func:`mindspore_radam._internals.storage_token` (None for one not initialized yet),
    read without waiting for MindSpore's pipeline. A copy of an optimizer holds none (no graph has compiled
    it yet)."""

    def __deepcopy__(self, memo):
        return None

    def __copy__(self):
        return None

    def __reduce__(self):
        return (type(None), ())


def storage_of(params):
    """The :class:`StorageRecord` of `params` now."""
    return StorageRecord(None if param.has_init else _internals.storage_token(param) for param in params)


def _moved(params, recorded, current=None):
    """Names of `params` whose storage (`current`, or read now) differs from `recorded` (a Parameter first
    initialized since counts as unmoved: no graph can have held storage it did not have)."""
    current = storage_of(params) if current is None else current
    return [param.name for param, before, now in zip(params, recorded, current)
            if before is not None and now is not None and not _internals.same_storage(before, now)]


def _unchanged(recorded, current):
    """Whether two storage records are of the same storage, Parameter by Parameter (cheap when they are)."""
    return (recorded is not None and len(recorded) == len(current)
            and all(_internals.same_storage(before, now) for before, now in zip(recorded, current)))


@constexpr
def note_inlined(key):
    """Records, while MindSpore compiles a caller's graph, that it compiled optimizer `key` inline, and
    the storage of the weights that graph holds (None for a GRAPH_MODE Cell's graph, which follows
    every load). Runs in Python at compile time (``constexpr``)."""
    owner = _OWNERS.get(key)
    if owner is not None and hasattr(owner, "check_trainable"):
        owner.check_trainable()
        check_no_views(owner.live_weights(), "optimizer.parameters")
    if owner is not None and not getattr(owner, "_radam_compiling_own_step", False):
        # pylint: disable=protected-access
        owner._radam_inlined = True
        owner._radam_inlined_storage = None if _internals.compiling_a_cell_graph() else storage_of(owner.live_weights())
    return True


def forget_compiled_storage(cell):
    """For a copy of an optimizer (``copy.deepcopy``): no graph has compiled it yet."""
    # pylint: disable=protected-access
    cell._radam_inlined, cell._radam_inlined_storage, cell._radam_step_storage = False, None, None


def is_inlined(cell):
    """Whether a caller's graph compiled optimizer `cell` inline (it can't follow structural switches)."""
    return getattr(cell, "_radam_inlined", False)


def follow_storage(cell):
    """Before a call from Python: recompile `cell`'s step when a weight it updates has new storage since
    the step compiled (see the module docstring), with a ``RuntimeWarning`` naming the weights."""
    weights = cell.live_weights()
    current = storage_of(weights)  # read once: this runs before every call from Python
    recorded = getattr(cell, "_radam_step_storage", None)
    if recorded is not None and len(recorded) == len(weights) and not _unchanged(recorded, current):
        moved = _moved(weights, recorded, current)
        check_no_views([weight for weight in weights if weight.name in moved], "optimizer.parameters")
        if moved:
            warnings.warn(
                f"Parameters {moved} have new storage since this optimizer's last step (set_data or a "
                f"checkpoint load gave it); its step now updates that storage, which eager code and graphs "
                f"compiled from now on read. A graph compiled before the write (for example a jitted "
                f"value_and_grad) still reads the old storage, as with any MindSpore optimizer: build it again, "
                f"or call mindspore_radam.keep_loads_in_place(net) before the first step so loads write into "
                f"the existing storage.", RuntimeWarning, stacklevel=3)
            recompile(cell)
    cell._radam_step_storage = current  # pylint: disable=protected-access


def check_no_views(params, where):
    """Raises ValueError naming the Parameters of `params` that hold a view of another tensor (read once per
    storage change: at construction, while a graph compiles, when ``set_data`` gave a weight new storage)."""
    views = [param.name for param in params if _internals.is_view(param)]
    if views:
        raise ValueError(_validation.view_message(where, views))


def check_state_load(cell, param):
    """A load into `param`, state of optimizer `cell`: warns when a caller's graph compiled `cell` inline
    and a weight has new storage since (that graph would go on from the old weights with this state)."""
    recorded = getattr(cell, "_radam_inlined_storage", None)
    current = storage_of(cell.live_weights())
    if recorded is None or _unchanged(getattr(cell, "_radam_warned_storage", None), current):
        return
    moved = _moved(cell.live_weights(), recorded, current)
    if moved:
        cell._radam_warned_storage = current  # pylint: disable=protected-access
        warnings.warn(
            f"{param.name!r} is loaded into the optimizer's state, but the network's Parameters {moved} have new "
            f"storage since a graph of yours (a jit train step, a GRAPH_MODE train-step Cell, Model) compiled "
            f"this optimizer inline: that graph keeps training their old storage, from the old weights (MindSpore's "
            f"set_data semantics, with any optimizer), now with this state. To continue from the loaded weights, "
            f"call mindspore_radam.keep_loads_in_place(net) before the train step compiles (loads then write into "
            f"the storage it uses), or build the train step again (a new jit function, Cell or Model) after "
            f"loading.", RuntimeWarning, stacklevel=4)


def _assign_value_in_place(param, value):
    """``Tensor.assign_value`` that keeps `param`'s storage when `value` fits it (same shape and
    dtype), so every compiled graph sees the new value. ``set_data``, ``load_param_into_net``,
    ``Cell.load_state_dict`` and item assignment all write through ``assign_value``."""
    if not getattr(param, "_radam_materialized", True):
        # Built uninitialized (mindspore.nn.utils.no_init_parameters, lazy initializers): its first
        # value gives it storage, which no compiled graph can have held before.
        param._radam_materialized = True  # pylint: disable=protected-access
        return _internals.class_assign_value(param, value)
    owner = getattr(param, "_radam_owner", None)
    owner = owner() if owner is not None else None
    if not isinstance(value, Tensor) or tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
        if isinstance(value, Tensor) and owner is not None:
            # The optimizer's compiled step would keep the old storage and never read this value.
            raise ValueError(f"{param.name!r} is of shape {tuple(param.shape)} and dtype {param.dtype}, but got a "
                             f"value of shape {tuple(value.shape)} and dtype {value.dtype}: a checkpoint or value "
                             f"that fits this optimizer's Parameters is needed (nothing was written)")
        if isinstance(value, Tensor):
            warnings.warn(
                f"Parameter {param.name!r} was given new storage of shape {tuple(value.shape)} and dtype "
                f"{value.dtype} (it had {tuple(param.shape)}, {param.dtype}); graphs compiled before (an "
                f"optimizer's step, a jit train step, a train-step Cell) keep using the old storage. Write "
                f"values of the Parameter's own shape and dtype (param.set_data, mindspore.ops.assign, "
                f"load_param_into_net), or build a new optimizer and train step.", RuntimeWarning, stacklevel=3)
        return _internals.class_assign_value(param, value)
    if owner is not None:
        check_state_load(owner, param)
    writer = getattr(param, "_radam_writer", None)
    writer = writer() if writer is not None else None
    if writer is not None:
        writer(param, value)
    elif param.size != 0 and value is not param:
        write_value(param, value)
    return param


recompile = _internals.recompile


def keep_in_place(params, writer=None, owner=None):
    """Makes every write of a whole value into each of `params` keep its storage (see the module docstring).

    Args:
        params (Iterable[Parameter]): Parameters an optimizer owns (or a network's, by the explicit
            :func:`keep_loads_in_place`). Installing twice is harmless; a Parameter whose data is not
            initialized yet gets its storage from its first value, and keeps it from then on.
        writer (Optional[callable]): ``writer(param, value)`` replaces the plain in-place write for
            these Parameters (the optimizer's hyperparameters: it validates and syncs the group
            dicts); held weakly, as a bound method of the optimizer.
        owner (Optional[Cell]): the optimizer whose state these are (held weakly): a load into them
            runs :func:`check_state_load`.
    """
    for param in params:
        if _internals.install_assign_value(param, _assign_value_in_place):
            param._radam_materialized = not param.has_init  # pylint: disable=protected-access
        if writer is not None:
            param._radam_writer = weakref.WeakMethod(writer)  # pylint: disable=protected-access
        if owner is not None:
            param._radam_owner = weakref.ref(owner)  # pylint: disable=protected-access


def keep_loads_in_place(cell):
    """Opt-in: every Parameter of `cell` keeps its storage when a whole value of its shape and dtype is
    loaded into it (``set_data``, ``load_param_into_net``, ``load_checkpoint(net=)``,
    ``Cell.load_state_dict``), so train steps compiled before see the value; returns `cell`.

    Call it once, before the train step compiles, on a network that is rolled back in the same process
    into a compiled ``jit`` train step, train-step Cell or ``Model`` (weights and BatchNorm statistics
    alike), or on a scheduler whose ``last_epoch`` is restored with ``set_data`` while a ``jit`` step
    steps it. What it changes: on these Parameters ``p.set_data(q)`` copies `q`'s value instead of
    sharing `q`'s storage, so code that swaps weights through a shared cache Parameter (mindone's
    ``EMA`` with ``offloading=True``) must not be used on them. Without it, MindSpore's semantics hold:
    a load gives the Parameter new storage, which graphs compiled before don't see.

    Args:
        cell (Union[Cell, LRScheduler, Iterable[Parameter]]): the network, a
            ``mindspore.experimental.optim.lr_scheduler`` scheduler, or Parameters.

    Raises:
        TypeError: if `cell` is none of these.
    """
    from mindspore import Parameter, nn  # pylint: disable=import-outside-toplevel
    if isinstance(cell, nn.Cell):
        params = cell.get_parameters()
    elif isinstance(getattr(cell, "last_epoch", None), Parameter):
        params = [cell.last_epoch]
    elif isinstance(cell, (str, bytes, dict)):
        params = None
    else:
        params = cell
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"cell must be a mindspore.nn.Cell, a scheduler or an iterable of mindspore.Parameter, "
                        f"but got {_validation.class_name(cell)}") from None
    for index, param in enumerate(params):
        if not isinstance(param, Parameter):
            raise TypeError(f"cell[{index}] must be a mindspore.Parameter, but got {_validation.class_name(param)}")
    keep_in_place(params)
    return cell


def refuse_name_fallback(cell, named_params):
    """Raises before ``load_param_into_net(cell, checkpoint)`` writes anything, when its name fallback
    would load another of `cell`'s Parameters' values into a Parameter (see the module docstring).

    MindSpore's loader (``strict_load=False``, 2.7-2.10), for a Parameter ``name`` missing from the
    checkpoint, loads a key ending with ``name`` (``exp_avg.weight`` for ``weight``). Called from the
    front doors' ``parameters_and_names``, which the loader calls before its first write; the optimizer's
    own checkpoint check (``check_checkpoint``: its layout) runs there too, so a checkpoint that does not fit
    writes nothing, the network's weights in it included.

    Raises:
        ValueError: naming the Parameter, the key, and the call that works.
    """
    arguments = _internals.loader_arguments()
    if arguments is None or not isinstance(arguments[0], dict):
        return
    checkpoint = arguments[0]
    if hasattr(cell, "check_checkpoint"):  # its layout, before the loader writes anything
        cell.check_checkpoint(checkpoint)
    if arguments[1] is True:
        return
    names = {param.name for _, param in named_params}
    for name in sorted(names):
        if name in checkpoint:
            continue
        for key in checkpoint:
            if key != name and key.endswith(name) and key in names:
                raise ValueError(
                    f"load_param_into_net: the checkpoint has no {name!r}, and MindSpore's loader would load "
                    f"{key!r} into it instead (its name fallback: a key ending with the name), the value of this "
                    f"optimizer's Parameter {key!r}. Nothing was loaded. For a checkpoint of the optimizer's state "
                    f"alone, call mindspore.load_param_into_net(optimizer, checkpoint, strict_load=True), which "
                    f"loads what the checkpoint has and lists the rest as not loaded; or save the checkpoint with "
                    f"mindspore.save_checkpoint(optimizer, ...), which includes the network's Parameters.")


class LiveLoads:
    """What both front doors (and Lookahead) add to their Cell for the semantics above: the weights they
    update (:meth:`live_weights`), and the loader's name fallback refused (:func:`refuse_name_fallback`)."""

    def live_weights(self):
        """The network's Parameters this optimizer updates, in order."""
        return tuple(self.parameters)

    def add_flags(self, **flags):
        """``Cell.add_flags`` without the mixed-precision flags (``to_float`` on this Cell or a Cell holding it,
        as amp does on a train-step Cell): every parameter is updated at its own precision and the schedule
        in float64, so a Cell-wide cast would break the kernel's float64 inputs and the scalars' exactness
        (it did once the step recompiled after ``to_float``)."""
        return super().add_flags(**{key: value for key, value in flags.items() if key not in ("fp16", "fp32", "bf16")})

    def parameters_and_names(self, name_prefix="", expand=True):
        named = list(super().parameters_and_names(name_prefix, expand))
        refuse_name_fallback(self, named)
        return iter(named)


class GroupParams(list):
    """A group's ``params`` list, read as a list; every in-place edit raises ``TypeError`` naming what works
    (the optimizer's state, step counts and compiled step are built for these Parameters, so an edit
    would be ignored: avalanche's ``update_optimizer`` appends and removes this way). Copies and pickles
    are plain lists."""

    def __init__(self, items, where):
        super().__init__(items)
        self._where = where

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{self._where}['params'] can't be edited in place: the optimizer's state, step counts and "
                        f"compiled step are built for its Parameters, so the edit would be ignored. Add Parameters "
                        f"with optimizer.add_param_group({{'params': [...]}}) (their state and step count start "
                        f"fresh), or build a new optimizer over the Parameters you want (load the state of those "
                        f"it keeps)")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self):
        return (list, (list(self),))

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        import copy  # pylint: disable=import-outside-toplevel
        return [copy.deepcopy(item, memo) for item in self]


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
        if "params" in self:
            super().__setitem__("params", GroupParams(self["params"], f"param_groups[{group_id}]"))
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

    def __ior__(self, other):  # ``group |= {...}``: dict's own |= would not call update
        self.update(other)
        return self

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
