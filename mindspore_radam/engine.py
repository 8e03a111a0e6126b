r"""The group engine behind both front doors: what :class:`mindspore_radam.RAdam` and
:class:`mindspore_radam.nn.RAdam` share, written once.

A front door translates its conventions (the experimental ``param_groups``, ``lrs`` and schedulers;
the ``nn`` family's ``learning_rate`` lists, ``LearningRateSchedule``\ s, ``global_step``,
``loss_scale``, ``order_params``) into *engine groups*: consecutive ranges of its Parameters that
share one step count, one float64 hyperparameter record (:data:`mindspore_radam.functional.HYPER_RECORD`)
and one implementation (:mod:`mindspore_radam.dispatch`). The engine owns, for every group:

- the state (:func:`new_state`: one policy for ``exp_avg``/``exp_avg_sq``/``kahan_comp``, their
  dtypes and their parallel layout) and the step count ``step.group_<k>``;
- the hyperparameter Parameter ``hyperparameters.group_<k>`` and its load writer (validation, a
  structural switch recompiled or refused, see :meth:`GroupEngine._apply_options`);
- the loop over groups and implementations, behind the single CPU runtime guard
  (:meth:`GroupEngine._update_in_graph`);
- the in-place loads of what the optimizer owns (:mod:`mindspore_radam.live`), and ``copy.deepcopy``.

A door supplies, per step, each group's learning rate and hyperparameter Tensor
(:meth:`GroupEngine._group_lr`, :meth:`GroupEngine._group_hyper`) from a ``context`` tuple it builds in
graph code (the ``nn`` door's ``get_lr()`` and weight-decay schedules; nothing for the core).
"""
import hashlib
from collections import defaultdict

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, ops
import mindspore.common.dtype as mstype

from mindspore_radam import _internals, _validation, dispatch, live
from mindspore_radam._cell import deepcopy_cell, keep_state_dict_loadable
from mindspore_radam._versions import zeros
from mindspore_radam.dispatch import PORTABLE, UPDATES, compiled_implementations, select_implementation
from mindspore_radam.functional import (STRUCTURE_NAMES, compute_dtype, fields_of_hyper, finite_flag, group_hyper,
                                        group_options, structure, write_value)


GROUP_ENTRIES = ("step.group_", "hyperparameters.group_", "learning_rate_group_")
# What works when a checkpoint's groups can't be matched to an optimizer's: the state of each Parameter alone.
PER_PARAMETER_LOAD = (
    "Load the state of each Parameter alone: mindspore.load_param_into_net(new, {k: v for k, v in checkpoint.items() "
    "if k.startswith(('exp_avg.', 'exp_avg_sq.', 'kahan_comp.', 'global_step'))}, strict_load=True), then set each "
    "group's step count (new.steps[i].set_data(...)); hyperparameters and learning rates are the new optimizer's")


def name_hash(name):
    """A stable signed 64-bit hash of a Parameter's name (the same in every process and release)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def state_dtype_of(dtype, state_dtype):
    """The dtype of ``exp_avg``/``exp_avg_sq`` for a parameter of `dtype` under the ``state_dtype`` option:
    the compute dtype (float32 for float16/bfloat16) for None, the parameter's own for ``"param"``."""
    return dtype if state_dtype == "param" else compute_dtype(dtype)


def new_state(param, prefix, dtype, like_param):
    """A zero state Parameter ``<prefix>.<param.name>`` of `param`'s shape and `dtype`.

    `like_param`: cloned from `param` (``Parameter.clone``), so it carries `param`'s parallel layout, as
    the ``nn`` family's state does and as MindSpore's parallel optimizer needs; otherwise a new
    Parameter. A zero-size `param` always gets a new one (MindSpore's initializers reject empty shapes).
    """
    name = f"{prefix}.{param.name}"
    if not like_param or param.size == 0:
        return Parameter(zeros(param.shape, dtype), name=name, requires_grad=False)
    state = param.clone(init="zeros")
    state.name = name
    state.requires_grad = False
    if state.dtype != dtype:
        state.set_dtype(dtype)
    return state


