"""What the Cell contract needs of an optimizer Cell, for both front doors: ``copy.deepcopy`` and
``Cell.load_state_dict`` of state held in ParameterTuples.

``copy.deepcopy``:
MindSpore's optimizers can't be deep-copied (``cannot pickle 'Map' object``: the ``Map``/``HyperMap``
helpers the base classes hold are C++ objects without pickling support). They are stateless, so a
copy shares them; everything else is copied as ``copy.deepcopy`` would, Parameters included (new
storage with the same values), and the memo keeps identity, so ``deepcopy((net, optimizer))`` gives
an optimizer over the copied net's Parameters, as in torch.

``Cell.load_state_dict``: MindSpore 2.10 loads a Parameter whose name has a dot (an optimizer's
``exp_avg.<param>``, ``step.group_0``, ...) and then reports its key as unexpected (its strict check
reads the part before the first dot as a sub-Cell's name), so ``cell.load_state_dict(cell.state_dict())``
raises "Unexpected key(s)" on every optimizer, the built-in ones included. :func:`keep_state_dict_loadable`
registers a pre-hook that notes the Cell's prefix and a post-hook that takes exactly those keys,
``prefix + name`` of the Cell's own dotted Parameters (which were loaded), off the unexpected list.
"""
import copy

from mindspore_radam._internals import own_parameter_names, share_stateless_helpers


def deepcopy_cell(cell, memo):
    """A deep copy of `cell` sharing its stateless ``Map``/``HyperMap`` helpers (see the module docstring)."""
    share_stateless_helpers(cell, memo)
    constructor, args, state = cell.__reduce_ex__(4)[:3]
    new = constructor(*copy.deepcopy(args, memo))
    memo[id(cell)] = new
    new.__setstate__(copy.deepcopy(state, memo))
    return new


def keep_state_dict_loadable(cell):
    """Makes ``load_state_dict`` accept the keys ``state_dict`` gives `cell`'s dotted Parameter names."""
    cell.register_load_state_dict_pre_hook(_note_prefix)
    cell.register_load_state_dict_post_hook(_accept_dotted_names)


def _note_prefix(cell, state_dict, prefix, *args):  # pylint: disable=unused-argument
    cell._radam_state_prefix = prefix  # pylint: disable=protected-access


def _accept_dotted_names(cell, incompatible_keys):
    prefix = getattr(cell, "_radam_state_prefix", "")
    loaded = {prefix + name for name in own_parameter_names(cell) if "." in name}
    incompatible_keys.unexpected_keys[:] = [key for key in incompatible_keys.unexpected_keys if key not in loaded]
