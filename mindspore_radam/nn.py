r"""RAdam for MindSpore's high-level API: a :class:`mindspore.nn.Optimizer`.

:class:`RAdam` here is the optimizer of :mod:`mindspore_radam` behind the ``nn`` family's front door,
so it works where an ``nn`` optimizer is required: ``mindspore.train.Model``, ``nn.TrainOneStepCell``,
``nn.TrainOneStepWithLossScaleCell``, ``amp.build_train_network``. The math is not repeated here:
each step runs the same implementations (:mod:`mindspore_radam.dispatch`) with the same float64
per-step scalars (:mod:`mindspore_radam.schedule`) as :class:`mindspore_radam.RAdam`.
"""
import math
from collections.abc import Iterable

import numpy as np
from mindspore import Parameter, Tensor, jit, nn, ops
from mindspore.nn.learning_rate_schedule import LearningRateSchedule
import mindspore.common.dtype as mstype

from mindspore_radam import _validation, dispatch, live
from mindspore_radam.engine import GroupEngine
from mindspore_radam.functional import H, fields_of_hyper, group_hyper, group_options, write_value


_unscale = ops.MultitypeFuncGraph("unscale")


@_unscale.register("Tensor", "Tensor")
def _unscale_tensor(reciprocal_scale, grad):
    """``grad * (1 / loss_scale)`` in the gradient's dtype, as ``nn.Optimizer.scale_grad`` computes it."""
    if grad.size == 0:
        return grad
    return grad * ops.cast(reciprocal_scale, grad.dtype)


