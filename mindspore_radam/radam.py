r"""The RAdam optimizer Cell: validation, defaults, state, and the loop over parameter groups."""
import warnings
from collections.abc import Iterable

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, jit
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import Optimizer

from mindspore_radam import _validation, live
from mindspore_radam._internals import restore_parse_method
from mindspore_radam.dispatch import select_implementation
from mindspore_radam.engine import GroupEngine
from mindspore_radam.functional import group_hyper, group_options, write_value


class RAdam(GroupEngine, Optimizer):
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
        groups = _check_params(params)
        state_dtype = _validation.check_state_dtype(state_dtype)
        kahan = _validation.check_flag(kahan_summation, "kahan_summation")
        fused = _validation.check_fused(fused)
        # Chosen first: fused=True where the kernel can't run raises before anything is created.
        implementations = [select_implementation(fused, group["params"], kahan=kahan) for group in groups]
        self._state_ready = False
        super().__init__(groups, defaults)
        # Registered, so the learning rates a scheduler set are saved in checkpoints too.
        self.lrs = ParameterTuple(self.lrs)
        starts = self.group_start_id
        self._init_engine([(starts[i], starts[i + 1]) for i in range(len(self.param_groups))],
                          [group_options(group) for group in self.param_groups],
                          state_dtype=state_dtype, kahan=kahan, fused=fused, implementations=implementations)
        self.param_groups = [live.LiveGroup(self, i, group) for i, group in enumerate(self.param_groups)]
        self._state_ready = True

    @staticmethod
    def _build_single_lr(learning_rate, name):
        """A group's learning rate as a float64 Parameter (the base class's is float32): the value the
        user gave, exactly, as torch keeps it in a Python float. Schedulers write float32 or float64."""
        if isinstance(learning_rate, Tensor):
            return Parameter(learning_rate.reshape(()).astype(mstype.float64), name)
        return Parameter(Tensor(float(learning_rate), mstype.float64), name)

    # --- the engine's hooks (mindspore_radam.engine) ---

    def _engine_weights(self):
        return self.parameters

    def _group_lr(self, group_id, context):
        return self.lrs[group_id]

    def _group_hyper(self, group_id, context):
        return self.hyperparameters[group_id]

    def _owned_writers(self):
        return ((self.lrs, self._load_lr),)

    def _hyper_loaded(self, group_id, fields):
        for key, item in fields.items():
            self.param_groups[group_id].store(key, item)

    def _rewire_copy(self):
        self.param_groups = [live.LiveGroup(self, i, group) for i, group in enumerate(self.param_groups)]

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
        value = self._entry_value(param, value)
        _validation.check_lr(float(value.asnumpy().reshape(())), repr(param.name))
        write_value(param, value)

    def add_param_group(self, param_group):
        """Adds a parameter group; its step count starts at 0, so its first step is t=1.

        The group is validated completely before the optimizer changes. An empty group
        (``{"params": []}``) is kept in ``param_groups`` (schedulers drive its lr) and steps nothing.
        A graph of yours that compiled the optimizer inline before keeps updating the old groups
        only: build the train step again (a warning says so).
        """
        taken = {param.name: param for group in self.param_groups for param in group["params"]}
        group = _check_group(param_group, "param_group", taken)
        if not self._state_ready:
            super().add_param_group(group)
            return
        implementation = self._implementation_for(group["params"])  # fused=True where it can't run raises first
        self.lrs = list(self.lrs)  # the base class appends to it
        super().add_param_group(group)
        group_id = len(self.param_groups) - 1
        self.param_groups[group_id] = live.LiveGroup(self, group_id, self.param_groups[group_id])
        self.lrs = ParameterTuple(self.lrs)
        self.parameters = ParameterTuple(tuple(self.parameters))
        self._append_group((self.group_start_id[group_id], self.group_start_id[group_id + 1]),
                           group_options(self.param_groups[group_id]), implementation)
        if live.is_inlined(self):
            warnings.warn("add_param_group: a graph of yours (a jit train step, a GRAPH_MODE train-step Cell) "
                          "compiled this optimizer inline before the group was added and keeps updating the old "
                          "groups only; build the train step again (a new jit function or Cell) so it compiles "
                          "with the new group", RuntimeWarning, stacklevel=2)

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
        self.check_trainable()
        _validation.check_gradients_from_python(gradients, self._expected_grads, self._names)
        _validation.check_grads_finite(grads_finite, attributes=False)
        live.follow_storage(self)
        done = self._step(ms.mutable(tuple(gradients)), grads_finite)
        restore_parse_method(self)
        return done

    def construct(self, gradients, grads_finite=None):
        """Graph code: validates (at compile time), then updates every group inline."""
        live.note_inlined(self._live_key)
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        _validation.check_grads_finite(grads_finite)
        return self._update_in_graph(tuple(gradients), grads_finite, ())  # a list, too

    @jit(backend="ms_backend")
    def _step(self, gradients, grads_finite):
        """`_update_groups` compiled as one graph, for calls from Python; the gradients' shapes and dtypes
        are checked while it compiles (for each new signature), before anything runs."""
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        _validation.check_grads_finite(grads_finite)
        return self._update_groups(gradients, grads_finite, ())


def _check_params(params):
    """The core door's `params`: Parameters, or group dicts (torch's convention: a group may override any
    hyperparameter and keep other keys as metadata). Returns a list of group dicts with checked values."""
    if params is None:
        raise TypeError("params must be a list of Parameters or a list of dicts, but got None")
    if isinstance(params, (set, frozenset)):
        raise TypeError("params must be an ordered collection (list or tuple), but got a set, whose "
                        "order changes between runs")
    if isinstance(params, (Parameter, Tensor)):
        raise TypeError("params must be a list of Parameters or a list of dicts, but got a single "
                        f"{'Parameter' if isinstance(params, Parameter) else 'Tensor'}; wrap it in a list")
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(f"params must be a list of Parameters or a list of dicts, but got "
                        f"{_validation.class_name(params)}")
    items = list(params)
    if not items:
        raise ValueError("params is empty: the optimizer got no Parameters to optimize")
    if all(isinstance(item, dict) for item in items):
        groups = items
    elif any(isinstance(item, dict) for item in items):
        raise TypeError("params must be either all Parameters or all dicts, not a mix")
    else:
        groups = [{"params": _validation.check_param_list(items, "params")}]  # errors name params[i]
    taken = {}
    return [_check_group(group, f"params[{index}]" if isinstance(items[0], dict) else "params", taken)
            for index, group in enumerate(groups)]


def _check_group(group, where, taken):
    """One group dict, named `where` in errors; `taken` maps the names of the Parameters already owned to
    them (:func:`mindspore_radam._validation.check_unique`), and is updated."""
    if not isinstance(group, dict):
        raise TypeError(f"{where} must be a dict with a 'params' key, but got {_validation.class_name(group)}")
    if "params" not in group:
        raise ValueError(f"{where} has no 'params' key")
    _validation.check_group_keys(group, where, RAdam.LIVE_KEYS, metadata=True)
    group_params = _validation.check_param_list(group["params"], f"{where}['params']")  # may be empty, as in torch
    _validation.check_unique(group_params, where, taken)
    checked = dict(group)
    checked.update(_validation.check_hyperparameters(group, where))
    checked["params"] = group_params
    return checked
