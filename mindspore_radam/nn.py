r"""RAdam for MindSpore's high-level API: a :class:`mindspore.nn.Optimizer`.

:class:`RAdam` here is the optimizer of :mod:`mindspore_radam` behind the ``nn`` family's front door,
so it works where an ``nn`` optimizer is required: ``mindspore.train.Model``, ``nn.TrainOneStepCell``,
``nn.TrainOneStepWithLossScaleCell``, ``amp.build_train_network``. The math is not repeated here:
each step runs the same implementations (:mod:`mindspore_radam.dispatch`) with the same float64
per-step scalars (:mod:`mindspore_radam.schedule`) as :class:`mindspore_radam.RAdam`.
"""
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, jit, nn, ops
import mindspore.common.dtype as mstype

from mindspore_radam import _validation, live
from mindspore_radam._cell import deepcopy_cell, keep_state_dict_loadable
from mindspore_radam.dispatch import IMPLEMENTATIONS, select_implementation
from mindspore_radam.functional import (H, STRUCTURE_NAMES, compute_dtype, fields_of_hyper, group_hyper,
                                        group_options, structure, write_value)


def _clone_zeros(param, prefix):
    """Zero state cloned from `param` (its parallel layout and attributes, as the ``nn`` family does),
    in `param`'s compute dtype: float32 for float16/bfloat16 parameters."""
    if param.size == 0:  # MindSpore's zeros initializer rejects empty shapes
        state = param.clone()
    else:
        state = param.clone(init="zeros")
    state.name = f"{prefix}.{param.name}"
    state.requires_grad = False
    if compute_dtype(param.dtype) != param.dtype:
        state.set_dtype(compute_dtype(param.dtype))
    return state


_unscale = ops.MultitypeFuncGraph("unscale")


@_unscale.register("Tensor", "Tensor")
def _unscale_tensor(reciprocal_scale, grad):
    """``grad * (1 / loss_scale)`` in the gradient's dtype, as ``nn.Optimizer.scale_grad`` computes it."""
    if grad.size == 0:
        return grad
    return grad * ops.cast(reciprocal_scale, grad.dtype)


