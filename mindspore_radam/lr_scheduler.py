r"""Learning-rate schedulers: MindSpore's experimental ones, plus three that RAdam users reach for.

Everything in :mod:`mindspore.experimental.optim.lr_scheduler` is re-exported, so
``from mindspore_radam import lr_scheduler`` replaces that import. The three added here are
subclasses of its :class:`LRScheduler` base class, so they drive :class:`mindspore_radam.RAdam`
and every ``mindspore.experimental.optim`` optimizer, in PyNative and inside a ``@jit`` train step.

Each is a closed form of the epoch count :math:`t` (``last_epoch``, the number of ``step()`` calls
so far) and of each group's base learning rate :math:`\eta`, with the cosine ramp

.. math::
    \operatorname{cos\_ramp}(a, b, p) = b + (a - b)\,\frac{1 + \cos(\pi p)}{2}
    \quad \text{(from } a \text{ at } p = 0 \text{ to } b \text{ at } p = 1\text{)}

- :class:`WarmupCosineLR`: :math:`\eta\,(s + (1 - s)\,t/W)` for :math:`t < W`, then
  :math:`\operatorname{cos\_ramp}(\eta, \eta_{min}, (t - W)/(T - W))`, and :math:`\eta_{min}`
  from :math:`t = T` on.
- :class:`FlatCosineLR`: :math:`\eta` for :math:`t \le F`, then
  :math:`\operatorname{cos\_ramp}(\eta, \eta_{min}, (t - F)/(T - F))`, and :math:`\eta_{min}`
  from :math:`t = T` on.
- :class:`OneCycleLR`: ``torch.optim.lr_scheduler.OneCycleLR``'s learning rates (phases below).

The arithmetic is float64 on device (constants built in Python as exact float64 Tensors, see
:func:`mindspore_radam.schedule.float64`), rounded once into each lr Parameter's dtype (float64 in
:class:`mindspore_radam.RAdam`, float32 in MindSpore's optimizers); phase
choices are ``select`` on data, so a jit train step never recompiles as :math:`t` grows. Since the
rate depends on :math:`t` alone, restoring ``last_epoch`` from a checkpoint resumes the schedule
exactly (``step(epoch)`` jumps to any epoch).
"""
import math

from mindspore import Tensor, jit, ops
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import lr_scheduler as _experimental
from mindspore.experimental.optim.lr_scheduler import *  # noqa: F401,F403 - the re-export
from mindspore.experimental.optim.lr_scheduler import LRScheduler
from mindspore_radam._versions import jit_class

from mindspore_radam import _validation, live
from mindspore_radam.schedule import float64

__all__ = list(_experimental.__all__) + ["OneCycleLR", "WarmupCosineLR", "FlatCosineLR"]


# Constants are built once: a Tensor made from a Python number on every PyNative step costs time
# and memory that MindSpore 2.10 does not give back.
_ZERO, _ONE, _TWO, _PI = (float64(value) for value in (0.0, 1.0, 2.0, math.pi))


# The schedulers' arguments, each with its check (messages name "<Scheduler>: <argument>").
_ARGUMENT_CHECKS = {
    "warmup_steps": lambda name, value: _validation.check_count(name, value, 0),
    "flat_steps": lambda name, value: _validation.check_count(name, value, 0),
    "total_steps": lambda name, value: _validation.check_count(name, value, 1),
    "epochs": lambda name, value: _validation.check_count(name, value, 1),
    "steps_per_epoch": lambda name, value: _validation.check_count(name, value, 1),
    "eta_min": lambda name, value: _validation.check_positive(name, value, allow_zero=True),
    "warmup_start_factor": lambda name, value: _validation.check_fraction(name, value, 0.0, 1.0, closed=True),
    "pct_start": lambda name, value: _validation.check_fraction(name, value, 0.0, 1.0, closed=False),
    "div_factor": _validation.check_positive,
    "final_div_factor": _validation.check_positive,
    "three_phase": lambda name, value: _validation.check_flag(value, name),
}