class GroupEngine(live.LiveLoads):
    """The engine, mixed into both front doors' Cells (see the module docstring).

    A door calls :meth:`_init_engine` once its base class has set up its Parameters, then
    :meth:`_append_group` for each group added later; in graph code it calls :meth:`_update_in_graph`.
    It implements :meth:`_engine_weights`, :meth:`_group_lr` and :meth:`_group_hyper`, and may extend
    :meth:`_owned_writers`, :meth:`_hyper_loaded` and :meth:`_rewire_copy`.
    """

    # --- construction -------------------------------------------------------------------------------

    def _init_engine(self, ranges, options, *, state_dtype=None, kahan=False, fused=None, like_param=False,
                     active=None, implementations=None, together=None):
        """Builds every group's state, step count, hyperparameters and implementation.

        Args:
            ranges (Sequence[tuple[int, int]]): each group's ``(start, end)`` in :meth:`_engine_weights`.
            options (Sequence[tuple]): each group's :func:`~mindspore_radam.functional.group_options`.
            state_dtype (Optional[str]): None or ``"param"`` (:func:`state_dtype_of`).
            kahan (bool): Kahan compensation buffers, one per parameter, in its dtype.
            fused (Optional[bool]): the ``fused`` option (:func:`mindspore_radam.dispatch.select_implementation`).
            like_param (bool): the state cloned from the parameters (their parallel layout).
            active (Optional[Sequence[bool]]): groups this process updates (another rank updates the rest).
            implementations (Optional[Sequence[str]]): each group's, if the door chose them already (before
                it created anything, so that ``fused=True`` where the kernel can't run changes nothing).
            together (Optional[Sequence]): a key per group; groups of one key that share their options,
                implementation and activity are stepped by one call (:meth:`_plan_calls`). None: each alone.
        """
        self._state_dtype, self._kahan, self._fused, self._like_param = state_dtype, kahan, fused, like_param
        self._portable_compiled = frozenset()  # groups a dynamic-shape graph compiled with the portable path
        self._guarded = dispatch.current_device() == "CPU"  # see _update_in_graph
        self._ranges, self._active, self._options, self.implementations = (), (), (), []
        self.hyperparameters, self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps = (ParameterTuple(()),) * 5
        self._register(self._new_groups(ranges, options, active or [True] * len(ranges),
                                        implementations or [None] * len(ranges)))
        self._together = tuple(together) if together is not None else tuple(range(len(ranges)))
        self._plan_calls()
        self._live_key = live.new_key(self)
        self._set_layout()
        self._refresh_metadata()
        keep_state_dict_loadable(self)

    def _plan_calls(self):
        """Which groups one implementation call steps together: those of one `together` key (the nn door's
        runs of one learning rate and weight decay, however their Parameters interleave, as mindcv's
        decay/no-decay grouping does) with the same options, implementation and activity. Each group keeps
        its step count and record (checkpoint names don't change); the first group of a call (its lead)
        gives the call's step, learning rate and record, and the others' counts follow it."""
        calls = {}
        for group_id, key in enumerate(self._together):
            calls.setdefault((key, self._options[group_id], self.implementations[group_id], self._active[group_id]),
                             []).append(group_id)
        self._calls = tuple(tuple(call) for call in calls.values())
        self._call_of = {group_id: call for call in self._calls for group_id in call}
        members = [tuple(i for group_id in call for i in range(*self._ranges[group_id])) for call in self._calls]
        self._call_members = tuple(members)
        # A call over consecutive Parameters takes slices; an interleaved one gathers its tensors.
        self._call_slices = tuple((m[0], m[-1] + 1) if m and m == tuple(range(m[0], m[-1] + 1)) else None
                                  for m in members)

    def _new_groups(self, ranges, options, active, implementations):
        """Registers groups (their ranges, options, implementations) and returns their new Parameters:
        ``exp_avg``, ``exp_avg_sq``, ``kahan_comp``, step counts and hyperparameter records, as lists."""
        new = ([], [], [], [], [])
        weights = tuple(self._engine_weights())
        for group_range, group_options_, group_active, implementation in zip(ranges, options, active,
                                                                             implementations):
            start, end = group_range
            params = weights[start:end]
            group_id = len(self._ranges)
            self.implementations = self.implementations + [implementation or self._implementation_for(params)]
            self._ranges += ((start, end),)
            self._active += (bool(group_active),)
            self._options += (group_options_,)
            for p in params:
                new[0].append(new_state(p, "exp_avg", state_dtype_of(p.dtype, self._state_dtype), self._like_param))
                new[1].append(new_state(p, "exp_avg_sq", state_dtype_of(p.dtype, self._state_dtype),
                                        self._like_param))
                if self._kahan:
                    new[2].append(new_state(p, "kahan_comp", p.dtype, self._like_param))
            new[3].append(Parameter(Tensor(0, mstype.int64), name=f"step.group_{group_id}", requires_grad=False))
            # The group's record as a float64 Parameter: the update reads every number from it on the
            # device, so a value written between steps takes effect, and checkpoints carry it.
            new[4].append(Parameter(group_hyper(group_options_), name=f"hyperparameters.group_{group_id}",
                                    requires_grad=False))
        return new

    def _register(self, new):
        """Appends new groups' Parameters (as :meth:`_new_groups` returns them), the records first: MindSpore's
        loader writes in registration order, so a checkpoint whose record is refused raises before it has
        written any state (the nn door had this order)."""
        exp_avg, exp_avg_sq, kahan_comp, steps, records = new
        self.hyperparameters = ParameterTuple(tuple(self.hyperparameters) + tuple(records))
        self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps = (
            ParameterTuple(tuple(old) + tuple(added)) for old, added in zip(
                (self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps), (exp_avg, exp_avg_sq, kahan_comp, steps)))

    def _implementation_for(self, params):
        """The implementation a group of `params` gets; raises RuntimeError for ``fused=True`` where the
        kernel can't run (before anything changes)."""
        return select_implementation(self._fused, params, kahan=self._kahan)

    def _append_group(self, group_range, options, implementation=None):
        """A group added after construction (``add_param_group``): its step starts at 0, so its first step
        is t=1; our compiled step is built again to include it."""
        self._register(self._new_groups([group_range], [options], [True], [implementation]))
        self._together += (len(self._ranges) - 1,)
        self._plan_calls()
        self._set_layout()
        self._refresh_metadata()
        self._recompile()

    def _state_names(self):
        """Each Parameter's name as its state was built with it (``exp_avg.<name>``): a wrapper Cell may rename
        the weights later, as frameworks do, and checkpoints keep the state's names."""
        return [state.name[len("exp_avg."):] for state in self.exp_avg]

    def _layout_rows(self):
        """``(name_hash, group)`` per Parameter, by :meth:`_state_names`."""
        names = self._state_names()
        return [(name_hash(names[index]), group_id)
                for group_id, (start, end) in enumerate(self._ranges) for index in range(start, end)]

    def _set_layout(self):
        """The ``group_layout`` Parameter (:meth:`_layout_rows`), so that a checkpoint tells which Parameters each
        of its numbered group entries belongs to (:meth:`_group_mapping`). Never read by the update."""
        rows = self._layout_rows()
        self.group_layout = Parameter(Tensor(np.array(rows, np.int64).reshape(-1, 2)), name="group_layout",
                                      requires_grad=False)

    def _refresh_metadata(self):
        """Per-parameter constants for call-time checks (Parameter attributes can't be read in graph code),
        and what the optimizer owns made to keep its storage on every load (the network's Parameters keep
        MindSpore's semantics: :mod:`mindspore_radam.live`)."""
        weights = tuple(self._engine_weights())
        self._expected_grads = tuple((tuple(p.shape), p.dtype) for p in weights)
        self._names = tuple(p.name for p in weights)
        live.keep_in_place(self.steps, writer=self._load_step, owner=self)
        live.keep_in_place(self.hyperparameters, writer=self._load_hyperparameters, owner=self)
        live.keep_in_place((self.group_layout,), writer=self._load_layout, owner=self)
        for params, writer in self._owned_writers():
            live.keep_in_place(params, writer=writer, owner=self)
        weight_ids = {id(p) for p in weights}
        live.keep_in_place((p for p in self.get_parameters() if id(p) not in weight_ids), owner=self)

    # --- what a door supplies -----------------------------------------------------------------------

    def _engine_weights(self):
        """The network's Parameters the groups index, in order."""
        raise NotImplementedError

    def _group_lr(self, group_id, context):
        """Graph code: group `group_id`'s learning rate this step (a float32 or float64 Tensor)."""
        raise NotImplementedError

    def _group_hyper(self, group_id, context):
        """Graph code: group `group_id`'s float64 hyperparameter record this step."""
        raise NotImplementedError

    def _owned_writers(self):
        """``(Parameters, writer)`` pairs of the door's own Parameters whose loads are checked by `writer`."""
        return ()

    def _hyper_loaded(self, group_id, fields):
        """After a record was loaded into group `group_id` (fields as :func:`fields_of_hyper` gives them)."""

    def _rewire_copy(self):
        """On a fresh ``copy.deepcopy``: re-attach what points back at the optimizer."""

    def live_weights(self):
        return tuple(self._engine_weights())

    def check_trainable(self):
        """Raises ValueError when a Parameter it updates was frozen (``requires_grad=False``) since the
        optimizer was built: run before every call from Python, and while a caller's graph compiles it.
        Reads the flag without waiting for MindSpore's pipeline (:func:`mindspore_radam._internals.requires_grad`),
        and the names (which wait) only to raise."""
        frozen = [p.name for p in self._engine_weights() if not _internals.requires_grad(p)]
        if frozen:
            raise ValueError(_validation.frozen_message("optimizer.parameters", frozen))

    # --- loads --------------------------------------------------------------------------------------

    def check_checkpoint(self, checkpoint, where="load_param_into_net"):
        """Refuses a checkpoint whose entries numbered by group (``step.group_<k>``, ``hyperparameters.group_<k>``,
        ``learning_rate_group_<k>``) come from an optimizer that held other Parameters: its groups are numbered
        differently (a frozen layer's group gone, say), so each entry would land on another group, silently
        swapping learning rates and weight decays (torch's ``load_state_dict`` refuses such a layout too).
        Called by the loader's first request for our Parameters, before it writes anything (the network's
        weights in an optimizer's checkpoint included), and again as it writes a group entry. Returns the
        :meth:`_group_mapping`."""
        if not any(key.startswith(GROUP_ENTRIES) for key in checkpoint):
            return {}  # the state of each Parameter alone: it loads by name
        theirs = {key[len("exp_avg."):] for key in checkpoint if key.startswith("exp_avg.")}
        names = self._state_names()
        ours = set(names)
        # MindSpore saves no zero-size tensor: such a Parameter's state is missing from every checkpoint.
        missing = {name for name, state in zip(names, self.exp_avg) if state.size > 0} - theirs
        if theirs and (theirs - ours or missing):
            example = sorted(theirs - ours or missing)[0]
            raise ValueError(
                f"{where}: this checkpoint's optimizer held other Parameters ({example!r} is in one of the two "
                f"only), so its entries numbered by group (step.group_<k>, hyperparameters.group_<k>, "
                f"learning_rate_group_<k>) would land on other groups; nothing was loaded. {PER_PARAMETER_LOAD}")
        return self._group_mapping(checkpoint, where)

    # A door whose numbered entries are all engine groups' can load a checkpoint of its groups in another order.
    REMAPS_GROUPS = True

    def _group_mapping(self, checkpoint, where):
        """``{our group: the checkpoint's group}`` for the groups whose Parameters are one group of the checkpoint
        (its ``group_layout``; the same groups in another order, say). Raises ValueError, as torch's
        ``load_state_dict`` does, when a group's Parameters are spread over several of the checkpoint's groups or
        share one with others (a decay/no-decay split, a merge), or (written before the layout was recorded)
        when the checkpoint has another number of groups: its numbered entries would land on other groups."""
        ours = {group_id: set() for group_id in range(len(self._ranges))}
        for hashed, group_id in self._layout_rows():
            ours[group_id].add(hashed)
        layout = checkpoint.get("group_layout")
        if layout is None:
            numbers = {int(key.rsplit("_", 1)[1]) for key in checkpoint if key.startswith("step.group_")}
            if numbers and numbers != set(ours):
                self._refuse_layout(where, f"it has {len(numbers)} groups, this optimizer {len(ours)}")
            return {}
        rows = np.asarray(layout.asnumpy(), np.int64).reshape(-1, 2)
        theirs, group_of = defaultdict(set), {}
        for hashed, group_id in rows.tolist():
            theirs[group_id].add(hashed)
            group_of[hashed] = group_id
        mapping = {}
        for group_id, members in ours.items():
            if not members:
                continue
            groups = {group_of.get(hashed) for hashed in members}
            their_group = next(iter(groups))
            if len(groups) != 1 or their_group is None or theirs[their_group] != members:
                spread = sorted(group for group in groups if group is not None)
                self._refuse_layout(where, f"group {group_id} here holds Parameters of its groups {spread}"
                                    if len(spread) > 1 else f"group {group_id} here shares its group {spread} with "
                                    f"other Parameters")
            mapping[group_id] = their_group
        if not self.REMAPS_GROUPS and any(ours_ != theirs_ for ours_, theirs_ in mapping.items()):
            self._refuse_layout(where, "its groups come in another order, which this optimizer's learning rates "
                                       "(numbered by nn.Optimizer's groups) can't follow")
        return mapping

    @staticmethod
    def _refuse_layout(where, how):
        raise ValueError(
            f"{where}: this checkpoint's parameter groups hold these Parameters in another layout ({how}), so its "
            f"step counts, learning rates and hyperparameters, numbered by group, can't be matched to this "
            f"optimizer's groups (torch refuses such a load too); nothing was loaded. {PER_PARAMETER_LOAD}")

    def _entry_value(self, param, value):
        """The value to load into group entry `param` (``<entry>_<k>``): the checkpoint's entry of the group that
        held group k's Parameters (:meth:`_group_mapping`), checked first (:meth:`check_checkpoint`)."""
        checkpoint = _internals.loading_dict()
        if not checkpoint:
            return value
        prefix, _, number = param.name.rpartition("_")
        theirs = self.check_checkpoint(checkpoint, repr(param.name)).get(int(number), int(number))
        entry = checkpoint.get(f"{prefix}_{theirs}")
        return value if theirs == int(number) or entry is None else Tensor(entry.asnumpy())

    def _load_layout(self, param, value):  # pylint: disable=unused-argument
        """A checkpoint's ``group_layout`` is read by :meth:`_group_mapping`; this optimizer keeps its own."""

    def _load_step(self, param, value):
        """A whole value written into a ``step.group_<k>`` Parameter: a count, >= 0."""
        value = self._entry_value(param, value)
        step = int(value.asnumpy().reshape(()))
        if step < 0:
            raise ValueError(f"{param.name!r} must be a step count >= 0, but got {step}")
        write_value(param, value)

    def _load_hyperparameters(self, param, value):
        """A whole value written into a ``hyperparameters.group_<k>`` Parameter (a checkpoint, ``set_data``):
        validated like the constructor's arguments, the structure switched (:meth:`_apply_options`), written,
        and the door told (:meth:`_hyper_loaded`). Groups stepped by one call share their values: the lead's
        record is copied into the others (MindSpore's loader writes it first), and another group's must equal
        it. Nothing changes when it raises."""
        value = self._entry_value(param, value)
        group_id = next(i for i, hyper in enumerate(self.hyperparameters) if hyper is param)
        where = f"{param.name!r}"
        fields = _validation.check_hyperparameters(fields_of_hyper(value, where), where)
        options = group_options(fields)
        call = self._call_of[group_id]
        vector, lead = group_hyper(options), call[0]
        if lead != group_id and not np.array_equal(vector.asnumpy(), self.hyperparameters[lead].asnumpy()):
            raise ValueError(
                f"{where}: this group is stepped together with {self.hyperparameters[lead].name!r} (Parameters of one "
                f"learning rate and weight decay share one update and one record of hyperparameters), which holds "
                f"other values; write that record instead (it carries every group of the setting)")
        if lead != group_id:
            call = (group_id,)
        for member in call:
            self._apply_options(member, options, where)
        for member in call:
            write_value(self.hyperparameters[member], vector)
            self._hyper_loaded(member, fields)

    def _apply_options(self, group_id, options, what):
        """Makes `options` group `group_id`'s. A change of the update's structure (which lines of the
        portable update run) recompiles our step for calls from Python, or raises ValueError naming `what`
        when a caller's graph compiled the optimizer inline (it can't follow). The fused kernel reads the
        structure on the device and follows either way."""
        old, new = structure(self._options[group_id]), structure(options)
        # The portable path runs this group: its choice, or a dynamic-shape graph compiled it there.
        portable = self.implementations[group_id] == PORTABLE or group_id in self._portable_compiled
        changed = portable and old != new
        if changed and live.is_inlined(self):
            raise ValueError(
                f"{what}: this switches {STRUCTURE_NAMES} from {old} to {new}, which changes the compiled "
                f"update, and a graph of yours (a jit train step, a "
                f"GRAPH_MODE train-step Cell, Model) compiled this optimizer inline with the old setting and "
                f"can't follow it. Set it before that graph compiles, or build a new optimizer with the new setting "
                f"(and a new train step) and load this one's state into it without its hyperparameters, which "
                f"would put the old setting back: mindspore.load_param_into_net(new, {{k: v for k, v in "
                f"old.parameters_dict().items() if not k.startswith('hyperparameters.')}}). Values (lr, betas, "
                f"eps, threshold, a non-zero weight_decay, degenerated_to_sgd) can change at any time.")
        self._options = self._options[:group_id] + (options,) + self._options[group_id + 1:]
        if changed:
            self._recompile()

    def _recompile(self):
        live.recompile(self)

    def __deepcopy__(self, memo):
        """``copy.deepcopy``: an independent optimizer with copied Parameters and state, a step compiled for
        it on its first call (see :mod:`mindspore_radam._cell`)."""
        new = deepcopy_cell(self, memo)
        new._live_key = live.new_key(new)  # pylint: disable=protected-access
        new._portable_compiled = frozenset()  # pylint: disable=protected-access
        live.forget_compiled_storage(new)
        new._rewire_copy()  # pylint: disable=protected-access
        new._refresh_metadata()  # pylint: disable=protected-access
        new._recompile()  # pylint: disable=protected-access
        return new

    # --- the step (graph code) ----------------------------------------------------------------------

    def _update_in_graph(self, gradients, grads_finite, context):
        """Every group's update, behind the CPU runtime guard.

        On CPU the update sits behind one Tensor condition, the only control flow in our graph; it
        is a runtime guard, not math (every branch of the math is a ``select``). MindSpore 2.10's
        CPU runtime stalls a ``jit`` function called from PyNative whose graph computes gradients
        and writes Parameters with no control flow at all: on 2 cores its pipeline threads
        busy-wait and starve the kernel threads. Every optimizer without control flow stalls there
        (a trivial HyperMap SGD, ``nn.SGD``, ``nn.Adam``, the experimental ``SGD`` and ``Adam``:
        LeNet5 steps of 160-190 ms against 45 ms); the built-in RAdam escapes through its
        per-tensor ``if rho_t > 5``. With this guard our LeNet5 step takes what the built-in's
        does (``scripts/stall_reproducer.py``, ``scripts/train_step_benchmark.py``,
        docs/train_step_performance.md). The condition is ``grads_finite`` when given (an overflowed
        step is skipped), else an always-true comparison of the first group's step count; either
        way the implementations still gate on ``grads_finite`` with ``select``, so the result does
        not depend on the guard. Elsewhere (GPU, Ascend) the branch would cost a device-to-host
        read of the condition each step, and whether their runtimes stall is unmeasured (no such
        device was available), so there is no guard there.
        """
        if self._guarded:
            if self._guard_condition(grads_finite):
                self._update_groups(gradients, grads_finite, context)
            return True
        return self._update_groups(gradients, grads_finite, context)

    def _guard_condition(self, grads_finite):
        if grads_finite is None:
            return self.steps[0] >= 0
        return finite_flag(grads_finite)

    def _update_groups(self, gradients, grads_finite, context):
        """Every call's step (:meth:`_plan_calls`), each by its lead group's implementation; the other groups'
        step counts then take the lead's."""
        weights = self._engine_weights()
        implementations = compiled_implementations(self._live_key, tuple(self.implementations), self._fused)
        done = True
        for call_id, call in enumerate(self._calls):
            lead, members = call[0], self._call_members[call_id]
            if not members or not self._active[lead]:
                continue
            update = UPDATES[implementations[lead]]
            updated = update(params=_take(weights, members, self._call_slices[call_id]),
                             grads=_take(gradients, members, self._call_slices[call_id]),
                             exp_avg=_take(self.exp_avg, members, self._call_slices[call_id]),
                             exp_avg_sq=_take(self.exp_avg_sq, members, self._call_slices[call_id]),
                             step=self.steps[lead], lr=self._group_lr(lead, context),
                             hyper=self._group_hyper(lead, context), options=self._options[lead], finite=grads_finite,
                             kahan_comp=_take(self.kahan_comp, members, self._call_slices[call_id]) if self._kahan
                             else None)
            for group_id in call[1:]:
                updated = ops.depend(updated, ops.assign(self.steps[group_id], ops.depend(self.steps[lead], updated)))
            done = ops.depend(done, updated)
        return done


def _take(items, members, span):
    """Graph code: the tensors of one call: a slice when its members are consecutive (`span`), else gathered."""
    if span is not None:
        return items[span[0]:span[1]]
    return tuple([items[i] for i in members])