class RAdam(GroupEngine, nn.Optimizer):
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

    The state is cloned from the parameters (``exp_avg.*``, ``exp_avg_sq.*``, and ``kahan_comp.*`` with
    Kahan summation), so it takes the parameters' parallel layout; its dtypes follow ``state_dtype`` as in
    :class:`mindspore_radam.RAdam`. One int64 step count
    (``step.group_k``) and hyperparameter record per run of consecutive parameters that share a learning
    rate and a weight decay; the runs of one setting, however they interleave (mindcv's decay/no-decay
    groups), are updated by one implementation call, and their counts and records move together.

    Args:
        params (Union[list[Parameter], list[dict]]): the parameters, or group dicts as above.
        learning_rate (Union[float, int, Tensor, list[float], LearningRateSchedule]): Default: ``1e-3``.
        beta1, beta2 (float): the running averages' coefficients, each in [0, 1). Default: ``0.9``,
            ``0.999``.
        betas (Tuple[float, float]): the same pair as torch and the experimental family write it (framework
            configs do); give it or ``beta1``/``beta2``, not both. Default: ``None``.
        eps (float): added to :math:`\sqrt{v_t}`, >= 0. Default: ``1e-8``.
        weight_decay (Union[float, int, Cell]): >= 0, or a Cell of the global step. Default: ``0.0``.
        loss_scale (float): gradients are divided by it, > 0. Default: ``1.0``.
        decoupled_weight_decay (bool): decay the weights directly (AdamW-style). Default: ``False``.
        maximize (bool): maximize the objective. Default: ``False``.
        threshold (float): the rectified update is used when :math:`\rho_t >` ``threshold``.
            Default: ``5.0``.
        degenerated_to_sgd (bool): SGD-with-momentum steps while :math:`\rho_t \le` ``threshold``;
            if ``False`` the parameters stay unchanged on those steps. Default: ``True``.
        state_dtype (Optional[str]): as in :class:`mindspore_radam.RAdam`: ``None`` keeps float32 state for
            float16/bfloat16 parameters, ``"param"`` the parameter's dtype. Default: ``None``.
        kahan_summation (bool): as in :class:`mindspore_radam.RAdam`: a compensation buffer per parameter
            so small updates to half-precision parameters are not lost. Default: ``False``.
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

    # Its learning rates are nn.Optimizer's, numbered by its own groups, not by runs: a checkpoint of its
    # groups in another order is refused (GroupEngine._group_mapping).
    REMAPS_GROUPS = False
    # nn.Optimizer's data-parallel optimizer sharding (Ascend): each rank updates the parameters
    # `optim_filter` gives it, then `broadcast_params`. Unverified here: no Ascend device.
    _support_parallel_optimizer = True

    def __init__(self, params, learning_rate=1e-3, beta1=None, beta2=None, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0, *, betas=None, decoupled_weight_decay=False, maximize=False, threshold=5.0,
                 degenerated_to_sgd=True, state_dtype=None, kahan_summation=False, fused=None):
        # Everything is checked before nn.Optimizer creates its first Parameter.
        items = _check_params(params)
        _check_learning_rate(learning_rate)
        betas = _check_betas(beta1, beta2, betas)
        options = _validation.check_hyperparameters(dict(
            eps=eps, threshold=threshold, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, degenerated_to_sgd=degenerated_to_sgd))
        _check_weight_decay(weight_decay)
        loss_scale = _check_loss_scale(loss_scale)
        state_dtype = _validation.check_state_dtype(state_dtype)
        kahan = _validation.check_flag(kahan_summation, "kahan_summation")
        fused = _validation.check_fused(fused)
        # numpy scalars as plain numbers: nn.Optimizer takes only int, float, Tensor, list or Cell.
        if _validation.is_real(weight_decay):
            weight_decay = float(weight_decay)
        if _validation.is_real(learning_rate):
            learning_rate = float(learning_rate)
        items = [dict(item, **{key: float(item[key]) for key in ("lr", "weight_decay")
                               if key in item and _validation.is_real(item[key])})
                 if isinstance(item, dict) else item for item in items]
        if dispatch.current_device() == "CPU" and any(
                isinstance(item, dict) and item.get("grad_centralization") for item in items):
            raise ValueError("grad_centralization=True needs MindSpore's Centralization kernel, which has no CPU "
                             "implementation (MindSpore 2.10); set it on Ascend or GPU only")
        raw_decay = self._decay_of_each(items, weight_decay)
        super().__init__(learning_rate, items, weight_decay, loss_scale)
        self._options_common = dict(betas=betas, **options)
        runs, decay_cells = self._split_runs(raw_decay)
        # The schedules of dynamic weight decays, unscaled (nn.Optimizer keeps them times loss_scale).
        self._decay_schedules = nn.CellList(decay_cells)
        self._schedule_of = tuple(schedule for _, _, _, schedule, _ in runs)
        self._init_engine([(start, end) for start, end, _, _, _ in runs],
                          [group_options(dict(self._options_common, weight_decay=decay)) for _, _, decay, _, _ in runs],
                          state_dtype=state_dtype, kahan=kahan, fused=fused, like_param=True,
                          active=[self.optim_filter[start] for start, _, _, _, _ in runs],
                          together=[key for _, _, _, _, key in runs])

    # --- the engine's hooks (mindspore_radam.engine) ---

    def _engine_weights(self):
        return self._parameters

    def _group_lr(self, group_id, context):
        lr = context[0]
        return lr[self._ranges[group_id][0]] if self.is_group_lr else lr

    def _group_hyper(self, group_id, context):
        hyper = self.hyperparameters[group_id]
        schedule = self._schedule_of[group_id]
        if schedule is None:
            return hyper
        return ops.concat((hyper[:H.weight_decay], context[1][schedule], hyper[H.weight_decay + 1:]))

    def _hyper_loaded(self, group_id, fields):
        # Only the values every run shares; a run's structure (maximize, decoupled decay) stays the run's
        # own, so a setter that rebuilds every run's record later can't switch the other runs' structure.
        common = ("betas", "eps", "threshold", "degenerated_to_sgd")
        self._options_common = dict(self._options_common, **{key: fields[key] for key in common})

    def __call__(self, *args, **kwargs):
        """A call from Python (PyNative or GRAPH_MODE ``TrainOneStepCell``'s eager ``construct``): the step
        follows the weights' storage (:func:`mindspore_radam.live.follow_storage`). Inside graph code the
        parser inlines :meth:`construct` instead."""
        self.check_trainable()
        if args:
            _validation.check_gradient_sequence(args[0])
            _validation.check_dense_gradients(args[0], self._names)
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
        self._set_common(betas=(_validation.check_beta(value, "beta1"), self.beta2))

    @property
    def beta2(self):
        """The second moment's coefficient; assigning it takes effect from the next step."""
        return self._options_common["betas"][1]

    @beta2.setter
    def beta2(self, value):
        self._set_common(betas=(self.beta1, _validation.check_beta(value, "beta2")))

    @property
    def eps(self):
        """Added to :math:`\\sqrt{v_t}`; assigning it takes effect from the next step."""
        return self._options_common["eps"]

    @eps.setter
    def eps(self, value):
        self._set_common(eps=value)

    def _set_common(self, **values):
        """Validates `values` (checked betas, eps) and writes them into every run's hyperparameters in place."""
        checked = _validation.check_hyperparameters(values)
        common = dict(self._options_common, **checked)
        # Each run's own record with the new values: its structure (maximize, decoupled decay, a loaded record's
        # switch) stays the run's.
        runs = tuple(group_options(dict(fields_of_hyper(group_hyper(options), "nn.RAdam"), **checked))
                     for options in self._options)
        for hyper, run_options in zip(self.hyperparameters, runs):
            write_value(hyper, group_hyper(run_options))
        self._options_common, self._options = common, runs

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
        """The parameters (in nn.Optimizer's order) as runs ``(start, end, decay, schedule, key)`` of
        consecutive ones with one learning rate, one weight decay and one owner rank (`key`: runs of one key,
        however they interleave, are stepped by one call); `decay` is the float coefficient (1.0 for a
        schedule: decay on, value per step), `schedule` the index of its Cell or None. Also returns the
        schedule Cells."""
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
                runs.append([index, index + 1, 1.0 if schedule is not None else decay, schedule, key])
                previous = key
            else:
                runs[-1][1] = index + 1
        return tuple(tuple(run) for run in runs), cells

    @jit(backend="ms_backend")
    def construct(self, gradients):
        live.note_inlined(self._live_key)
        _validation.check_gradients(gradients, self._expected_grads, self._names)
        gradients = self.flatten_gradients(tuple(gradients))  # a list, too
        gradients = self.gradients_centralization(gradients)
        if self.need_scale:  # nn.Optimizer.scale_grad, which fails to compile on zero-size gradients
            gradients = self.hyper_map(ops.partial(_unscale, self.reciprocal_scale), gradients)
        lr = self.get_lr()
        decays = self._current_decays()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        done = self._update_in_graph(gradients, None, (lr, decays))
        if self.use_parallel:
            done = ops.depend(done, self.broadcast_params(done))
        return done

    def _current_decays(self):
        """Each weight-decay schedule's value at the global step, as float64 ``(1,)`` Tensors."""
        return tuple(ops.cast(schedule(self.global_step), mstype.float64).reshape((1,))
                     for schedule in self._decay_schedules)