def check_scheduler_args(scheduler, optimizer, last_epoch, **arguments):
    """Checks a scheduler's arguments before it changes anything."""
    _validation.check_optimizer(scheduler, optimizer)
    _validation.check_count(f"{scheduler}: last_epoch", last_epoch, -1)
    for key, value in arguments.items():
        name = f"{scheduler}: {key}"
        if key in _ARGUMENT_CHECKS:
            _ARGUMENT_CHECKS[key](name, value)
        elif key == "anneal_strategy" and value not in ("cos", "linear"):
            raise ValueError(f"{name} must be 'cos' or 'linear', but got {value!r}")
        elif key == "cycle_momentum" and value is not False:
            raise ValueError(f"{name} must be False: MindSpore optimizers hold betas/momentum fixed, "
                             f"so only the learning rate is cycled; got {value!r}")
        elif key == "max_lr":
            if len(value) != len(optimizer.param_groups):
                raise ValueError(f"{name} has {len(value)} values for {len(optimizer.param_groups)} "
                                 f"parameter groups")
            for index, rate in enumerate(value):
                _validation.check_positive(f"{name}[{index}]", rate)


def _cos_ramp(start, end, progress):
    """From `start` at progress 0 to `end` at progress 1 along half a cosine (float64 Tensors)."""
    return end + (start - end) * (_ONE + ops.cos(_PI * progress)) / _TWO


def _linear_ramp(start, end, progress):
    return start + (end - start) * progress


class _ClosedFormLR(LRScheduler):
    """A scheduler whose rates are a function of ``last_epoch`` alone (:meth:`_lrs_at`). Its ``last_epoch``
    is ours, so a value loaded into it (``set_data``, an in-process rollback) keeps its storage and
    reaches a ``jit`` step that steps the scheduler (:func:`mindspore_radam.live.keep_in_place`)."""

    def __init__(self, optimizer, last_epoch=-1):
        super().__init__(optimizer, last_epoch)
        live.keep_in_place([self.last_epoch])

    def get_lr(self):
        return self._closed_form(self.last_epoch)

    @jit
    def _closed_form(self, last_epoch):
        """One compiled graph: in PyNative, op-by-op evaluation was slower and MindSpore 2.10's
        eager Cast keeps about 0.7 KB per call, which adds up over a long run."""
        t = ops.cast(last_epoch, mstype.float64)
        return [ops.cast(lr, target.dtype) for lr, target in zip(self._lrs_at(t), self._last_lr)]

    def _get_closed_form_lr(self):
        return self.get_lr()

    def _lrs_at(self, t):
        raise NotImplementedError


def _progress(t, begin, span):
    """Where `t` is in [begin, begin + span] (float64 Tensors, span > 0), clipped to [0, 1]."""
    return ops.minimum(ops.maximum((t - begin) / span, _ZERO), _ONE)