class RAdam(live.LiveLoads, nn.Optimizer):
    r"""Rectified Adam as a :class:`mindspore.nn.Optimizer`, for ``Model.train`` and the ``nn`` wrappers.

    The update is that of :class:`mindspore_radam.RAdam` (its docstring has the math), at the step
    count :math:`t` of the optimizer (every parameter steps together, as in ``nn.Adam``):
    ``torch.optim.RAdam``'s numerics, per-step scalars in float64, the fused CPU kernel where it
    runs. Around it, the conventions of :class:`mindspore.nn.Adam`:

    - ``learning_rate`` is a number, a 0-d Tensor, a list or 1-d Tensor indexed by the global step,
      or a ``LearningRateSchedule`` (``nn.CosineDecayLR``, ``nn.WarmUpLR``, ...), read at the global
      step before it advances;
    - ``weight_decay`` is a number or a Cell of the global step (a weight-decay schedule). Without
      groups it applies to every parameter whose name contains neither ``'beta'`` nor ``'gamma'``
      (normalization layers are not decayed), like ``nn.Adam``; in groups, to every parameter of a
      group with a non-zero value. It is L2 (added to the unscaled gradient) unless
      ``decoupled_weight_decay``;
    - groups are dicts with ``'params'`` and optionally ``'lr'``, ``'weight_decay'``,
      ``'grad_centralization'``, plus an optional ``{'order_params': ...}`` dict;
    - gradients are first centralized (groups with ``grad_centralization``) and then divided by
      ``loss_scale``, so ``FixedLossScaleManager(..., drop_overflow_update=False)`` works.

    The state is cloned from the parameters (``exp_avg.*``, ``exp_avg_sq.*``; float32 for float16 and
    bfloat16 parameters), so it takes the parameters' parallel layout. One int64 step count
    (``step.group_k``) per run of consecutive parameters that share a learning rate and a weight
    decay: the unit one implementation call updates.

    Args:
        params (Union[list[Parameter], list[dict]]): the parameters, or group dicts as above.
        learning_rate (Union[float, int, Tensor, list[float], LearningRateSchedule]): Default: ``1e-3``.
        beta1, beta2 (float): the running averages' coefficients, each in [0, 1). Default: ``0.9``,
            ``0.999``.
        eps (float): added to :math:`\sqrt{v_t}`, >= 0. Default: ``1e-8``.
        weight_decay (Union[float, int, Cell]): >= 0, or a Cell of the global step. Default: ``0.0``.
        loss_scale (float): gradients are divided by it, > 0. Default: ``1.0``.
        decoupled_weight_decay (bool): decay the weights directly (AdamW-style). Default: ``False``.
        maximize (bool): maximize the objective. Default: ``False``.
        threshold (float): the rectified update is used when :math:`\rho_t >` ``threshold``.
            Default: ``5.0``.
        degenerated_to_sgd (bool): SGD-with-momentum steps while :math:`\rho_t \le` ``threshold``;
            if ``False`` the parameters stay unchanged on those steps. Default: ``True``.
        fused (Optional[bool]): as in :class:`mindspore_radam.RAdam`: ``None`` takes the fused
            kernel where it runs, ``False`` the portable path, ``True`` demands the kernel.
            Default: ``None``.

    Inputs:
        - **gradients** (tuple[Tensor]) - one per parameter, in ``optimizer.parameters`` order.

    Outputs:
        True, once the parameters are updated (for ``ops.depend``).

    Raises:
        TypeError, ValueError: a bad argument, named in the message, before anything is created.
        RuntimeError: ``fused=True`` where the kernel can't run.
    """
    # nn.Optimizer's data-parallel optimizer sharding (Ascend): each rank updates the parameters
    # `optim_filter` gives it, then `broadcast_params`. Unverified here: no Ascend device.
    _support_parallel_optimizer = True

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0, *, decoupled_weight_decay=False, maximize=False, threshold=5.0,
                 degenerated_to_sgd=True, fused=None):
        # Everything is checked before nn.Optimizer creates its first Parameter.
        items = _validation.check_nn_params(params)
        _validation.check_nn_learning_rate(learning_rate)
        betas = _validation.check_betas((beta1, beta2), "beta1/beta2")
        options = _validation.check_hyperparameters(dict(
            eps=eps, threshold=threshold, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, degenerated_to_sgd=degenerated_to_sgd))
        _validation.check_nn_weight_decay(weight_decay)
        loss_scale = _validation.check_loss_scale(loss_scale)
        fused = _validation.check_fused(fused)
        if isinstance(weight_decay, (int, float)):
            weight_decay = float(weight_decay)
        if ms.get_context("device_target") == "CPU" and any(
                isinstance(item, dict) and item.get("grad_centralization") for item in items):
            raise ValueError("grad_centralization=True needs MindSpore's Centralization kernel, which has no CPU "
                             "implementation (MindSpore 2.10); set it on Ascend or GPU only")
        raw_decay = self._decay_of_each(items, weight_decay)
        super().__init__(learning_rate, items, weight_decay, loss_scale)
        self._options_common = dict(betas=betas, **options)
        self._runs, decay_cells = self._split_runs(raw_decay)
        self.implementations = [select_implementation(fused, self._parameters[start:end])
                                for start, end, _, _ in self._runs]
        # The schedules of dynamic weight decays, unscaled (nn.Optimizer keeps them times loss_scale).
        self._decay_schedules = nn.CellList(decay_cells)
        self._run_options = tuple(group_options(dict(self._options_common, weight_decay=decay))
                                  for _, _, decay, _ in self._runs)
        # Each run's HYPER_FIELDS as a float64 Parameter, read on the device every step: the beta1/beta2/eps
        # setters and checkpoint loads write it in place.
        self.hyperparameters = ParameterTuple(
            Parameter(group_hyper(run_options), name=f"hyperparameters.group_{k}", requires_grad=False)
            for k, run_options in enumerate(self._run_options))
        self._guarded = ms.get_context("device_target") == "CPU"  # see mindspore_radam.RAdam._update_in_graph
        self.exp_avg = ParameterTuple(_clone_zeros(p, "exp_avg") for p in self._parameters)
        self.exp_avg_sq = ParameterTuple(_clone_zeros(p, "exp_avg_sq") for p in self._parameters)
        self.steps = ParameterTuple(Parameter(Tensor(0, mstype.int64), name=f"step.group_{k}", requires_grad=False)
                                    for k in range(len(self._runs)))
        self._expected_grads = tuple((tuple(p.shape), p.dtype) for p in self._parameters)
        self._names = tuple(p.name for p in self._parameters)
        self._live_key = live.new_key(self)
        self._keep_in_place()
        keep_state_dict_loadable(self)

    def _keep_in_place(self):
        """Loads and set_data keep the storage of the optimizer's own Parameters (state, step counts, learning
        rate, hyperparameters), so compiled graphs see them; the network's keep MindSpore's semantics
        (:mod:`mindspore_radam.live`)."""
        other_ids = {id(p) for p in self.hyperparameters + self._parameters}
        live.keep_in_place((p for p in self.get_parameters() if id(p) not in other_ids), owner=self)
        live.keep_in_place(self.hyperparameters, writer=self._load_hyperparameters, owner=self)

    def live_weights(self):
        return tuple(self._parameters)

    def __deepcopy__(self, memo):
        """``copy.deepcopy``: an independent optimizer with copied Parameters and state (see
        :mod:`mindspore_radam._cell`)."""
        new = deepcopy_cell(self, memo)
        new._live_key = live.new_key(new)  # pylint: disable=protected-access
        live.forget_compiled_storage(new)
        new._keep_in_place()  # pylint: disable=protected-access
        return new

    def __call__(self, *args, **kwargs):
        """A call from Python (PyNative or GRAPH_MODE ``TrainOneStepCell``'s eager ``construct``): the step
        follows the weights' storage (:func:`mindspore_radam.live.follow_storage`). Inside graph code the
        parser inlines :meth:`construct` instead."""
        live.follow_storage(self)
        self._radam_compiling_own_step = True
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._radam_compiling_own_step = False

    @property
    def beta1(self):
        """The first moment's coefficient; assigning it takes effect from the next step (no recompilation)."""
        return self._options_common["betas"][0]

    @beta1.setter
    def beta1(self, value):
        self._set_common(betas=(value, self.beta2))

    @property
    def beta2(self):
        """The second moment's coefficient; assigning it takes effect from the next step."""
        return self._options_common["betas"][1]

    @beta2.setter
    def beta2(self, value):
        self._set_common(betas=(self.beta1, value))

    @property
    def eps(self):
        """Added to :math:`\\sqrt{v_t}`; assigning it takes effect from the next step."""
        return self._options_common["eps"]

    @eps.setter
    def eps(self, value):
        self._set_common(eps=value)

    def _set_common(self, **values):
        """Validates `values` (betas, eps) and writes them into every run's hyperparameters in place."""
        checked = _validation.check_hyperparameters({k: v for k, v in values.items() if k != "betas"})
        if "betas" in values:
            checked["betas"] = _validation.check_betas(values["betas"], "beta1/beta2")
        common = dict(self._options_common, **checked)
        runs = tuple(group_options(dict(common, weight_decay=options[H.weight_decay]))
                     for options in self._run_options)
        for hyper, run_options in zip(self.hyperparameters, runs):
            write_value(hyper, group_hyper(run_options))
        self._options_common, self._run_options = common, runs

    def _load_hyperparameters(self, param, value):
        """A whole value loaded into a ``hyperparameters.group_<k>`` Parameter (a checkpoint): validated, and
        refused when it would switch a line of the compiled update (its structure is fixed at construction)."""
        k = next(i for i, hyper in enumerate(self.hyperparameters) if hyper is param)
        fields = _validation.check_hyperparameters(fields_of_hyper(value, repr(param.name)), repr(param.name))
        options = group_options(dict(self._options_common, **fields))
        if structure(options) != structure(self._run_options[k]):
            raise ValueError(f"{param.name!r}: the value loaded sets {STRUCTURE_NAMES} to {structure(options)}, "
                             f"but this optimizer was built with {structure(self._run_options[k])}; build it with "
                             f"the settings of the run that wrote the checkpoint")
        write_value(param, group_hyper(options))
        runs = list(self._run_options)
        runs[k] = options
        self._run_options = tuple(runs)
        self._options_common = dict(self._options_common, betas=fields["betas"], eps=fields["eps"],
                                    threshold=fields["threshold"], degenerated_to_sgd=fields["degenerated_to_sgd"])

    @staticmethod
    def _decay_of_each(items, weight_decay):
        """{id(param): the weight decay the user gave it}: a float, or a Cell for a schedule."""
        if not isinstance(items[0], dict):
            return {id(p): weight_decay if "beta" not in p.name and "gamma" not in p.name else 0.0 for p in items}
        decays = {}
        for group in items:
            decay = group.get("weight_decay", weight_decay)
            decay = float(decay) if isinstance(decay, (int, float)) else decay
            decays.update({id(p): decay for p in group.get("params", ())})
        return decays

    def _split_runs(self, raw_decay):
        """The parameters (in nn.Optimizer's order) as runs ``(start, end, decay, schedule)`` of
        consecutive ones with one learning rate, one weight decay and one owner rank; `decay` is the
        float coefficient (1.0 for a schedule: decay on, value per step), `schedule` the index of its
        Cell or None. Also returns the schedule Cells."""
        cells, runs = [], []
        previous = None
        for index, param in enumerate(self._parameters):
            decay = raw_decay[id(param)]
            lr_key = id(self.learning_rate[index]) if self.is_group_lr else None
            key = (lr_key, id(decay) if isinstance(decay, nn.Cell) else decay, self.optim_filter[index])
            if key != previous:
                schedule = None
                if isinstance(decay, nn.Cell):
                    if decay not in cells:
                        cells.append(decay)
                    schedule = cells.index(decay)
                runs.append([index, index + 1, 1.0 if schedule is not None else decay, schedule])
                previous = key
            else:
                runs[-1][1] = index + 1
        return tuple(tuple(run) for run in runs), cells

    @jit(backend="ms_backend")
    def construct(self, gradients):
        live.note_inlined(self._live_key)
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        gradients = self.flatten_gradients(gradients)
        gradients = self.gradients_centralization(gradients)
        if self.need_scale:  # nn.Optimizer.scale_grad, which fails to compile on zero-size gradients
            gradients = self.hyper_map(ops.partial(_unscale, self.reciprocal_scale), gradients)
        lr = self.get_lr()
        decays = self._current_decays()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        if self._guarded:
            # The CPU runtime guard of mindspore_radam.RAdam._update_in_graph (always true).
            if self.steps[0] >= 0:
                self._update_runs(gradients, lr, decays)
            done = True
        else:
            done = self._update_runs(gradients, lr, decays)
        if self.use_parallel:
            done = ops.depend(done, self.broadcast_params(done))
        return done

    def _current_decays(self):
        """Each weight-decay schedule's value at the global step, as float64 ``(1,)`` Tensors."""
        return tuple(ops.cast(schedule(self.global_step), mstype.float64).reshape((1,))
                     for schedule in self._decay_schedules)

    def _update_runs(self, gradients, lr, decays):
        done = True
        for k, (start, end, _, schedule) in enumerate(self._runs):
            if not self.optim_filter[start]:
                continue  # another rank updates this run and broadcasts it
            hyper = self.hyperparameters[k]
            if schedule is not None:
                hyper = ops.concat((hyper[:H.weight_decay], decays[schedule], hyper[H.weight_decay + 1:]))
            update = IMPLEMENTATIONS[self.implementations[k]]
            updated = update(params=self._parameters[start:end], grads=gradients[start:end],
                             exp_avg=self.exp_avg[start:end], exp_avg_sq=self.exp_avg_sq[start:end],
                             step=self.steps[k], lr=lr[start] if self.is_group_lr else lr, hyper=hyper,
                             options=self._run_options[k])
            done = ops.depend(done, updated)
        return done
