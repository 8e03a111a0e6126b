r"""The RAdam optimizer Cell: validation, defaults, state, and the loop over parameter groups."""
import warnings

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, jit, ops
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import Optimizer

from mindspore_radam import _validation, live
from mindspore_radam._cell import deepcopy_cell, keep_state_dict_loadable
from mindspore_radam._versions import zeros
from mindspore_radam.dispatch import IMPLEMENTATIONS, select_implementation
from mindspore_radam.functional import (STRUCTURE_NAMES, compute_dtype, fields_of_hyper, finite_flag, group_hyper,
                                        group_options, structure, write_value)


def restore_parse_method(cell):
    """Points MindSpore's graph parser back at ``cell.construct``.

    Running a ``jit`` method of a Cell from Python (our ``_step``) leaves the method's name in the
    Cell's ``__parse_method__`` (MindSpore 2.10, ``mindspore/graph/api.py``), so a graph that calls
    the Cell later parses that method instead of ``construct``: a warm-up step from Python then
    broke every ``jit`` train step with "The parameters number of the function is 2, but the number
    of provided arguments is 1" (the built-in RAdam fails the same way).
    """
    cell.__parse_method__ = "construct"


def _zeros_like(params, prefix, dtype_of=lambda dtype: dtype):
    """Named zero state for `params`, of dtype ``dtype_of(param.dtype)`` (``ParameterTuple.clone``
    rejects zero-size parameters)."""
    return ParameterTuple(Parameter(zeros(p.shape, dtype_of(p.dtype)), name=f"{prefix}.{p.name}",
                                    requires_grad=False) for p in params)