@jit_class
class WarmupCosineLR(_ClosedFormLR):
    r"""Linear warmup from ``warmup_start_factor`` times each group's lr to the lr over
    ``warmup_steps`` steps, then cosine annealing to ``eta_min`` at ``total_steps``, then ``eta_min``.

    With ``warmup_start_factor=0`` and ``eta_min=0`` this is Hugging Face's
    ``get_cosine_schedule_with_warmup``.

    Args:
        optimizer (:class:`mindspore.experimental.optim.Optimizer`): the optimizer.
        warmup_steps (int): steps of linear warmup, >= 0.
        total_steps (int): the step at which the rate reaches ``eta_min``, > ``warmup_steps``.
        eta_min (float): the floor, >= 0. Default: ``0.0``.
        warmup_start_factor (float): the rate at step 0, as a fraction of the lr, in [0, 1].
            Default: ``0.0``.
        last_epoch (int): the index of the last epoch. Default: ``-1``.
    """

    def __init__(self, optimizer, warmup_steps, total_steps, eta_min=0.0, warmup_start_factor=0.0,
                 last_epoch=-1):
        check_scheduler_args("WarmupCosineLR", optimizer, last_epoch, warmup_steps=warmup_steps,
                             total_steps=total_steps, eta_min=eta_min, warmup_start_factor=warmup_start_factor)
        if total_steps <= warmup_steps:
            raise ValueError(f"WarmupCosineLR: total_steps must be greater than warmup_steps, "
                             f"but got total_steps={total_steps}, warmup_steps={warmup_steps}.")
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.eta_min, self.warmup_start_factor = eta_min, warmup_start_factor
        self._warmup, self._eta_min = float64(warmup_steps), float64(eta_min)
        # max(warmup_steps, 1): with no warmup, the warmup rate is never selected.
        self._warmup_span, self._anneal_span = float64(max(warmup_steps, 1)), float64(total_steps - warmup_steps)
        self._start_factor = float64(warmup_start_factor)
        super().__init__(optimizer, last_epoch)

    def _lrs_at(self, t):
        warm = t < self._warmup
        factor = _linear_ramp(self._start_factor, _ONE, _progress(t, _ZERO, self._warmup_span))
        anneal = _progress(t, self._warmup, self._anneal_span)
        lrs = []
        for base_lr in self.base_lrs:
            base_lr = ops.cast(base_lr, mstype.float64)
            lrs.append(ops.select(warm, base_lr * factor, _cos_ramp(base_lr, self._eta_min, anneal)))
        return lrs


@jit_class
class FlatCosineLR(_ClosedFormLR):
    r"""Each group's lr for ``flat_steps`` steps, then cosine annealing to ``eta_min`` at
    ``total_steps``, then ``eta_min`` (fastai's ``fit_flat_cos``, the usual schedule for Ranger).

    Args:
        optimizer (:class:`mindspore.experimental.optim.Optimizer`): the optimizer.
        flat_steps (int): steps at the constant rate, >= 0.
        total_steps (int): the step at which the rate reaches ``eta_min``, > ``flat_steps``.
        eta_min (float): the floor, >= 0. Default: ``0.0``.
        last_epoch (int): the index of the last epoch. Default: ``-1``.
    """

    def __init__(self, optimizer, flat_steps, total_steps, eta_min=0.0, last_epoch=-1):
        check_scheduler_args("FlatCosineLR", optimizer, last_epoch, flat_steps=flat_steps,
                             total_steps=total_steps, eta_min=eta_min)
        if total_steps <= flat_steps:
            raise ValueError(f"FlatCosineLR: total_steps must be greater than flat_steps, "
                             f"but got total_steps={total_steps}, flat_steps={flat_steps}.")
        self.flat_steps, self.total_steps, self.eta_min = flat_steps, total_steps, eta_min
        self._flat, self._anneal_span = float64(flat_steps), float64(total_steps - flat_steps)
        self._eta_min = float64(eta_min)
        super().__init__(optimizer, last_epoch)

    def _lrs_at(self, t):
        anneal = _progress(t, self._flat, self._anneal_span)
        return [_cos_ramp(ops.cast(base_lr, mstype.float64), self._eta_min, anneal) for base_lr in self.base_lrs]


