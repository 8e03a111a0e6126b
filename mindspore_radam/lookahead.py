r"""Lookahead (Zhang et al. 2019, arXiv 1907.08610): a wrapper that makes any optimizer's fast
weights periodically pull back toward slow weights. ``Lookahead(RAdam(...))`` is Ranger.

Every call runs the wrapped optimizer on the fast weights :math:`\theta` (the parameters), then,
with the wrapper's own step count :math:`n` and the slow weights :math:`\phi`:

.. math::
    \begin{aligned}
    n &\leftarrow n + 1 \\
    sync &= (n \bmod k = 0) \\
    \phi &\leftarrow sync \;?\; \phi + \alpha(\theta - \phi) \;:\; \phi \\
    \theta &\leftarrow sync \;?\; \phi \;:\; \theta
    \end{aligned}

:math:`\phi` is taken from the parameters at the first step, before the wrapped optimizer updates
them (as Ranger and TF Addons do), so weights loaded after the wrapper was built (the usual
fine-tuning order: net, optimizer, then pretrained weights) are where the slow weights start; a
group added later starts from its parameters when it is added. The wrapped optimizer's state
(moments, step counts) carries on across syncs, as in the paper and in optax's ``lookahead``. The branch is a ``select`` on data, so one compiled graph
serves every step; the cost is one extra read of :math:`\theta, \phi` and write of both per step.
"""
from mindspore import Parameter, ParameterTuple, Tensor, jit, ops
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import Optimizer

from mindspore_radam import _validation, live
from mindspore_radam._cell import deepcopy_cell, keep_state_dict_loadable
from mindspore_radam.functional import finite_flag
from mindspore_radam._internals import restore_parse_method

_lookahead_update = ops.MultitypeFuncGraph("lookahead_update")


@_lookahead_update.register("Tensor", "Tensor", "Tensor", "Tensor")
def _lookahead_update_tensor(sync, alpha, param, slow):
    """One tensor's pull-back, in place; the lines match the module docstring."""
    pulled = slow + ops.cast(alpha, slow.dtype) * (param - slow)
    slow_next = ops.select(sync, pulled, slow)
    ops.assign(slow, slow_next)
    ops.assign(param, ops.select(sync, slow_next, param))
    return True


_start_slow = ops.MultitypeFuncGraph("start_slow")


@_start_slow.register("Tensor", "Tensor")
def _start_slow_tensor(slow, param):
    """``slow <- param``: where the slow weights start."""
    ops.assign(slow, ops.cast(param, slow.dtype))
    return True


def _copy(params, prefix):
    return [Parameter(Tensor(p.asnumpy().copy()), name=f"{prefix}.{p.name}", requires_grad=False) for p in params]