class RAdam(live.LiveLoads, Optimizer):
    r"""Rectified Adam (Liu et al. 2019, arXiv 1908.03265), numerically as ``torch.optim.RAdam``.

    A drop-in replacement for :class:`mindspore.experimental.optim.RAdam`: change the import and
    keep the train step. For each parameter group, at the group's own step :math:`t`:

    .. math::
        \begin{aligned}
        g_t &\leftarrow -\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize else } \nabla_\theta f_t(\theta_{t-1}) \\
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \quad \text{(if not decoupled\_weight\_decay)} \\
        \theta_{t-1} &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \quad \text{(if decoupled\_weight\_decay)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &\leftarrow 2/(1-\beta_2) - 1, \quad
        \rho_t \leftarrow \rho_\infty - 2t\beta_2^t/(1-\beta_2^t) \\
        \text{if } \rho_t > threshold &: \quad
        r_t \leftarrow \sqrt{\tfrac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}, \quad
        \theta_t \leftarrow \theta_{t-1} - \gamma r_t \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
            \frac{m_t}{\sqrt{v_t}+\epsilon} \\
        \text{else, if degenerated\_to\_sgd} &: \quad
        \theta_t \leftarrow \theta_{t-1} - \gamma\, m_t/(1-\beta_1^t) \\
        \text{else} &: \quad \theta_t \leftarrow \theta_{t-1}
        \end{aligned}

    The scalars (bias corrections, :math:`\rho_t`, :math:`r_t`) are computed once per group per
    step in float64 (:mod:`mindspore_radam.schedule`); the per-element lines are
    :mod:`mindspore_radam.functional`.

    Args:
        params (Union[list[Parameter], list[dict]]): Parameters, or dicts defining parameter groups.
            A dict holds ``'params'`` and may override any hyperparameter below except ``maximize``'s
            keyword-only status; other keys are kept as metadata.
        lr (Union[int, float, Tensor]): learning rate, >= 0; a Tensor holds one element (any rank).
            Kept exactly, as a float64 Parameter (``optimizer.lrs[i]``). Default: ``1e-3``.
        betas (Tuple[float, float]): coefficients of the running averages, each in [0, 1).
            Default: ``(0.9, 0.999)``.
        eps (float): added to :math:`\sqrt{v_t}`, >= 0. Default: ``1e-8``.
        weight_decay (float): weight decay coefficient, >= 0. Default: ``0.0``.
        decoupled_weight_decay (bool): decay the weights directly (AdamW-style) instead of adding
            an L2 term to the gradient. Default: ``False``.
        maximize (bool): maximize the objective instead of minimizing it. Default: ``False``.
        threshold (float): the rectified update is used when :math:`\rho_t >` ``threshold``.
            Values below 4 can make :math:`r_t` undefined. Default: ``5.0``.
        degenerated_to_sgd (bool): take an SGD-with-momentum step while :math:`\rho_t \le`
            ``threshold`` (as torch and the paper's code do); if ``False``, the parameters stay
            unchanged on those steps while the moments still advance. Default: ``True``.
        state_dtype (Optional[str]): the dtype of ``exp_avg``/``exp_avg_sq``. ``None``: float32 for
            float16/bfloat16 parameters, the parameter's dtype otherwise; ``"param"``: always the
            parameter's dtype, which halves the state of half-precision parameters at the cost of
            precision. Updates are computed in float32 for half-precision parameters either way,
            then rounded into the parameter. Default: ``None``.
        kahan_summation (bool): keep a Kahan compensation buffer per parameter (``kahan_comp.*``, in
            the parameter's dtype) that carries what rounding the update into the parameter lost,
            so small updates to bfloat16/float16 parameters are not dropped. Default: ``False``.
        fused (Optional[bool]): ``None`` runs each group with the fused C++ kernel where it can
            (CPU, float32 parameters, no Kahan summation, library built) and with the portable
            ``HyperMap`` path elsewhere; ``False`` uses the portable path everywhere; ``True``
            demands the kernel and raises ``RuntimeError`` with the reason if it can't run
            (:mod:`mindspore_radam.dispatch` says why). ``optimizer.implementations`` lists the
            choice per group. Default: ``None``.

    Inputs:
        - **gradients** (tuple[Tensor]) - one gradient per Parameter, in ``optimizer.parameters``
          order, e.g. from ``mindspore.value_and_grad(fn, None, optimizer.parameters)``.
        - **grads_finite** (Tensor, optional) - a bool Tensor with one element, e.g.
          ``mindspore.amp.all_finite(grads)`` in a loss-scaled train step. When it is False the
          call changes nothing: parameters, moments and step counts stay bit-identical; the
          implementations decide it on the device with ``select``. Default: ``None`` (always step).

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if an argument has an invalid value, or the gradients do not match the
            parameters. Errors are raised before any parameter or state changes.

    Supported Platforms:
        ``Ascend`` ``GPU`` ``CPU``
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, maximize=False, threshold=5.0,
                 degenerated_to_sgd=True, state_dtype=None, kahan_summation=False, fused=None):
        defaults = _validation.check_hyperparameters(dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
            threshold=threshold, degenerated_to_sgd=degenerated_to_sgd))
        groups = _validation.check_param_groups(params)
        self._state_dtype = _validation.check_state_dtype(state_dtype)
        self._kahan = _validation.check_flag(kahan_summation, "kahan_summation")
        self._fused = _validation.check_fused(fused)
        implementations = [select_implementation(self._fused, group["params"], kahan=self._kahan)
                           for group in groups]
        self._state_ready = False
        self._live_key = live.new_key(self)
        super().__init__(groups, defaults)
        self.implementations = implementations
        self._guarded = ms.get_context("device_target") == "CPU"  # see _update_in_graph
        # Registered, so the learning rates a scheduler set are saved in checkpoints too.
        self.lrs = ParameterTuple(self.lrs)
        self.exp_avg = self._new_state(self.parameters, "exp_avg")
        self.exp_avg_sq = self._new_state(self.parameters, "exp_avg_sq")
        self.kahan_comp = _zeros_like(self.parameters if self._kahan else (), "kahan_comp")
        self.steps = ParameterTuple([self._new_step(i) for i in range(len(self.param_groups))])
        self._options = tuple(group_options(group) for group in self.param_groups)
        self.hyperparameters = ParameterTuple(self._new_hyper(i) for i in range(len(self.param_groups)))
        self.param_groups = [live.LiveGroup(self, i, group) for i, group in enumerate(self.param_groups)]
        self._refresh_metadata()
        self._state_ready = True
        keep_state_dict_loadable(self)

    def _new_state(self, params, prefix):
        dtype_of = (lambda dtype: dtype) if self._state_dtype == "param" else compute_dtype
        return _zeros_like(params, prefix, dtype_of)

    @staticmethod
    def _build_single_lr(learning_rate, name):
        """A group's learning rate as a float64 Parameter (the base class's is float32): the value the
        user gave, exactly, as torch keeps it in a Python float. Schedulers write float32 or float64."""
        if isinstance(learning_rate, Tensor):
            return Parameter(learning_rate.reshape(()).astype(mstype.float64), name)
        return Parameter(Tensor(float(learning_rate), mstype.float64), name)

    @staticmethod
    def _new_step(group_id):
        return Parameter(Tensor(0, mstype.int64), name=f"step.group_{group_id}", requires_grad=False)

    def _new_hyper(self, group_id):
        """The group's HYPER_FIELDS as a float64 Parameter: the update reads every number from it on the
        device, so a value written between steps takes effect, and checkpoints carry it."""
        return Parameter(group_hyper(self._options[group_id]), name=f"hyperparameters.group_{group_id}",
                         requires_grad=False)

    def _refresh_metadata(self):
        """Per-parameter constants for call-time checks (Parameter attributes can't be read in graph
        code), and the optimizer's own Parameters made to keep their storage when a value is loaded into
        them (the network's keep MindSpore's semantics: see :mod:`mindspore_radam.live`)."""
        self._expected_grads = tuple((tuple(p.shape), p.dtype) for p in self.parameters)
        self._names = tuple(p.name for p in self.parameters)
        live.keep_in_place(self.exp_avg + self.exp_avg_sq + self.kahan_comp, owner=self)
        live.keep_in_place(self.lrs, writer=self._load_lr, owner=self)
        live.keep_in_place(self.steps, writer=self._load_step, owner=self)
        live.keep_in_place(self.hyperparameters, writer=self._load_hyperparameters, owner=self)

    # Group keys whose values the compiled update reads; assigning one goes through _set_group_values.
    LIVE_KEYS = _validation.HYPERPARAMETERS + ("params",)

    def _set_group_values(self, group_id, changes):
        """``param_groups[group_id][key] = value`` for each item of `changes` (one assignment, or one
        ``update``), all or nothing: validated, written into the optimizer's Parameters in place (it takes
        effect from the next step in every pattern), and returned normalized for the dict.

        Raises:
            TypeError, ValueError: a bad value, ``params`` (the optimizer's state and compiled step are built
                for its Parameters), or a switch of the update's structure after a graph of the caller's
                compiled the optimizer inline. Nothing has changed then.
        """
        where = f"param_groups[{group_id}]"
        if "params" in changes:
            raise ValueError(f"{where}['params'] can't be replaced: the optimizer's state and compiled step are "
                             f"built for its Parameters; use add_param_group to add Parameters, or build a new "
                             f"optimizer")
        checked = _validation.check_hyperparameters(changes, where)
        values = {key: value for key, value in checked.items() if key != "lr"}
        if values:
            options = group_options(dict(self.param_groups[group_id], **values))
            self._apply_options(group_id, options, f"{where}{sorted(values)}")
            write_value(self.hyperparameters[group_id], group_hyper(options))
        if "lr" in checked and checked["lr"] is not self.lrs[group_id]:
            lr = checked["lr"]
            write_value(self.lrs[group_id], lr if isinstance(lr, Tensor) else Tensor(float(lr), mstype.float64))
            checked["lr"] = self.lrs[group_id]
        return checked

    def _load_lr(self, param, value):
        """A whole value written into a ``learning_rate_group_<i>`` Parameter (a checkpoint, ``set_data``):
        checked like the constructor's ``lr`` before it is written."""
        _validation.check_lr(float(value.asnumpy().reshape(())), repr(param.name))
        write_value(param, value)

    def _load_step(self, param, value):  # pylint: disable=no-self-use
        """A whole value written into a ``step.group_<i>`` Parameter: a count, >= 0."""
        step = int(value.asnumpy().reshape(()))
        if step < 0:
            raise ValueError(f"{param.name!r} must be a step count >= 0, but got {step}")
        write_value(param, value)

    def _load_hyperparameters(self, param, value):
        """A whole value written into a ``hyperparameters.group_<i>`` Parameter (``load_param_into_net``,
        ``set_data``): validated like the constructor's arguments, then written, and the group dict synced."""
        group_id = next(i for i, hyper in enumerate(self.hyperparameters) if hyper is param)
        where = f"{param.name!r} (param_groups[{group_id}])"
        checked = _validation.check_hyperparameters(fields_of_hyper(value, where), where)
        self._apply_options(group_id, group_options(dict(self.param_groups[group_id], **checked)), where)
        write_value(param, group_hyper(self._options[group_id]))
        for key, item in checked.items():
            self.param_groups[group_id].store(key, item)

    def _apply_options(self, group_id, options, what):
        """Makes `options` the group's: a change of the update's structure (which lines run) recompiles our
        step, or raises ValueError naming `what` when a caller's graph compiled the optimizer inline."""
        old, new = structure(self._options[group_id]), structure(options)
        changed = self.implementations[group_id] == "hypermap" and old != new
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

    def add_param_group(self, param_group):
        """Adds a parameter group; its step count starts at 0, so its first step is t=1.

        The group is validated completely before the optimizer changes. An empty group
        (``{"params": []}``) is kept in ``param_groups`` (schedulers drive its lr) and steps nothing.
        A graph of yours that compiled the optimizer inline before keeps updating the old groups
        only: build the train step again (a warning says so).
        """
        owned = {id(p) for group in self.param_groups for p in group["params"]}
        group = _validation.check_group(param_group, "param_group", owned)
        if not self._state_ready:
            super().add_param_group(group)
            return
        implementation = select_implementation(self._fused, group["params"], kahan=self._kahan)
        self.implementations = self.implementations + [implementation]
        self.lrs = list(self.lrs)  # the base class appends to it
        super().add_param_group(group)
        group_id = len(self.param_groups) - 1
        self.param_groups[group_id] = live.LiveGroup(self, group_id, self.param_groups[group_id])
        self.lrs = ParameterTuple(self.lrs)
        self.parameters = ParameterTuple(tuple(self.parameters))
        self.exp_avg = ParameterTuple(self.exp_avg + self._new_state(group["params"], "exp_avg"))
        self.exp_avg_sq = ParameterTuple(self.exp_avg_sq + self._new_state(group["params"], "exp_avg_sq"))
        if self._kahan:
            self.kahan_comp = ParameterTuple(self.kahan_comp + _zeros_like(group["params"], "kahan_comp"))
        self.steps = ParameterTuple(self.steps + (self._new_step(group_id),))
        self._options = self._options + (group_options(self.param_groups[group_id]),)
        self.hyperparameters = ParameterTuple(self.hyperparameters + (self._new_hyper(group_id),))
        self._refresh_metadata()
        self._recompile()
        if live.is_inlined(self):
            warnings.warn("add_param_group: a graph of yours (a jit train step, a GRAPH_MODE train-step Cell) "
                          "compiled this optimizer inline before the group was added and keeps updating the old "
                          "groups only; build the train step again (a new jit function or Cell) so it compiles "
                          "with the new group", RuntimeWarning, stacklevel=2)

    def __deepcopy__(self, memo):
        """``copy.deepcopy``: an independent optimizer with copied Parameters and state, live groups of its
        own and a step compiled for it on its first call (see :mod:`mindspore_radam._cell`)."""
        new = deepcopy_cell(self, memo)
        new._live_key = live.new_key(new)  # pylint: disable=protected-access
        live.forget_compiled_storage(new)
        new.param_groups = [live.LiveGroup(new, i, group) for i, group in enumerate(new.param_groups)]
        new._refresh_metadata()  # pylint: disable=protected-access
        new._recompile()  # pylint: disable=protected-access
        return new

    def torch_state_dict(self):
        """A torch-style view of the state, for inspection.

        Returns ``{"state": {i: {"step", "exp_avg", "exp_avg_sq"}}, "param_groups": [...]}`` where
        ``i`` indexes ``optimizer.parameters``, ``exp_avg``/``exp_avg_sq`` (and ``kahan_comp`` with
        Kahan summation) are the state Parameters
        themselves (not copies), ``step`` is the group's count as an int, and each group lists its
        hyperparameters (``lr`` as a float), its parameter indices and its implementation. To save
        or restore state, use ``mindspore.save_checkpoint``/``load_checkpoint`` on the optimizer.
        (``state_dict()`` is ``Cell.state_dict``, as on every Cell.)
        """
        state, groups = {}, []
        for group_id, group in enumerate(self.param_groups):
            indices = list(range(self.group_start_id[group_id], self.group_start_id[group_id + 1]))
            step = int(self.steps[group_id].asnumpy())
            for index in indices:
                state[index] = {"step": step, "exp_avg": self.exp_avg[index], "exp_avg_sq": self.exp_avg_sq[index]}
                if self._kahan:
                    state[index]["kahan_comp"] = self.kahan_comp[index]
            view = {key: value for key, value in group.items() if key not in ("params", "lr", "initial_lr")}
            view.update(lr=float(self.lrs[group_id].asnumpy()), params=indices,
                        implementation=self.implementations[group_id])
            groups.append(view)
        return {"state": state, "param_groups": groups}

    def __call__(self, gradients, grads_finite=None):
        """A call from Python, in PyNative as in GRAPH_MODE: validates, then runs the step as one
        compiled graph (``_step``) that takes the gradients as a ``mutable`` tuple, i.e. as data (a
        plain tuple is keyed by its elements: 22 vs 2.6 ms to pass in 200 new tensors). MindSpore's
        own GRAPH_MODE ``Cell`` call would compile ``construct`` whole and pass the tuple in at about
        twice the cost per gradient tensor (a fused step on 200 one-element tensors: 10.4 ms that
        way, 4.9 ms this way).

        Inside graph code (a ``jit`` train step, a GRAPH_MODE train-step Cell) the parser inlines
        :meth:`construct` instead, and this method is not used.
        """
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        _validation.check_grads_finite(grads_finite)
        live.follow_storage(self)
        done = self._step(ms.mutable(tuple(gradients)), grads_finite)
        restore_parse_method(self)
        return done

    def construct(self, gradients, grads_finite=None):
        """Graph code: validates (at compile time), then updates every group inline."""
        live.note_inlined(self._live_key)
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        _validation.check_grads_finite(grads_finite)
        return self._update_in_graph(gradients, grads_finite)

    @jit(backend="ms_backend")
    def _step(self, gradients, grads_finite):
        """`_update_groups` compiled as one graph, for calls from Python."""
        return self._update_groups(gradients, grads_finite)

    def _update_in_graph(self, gradients, grads_finite):
        """The step inlined into the caller's graph (a ``jit`` train step, a GRAPH_MODE Cell).

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
                self._update_groups(gradients, grads_finite)
            return True
        return self._update_groups(gradients, grads_finite)

    def _guard_condition(self, grads_finite):
        if grads_finite is None:
            return self.steps[0] >= 0
        return finite_flag(grads_finite)

    def _update_groups(self, gradients, grads_finite):
        """Every non-empty group's step, each by its implementation."""
        done = True
        for group_id in range(len(self._options)):
            start, end = self.group_start_id[group_id], self.group_start_id[group_id + 1]
            if start == end:
                continue
            update = IMPLEMENTATIONS[self.implementations[group_id]]
            updated = update(params=self.parameters[start:end], grads=gradients[start:end],
                             exp_avg=self.exp_avg[start:end], exp_avg_sq=self.exp_avg_sq[start:end],
                             step=self.steps[group_id], lr=self.lrs[group_id], hyper=self.hyperparameters[group_id],
                             options=self._options[group_id], finite=grads_finite,
                             kahan_comp=self.kahan_comp[start:end] if self._kahan else None)
            done = ops.depend(done, updated)
        return done