@jit_class
class OneCycleLR(_ClosedFormLR):
    r"""The 1cycle policy (Smith & Topin 2017) with ``torch.optim.lr_scheduler.OneCycleLR``'s
    learning rates.

    Each group starts at ``initial_lr = max_lr / div_factor``, rises to ``max_lr`` at step
    ``pct_start * total_steps - 1``, and anneals to ``min_lr = initial_lr / final_div_factor`` at
    step ``total_steps - 1``. With ``three_phase``, it comes back down to ``initial_lr`` at step
    ``2 * pct_start * total_steps - 2`` and then anneals to ``min_lr``. Within a phase the ramp is
    cosine (``anneal_strategy='cos'``) or linear. As in torch, the group's lr is replaced by
    ``initial_lr`` at construction, and ``initial_lr``, ``max_lr``, ``min_lr`` are set on each group.

    Differences from torch: momentum is not cycled (MindSpore's optimizers hold ``betas`` fixed,
    as MindSpore's own ``CyclicLR`` does), so ``cycle_momentum`` must be ``False``; stepping past
    ``total_steps`` keeps the rate of step ``total_steps`` instead of raising, because graph code
    can't raise on a count.

    Args:
        optimizer (:class:`mindspore.experimental.optim.Optimizer`): the optimizer.
        max_lr (Union[float, list[float]]): the peak rate, one for all groups or one per group.
        total_steps (int): steps in the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs (int): with ``steps_per_epoch``, ``total_steps = epochs * steps_per_epoch``.
        steps_per_epoch (int): see ``epochs``.
        pct_start (float): the fraction of the cycle spent rising, in (0, 1). Default: ``0.3``.
        anneal_strategy (str): ``'cos'`` or ``'linear'``. Default: ``'cos'``.
        cycle_momentum (bool): must be ``False`` (see above). Default: ``False``.
        div_factor (float): ``initial_lr = max_lr / div_factor``, > 0. Default: ``25.0``.
        final_div_factor (float): ``min_lr = initial_lr / final_div_factor``, > 0. Default: ``1e4``.
        three_phase (bool): add the symmetric descent to ``initial_lr``. Default: ``False``.
        last_epoch (int): the index of the last epoch. Default: ``-1``.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=False, div_factor=25.0, final_div_factor=1e4,
                 three_phase=False, last_epoch=-1):
        check_scheduler_args("OneCycleLR", optimizer, last_epoch)  # before param_groups is read
        if total_steps is None and (epochs is None or steps_per_epoch is None):
            raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch.")
        if total_steps is None:
            check_scheduler_args("OneCycleLR", optimizer, last_epoch, epochs=epochs,
                                 steps_per_epoch=steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(optimizer.param_groups)
        check_scheduler_args("OneCycleLR", optimizer, last_epoch, total_steps=total_steps, pct_start=pct_start,
                             anneal_strategy=anneal_strategy, cycle_momentum=cycle_momentum,
                             div_factor=div_factor, final_div_factor=final_div_factor, three_phase=three_phase,
                             max_lr=max_lrs)
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        if three_phase:
            # (end step, start rate, end rate) of each phase, as in torch.
            phases = ((float(pct_start * total_steps) - 1, "initial_lr", "max_lr"),
                      (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr"),
                      (float(total_steps - 1), "initial_lr", "min_lr"))
        else:
            phases = ((float(pct_start * total_steps) - 1, "initial_lr", "max_lr"),
                      (float(total_steps - 1), "max_lr", "min_lr"))
        # Each phase as (start step, span or None if empty, start rate, end rate), in float64.
        self._phases, start_step = [], 0.0
        for end_step, start, end in phases:
            span = float64(end_step - start_step) if end_step > start_step else None
            self._phases.append((float64(start_step), span, start, end))
            start_step = end_step
        self._total = float64(total_steps)
        self._rates = []
        for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
            initial = peak / div_factor
            rates = dict(initial_lr=initial, max_lr=peak, min_lr=initial / final_div_factor)
            if last_epoch == -1:
                group.update(rates)
                ops.assign(group["lr"], Tensor(initial, mstype.float32))
            self._rates.append({name: float64(group[name]) for name in rates})
        super().__init__(optimizer, last_epoch)

    def _lrs_at(self, t):
        ramp = _cos_ramp if self.anneal_strategy == "cos" else _linear_ramp
        t = ops.minimum(t, self._total)
        lrs = []
        for rates in self._rates:
            # torch takes the first phase whose end step is >= t (the last one past the end): each
            # later phase replaces the rate once t is past the previous phase's end.
            lr = None
            for start_step, span, start, end in self._phases:
                # Not clipped: torch extrapolates the last phase to t = total_steps; the rates of
                # phases t is not in are computed and discarded by the select.
                progress = _ONE if span is None else (t - start_step) / span
                value = ramp(rates[start], rates[end], progress)
                lr = value if lr is None else ops.select(t <= start_step, lr, value)
            lrs.append(lr)
        return lrs