class Lookahead(live.LiveLoads, Optimizer):
    r"""Wraps `optimizer` (:class:`mindspore_radam.RAdam`, or any
    :class:`mindspore.experimental.optim.Optimizer`) with Lookahead; see the module docstring.

    The wrapper is an :class:`~mindspore.experimental.optim.Optimizer` that shares the wrapped
    one's ``param_groups``, ``lrs`` and ``parameters``, so every scheduler can drive either of them
    and ``value_and_grad(fn, None, lookahead.parameters)`` works as before. Its slow weights
    (``lookahead_slow.<name>``, taken at the first step) and step count (``lookahead_step``) are
    Parameters, saved and loaded with the wrapped optimizer's state by
    ``mindspore.save_checkpoint(lookahead, ...)``; a run resumed from a checkpoint keeps its slow weights.

    Args:
        optimizer (Optimizer): the inner ("fast") optimizer.
        k (int): steps between syncs, >= 1. Default: ``5``.
        alpha (float): slow step size, in [0, 1]. Default: ``0.5``.

    Inputs:
        - **gradients** (tuple[Tensor]) - as for the wrapped optimizer.
        - **grads_finite** (Tensor, optional) - a loss-scaled step's one-element bool flag, passed on to
          the wrapped optimizer (which must accept it, as :class:`mindspore_radam.RAdam` does); when
          False, the step changes nothing, the wrapper's count and slow weights included.
    """

    def __init__(self, optimizer, k=5, alpha=0.5):
        _validation.check_optimizer("Lookahead", optimizer)
        _validation.check_count("Lookahead: k", k, 1)
        _validation.check_fraction("Lookahead: alpha", alpha, 0.0, 1.0, closed=True)
        # The wrapper takes the wrapped optimizer's groups instead of building its own.
        super(Optimizer, self).__init__(auto_prefix=False)  # pylint: disable=bad-super-call
        self.optimizer = optimizer
        self.k, self.alpha = int(k), float(alpha)
        self._k = Tensor(self.k, mstype.int64)
        self._alpha = Tensor(self.alpha, mstype.float32)
        self.defaults = optimizer.defaults
        self.slow_weights = ParameterTuple(_copy(optimizer.parameters, "lookahead_slow"))
        self.lookahead_step = Parameter(Tensor(0, mstype.int64), name="lookahead_step", requires_grad=False)
        live.keep_in_place(self.slow_weights + (self.lookahead_step,))
        keep_state_dict_loadable(self)

    def __deepcopy__(self, memo):
        """``copy.deepcopy``: a wrapper over a deep copy of the wrapped optimizer, with its own slow weights."""
        new = deepcopy_cell(self, memo)
        live.keep_in_place(new.slow_weights + (new.lookahead_step,))
        return new

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def lrs(self):
        return self.optimizer.lrs

    @property
    def parameters(self):
        return self.optimizer.parameters

    @property
    def group_start_id(self):
        return self.optimizer.group_start_id

    def add_param_group(self, param_group):
        """Adds a group to the wrapped optimizer; its slow weights start as copies of its parameters,
        and the wrapper's compiled steps are built again to include them."""
        count = len(self.optimizer.parameters)
        self.optimizer.add_param_group(param_group)
        added = tuple(self.optimizer.parameters)[count:]
        self.slow_weights = ParameterTuple(tuple(self.slow_weights) + tuple(_copy(added, "lookahead_slow")))
        live.keep_in_place(self.slow_weights)
        live.recompile(self)

    def __call__(self, gradients, grads_finite=None):
        """A call from Python, in PyNative as in GRAPH_MODE: the slow-weight start and the sync as compiled
        graphs around the wrapped optimizer's own call from Python (so its values and switches written
        between steps take effect as they do without the wrapper). Inside graph code :meth:`construct`
        is inlined instead."""
        _validation.check_grads_finite(grads_finite, attributes=False)  # the rest at compile time, below
        live.follow_storage(self)
        self._start_slow_weights()
        done = self._pull_back(self._inner_step(gradients, grads_finite), finite_flag(grads_finite))
        restore_parse_method(self)  # after the jit methods ran from Python
        return done

    def construct(self, gradients, grads_finite=None):
        started = self._start_slow_weights()
        done = self._inner_step(ops.depend(gradients, started), grads_finite)
        return self._pull_back(done, finite_flag(grads_finite))

    def _inner_step(self, gradients, grads_finite):
        """The wrapped optimizer's step; `grads_finite` (a loss-scaled step's flag) is passed on when given."""
        if grads_finite is None:
            return self.optimizer(gradients)
        return self.optimizer(gradients, grads_finite)

    @jit(backend="ms_backend")
    def _start_slow_weights(self):
        """At the first step (``lookahead_step == 0``), before the wrapped optimizer's update: the slow
        weights become copies of the parameters. A Tensor condition (control flow), not a ``select``:
        it costs one comparison a step instead of a pass over the parameters and slow weights."""
        if self.lookahead_step == 0:
            ops.HyperMap()(_start_slow, self.slow_weights, self.optimizer.parameters)
        return True

    @jit(backend="ms_backend")
    def _pull_back(self, done, finite):
        """The sync step, after the wrapped optimizer's update (`done`); one graph in PyNative too. A step
        skipped for non-finite gradients (`finite` False) counts nothing and syncs nothing."""
        _validation.check_grads_finite(finite)
        step = ops.assign_add(self.lookahead_step, ops.depend(ops.cast(finite, mstype.int64), done))
        sync = ops.logical_and(finite, ops.equal(ops.floor_mod(step, self._k), 0))
        updated = ops.HyperMap()(ops.partial(_lookahead_update, sync, self._alpha),
                                 self.optimizer.parameters, self.slow_weights)
        return ops.depend(done, updated)