# --- the nn door's arguments, checked before nn.Optimizer creates its first Parameter ---

GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization")


def _check_betas(beta1, beta2, betas):
    """``beta1``/``beta2`` (the ``nn`` family's names) or ``betas`` (torch's and the experimental family's
    pair, which framework configs write), one way, not both. Returns the pair; default ``(0.9, 0.999)``."""
    if betas is not None:
        if beta1 is not None or beta2 is not None:
            given = ", ".join(name for name, value in (("beta1", beta1), ("beta2", beta2)) if value is not None)
            raise ValueError(f"give either betas or beta1/beta2, not both: got betas={betas!r} and {given}")
        return _validation.check_betas(betas, "betas")
    return (_validation.check_beta(0.9 if beta1 is None else beta1, "beta1"),
            _validation.check_beta(0.999 if beta2 is None else beta2, "beta2"))


def _check_learning_rate(value, name="learning_rate"):
    """A number, a 0-d Tensor, a 1-d Tensor or a list of numbers indexed by the global step, or a
    ``LearningRateSchedule``. Values must be finite and >= 0."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, Tensor):
        if value.ndim > 1:
            raise ValueError(f"{name} must be a 0-d or 1-d Tensor, but got a Tensor of shape {value.shape}")
        if value.dtype == mstype.bool_:
            raise TypeError(f"{name} must hold numbers, but got a Bool Tensor")
        values = value.asnumpy().astype(np.float64).reshape(-1)
    elif _validation.is_real(value):
        values = np.array([float(value)])
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not _validation.is_real(item):
                raise TypeError(f"{name}[{index}] must be a real number, but got {item!r}")
        values = np.array([float(item) for item in value])
    else:
        raise TypeError(f"{name} must be a float, int, Tensor, list of numbers or LearningRateSchedule, "
                        f"but got {_validation.class_name(value)}")
    if values.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(values)) or np.any(values < 0.0):
        raise ValueError(f"Invalid learning rate: {name} must be finite and >= 0, but got {value!r}")
    return value


def _check_weight_decay(value, name="weight_decay"):
    """A number >= 0, or a Cell mapping the global step to the coefficient (a dynamic weight decay)."""
    if isinstance(value, nn.Cell):
        return value
    if not _validation.is_real(value):
        raise TypeError(f"{name} must be a float, int or a Cell of the global step, but got {value!r} "
                        f"of type {_validation.class_name(value)}")
    return _validation.check_weight_decay(value, name)


def _check_loss_scale(value):
    if not _validation.is_real(value):
        raise TypeError(f"loss_scale must be a float, but got {value!r} of type {_validation.class_name(value)}")
    if not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ValueError(f"Invalid loss_scale: {value!r}; it must be finite and > 0")
    return float(value)


def _check_params(params):
    """``mindspore.nn.Optimizer``'s `params`: Parameters, or group dicts (``GROUP_KEYS``) and at most one
    ``{'order_params': ...}`` dict. Checks what ``nn.Optimizer`` would reject later, with errors that name
    the argument."""
    if isinstance(params, (Parameter, Tensor)) or params is None or isinstance(params, (str, bytes, dict)) \
            or not isinstance(params, Iterable) or isinstance(params, (set, frozenset)):
        raise TypeError(f"params must be a list of Parameters or of group dicts, but got "
                        f"{_validation.class_name(params)}")
    items = list(params)
    if not items:
        raise ValueError("params is empty: the optimizer got no Parameters to optimize")
    taken = {}
    if not all(isinstance(item, dict) for item in items):
        _validation.check_unique(_validation.check_param_list(items, "params"), "params", taken)
        return items
    ordered = None
    for index, group in enumerate(items):
        where = f"params[{index}]"
        if "order_params" in group:
            if ordered is not None:
                raise ValueError(f"{where}: a second 'order_params' dict; give at most one")
            if len(group) > 1:
                raise ValueError(f"{where}: the 'order_params' dict must hold only that key, but has {sorted(group)}")
            ordered = _validation.check_param_list(group["order_params"], f"{where}['order_params']")
            continue
        _validation.check_group_keys(group, where, GROUP_KEYS, metadata=False)
        if "params" not in group:
            raise ValueError(f"{where} has no 'params' key")
        members = _validation.check_param_list(group["params"], f"{where}['params']")
        if not members:
            raise ValueError(f"{where}['params'] is empty")
        _validation.check_unique(members, where, taken)
        if "lr" in group:
            _check_learning_rate(group["lr"], f"{where}['lr']")
        if "weight_decay" in group:
            _check_weight_decay(group["weight_decay"], f"{where}['weight_decay']")
        if "grad_centralization" in group:
            _validation.check_flag(group["grad_centralization"], f"{where}['grad_centralization']")
    if ordered is not None and (len(ordered) != len(taken) or
                                {id(p) for p in ordered} != {id(p) for p in taken.values()}):
        raise ValueError("params: 'order_params' must list exactly the Parameters of the groups, each once")
    return items
