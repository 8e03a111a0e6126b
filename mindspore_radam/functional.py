r"""The RAdam update of one parameter tensor, and the portable implementation over a group.

Per element, with the group's scalars from :func:`mindspore_radam.schedule.radam_scalars`:

.. math::
    \begin{aligned}
    g &\leftarrow -g \quad \text{if maximize} \\
    g &\leftarrow g + \lambda\theta \quad \text{(L2, if not decoupled)} \\
    \theta &\leftarrow \theta (1 - lr\,\lambda) \quad \text{(if decoupled)} \\
    m &\leftarrow m + (1 - \beta_1)(g - m) \\
    v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
    \theta &\leftarrow \theta - \begin{cases}
        adaptive\_step \cdot m / (\sqrt{v} + \epsilon) & \text{if } rect \\
        sgd\_step \cdot m & \text{otherwise}
    \end{cases} \\
    (\theta, m, v) &\leftarrow (\theta, m, v) \text{ as they were, if } \lnot finite
    \end{aligned}

``adaptive_step = lr r_t sqrt(bc2)/bc1`` and ``sgd_step = lr/bc1`` (0 when
``degenerated_to_sgd`` is off) carry the bias corrections, so the last line is
``torch.optim.RAdam``'s ``theta -= lr * m/bc1 * r_t * sqrt(bc2)/(sqrt(v)+eps)``
(or ``theta -= lr * m/bc1``). The branch is a ``select`` on data. `finite` is the optional
``grads_finite`` flag of a loss-scaled train step: when it is False the step changes nothing, step
count included (three more ``select``s per tensor, only when the flag is given).

Half precision: for float16/bfloat16 parameters every line above runs in float32 (the moments
are read from their storage dtype, float32 by default) and the results are rounded once into
storage. With Kahan summation (``kahan_comp``, in the parameter's dtype), the parameter write is

.. math::
    c \leftarrow comp + (\theta_{next} - \theta), \quad
    \theta \leftarrow round(\theta + c), \quad
    comp \leftarrow round(c - (\theta_{new} - \theta_{old}))

Every implementation (see :mod:`mindspore_radam.dispatch`) takes the same keyword-only signature
as :func:`hypermap_radam`, and computes the group's scalars once per step.
"""
from mindspore import Tensor, ops
import mindspore.common.dtype as mstype

from mindspore_radam.schedule import float64, radam_scalars

_radam_update = ops.MultitypeFuncGraph("radam_update")


_LOW_PRECISION = (mstype.float16, mstype.bfloat16)


def compute_dtype(dtype):
    """The dtype a parameter's update is computed in: float32 for float16/bfloat16, else its own."""
    return mstype.float32 if dtype in _LOW_PRECISION else dtype


def _write(target, value):
    """``target <- value`` rounded to target's dtype (``Assign`` has no bfloat16 CPU kernel; ``copy_`` has)."""
    value = ops.cast(value, target.dtype)
    if target.dtype == mstype.bfloat16:
        return target.copy_(value)
    return ops.assign(target, value)


def _new_values(maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1, one_minus_beta2,
                eps, decay, rect, adaptive_step, sgd_step, param, grad, exp_avg, exp_avg_sq):
    """(theta, theta_next, m, v) of one tensor in its compute dtype; the lines match the module docstring."""
    dtype = compute_dtype(param.dtype)
    theta = ops.cast(param, dtype)
    grad = ops.cast(grad, dtype)
    exp_avg = ops.cast(exp_avg, dtype)
    exp_avg_sq = ops.cast(exp_avg_sq, dtype)
    theta_next = theta
    if maximize:
        grad = -grad
    if weight_decay != 0.0:
        if decoupled_weight_decay:
            theta_next = theta_next * ops.cast(decay, dtype)
        else:
            grad = grad + weight_decay * theta_next
    m = exp_avg + one_minus_beta1 * (grad - exp_avg)
    v = beta2 * exp_avg_sq + one_minus_beta2 * (grad * grad)
    rectified = ops.cast(adaptive_step, dtype) * m / (ops.sqrt(v) + eps)
    unrectified = ops.cast(sgd_step, dtype) * m
    theta_next = theta_next - ops.select(rect, rectified, unrectified)
    return theta, theta_next, m, v


def _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v):
    """Stores the new moments, or (gated and not `finite`) leaves them as they were."""
    if gated:
        m = ops.select(finite, m, ops.cast(exp_avg, m.dtype))
        v = ops.select(finite, v, ops.cast(exp_avg_sq, v.dtype))
    _write(exp_avg, m)
    _write(exp_avg_sq, v)


@_radam_update.register("Tuple", "Bool", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _radam_update_tensor(scalars, gated, finite, param, grad, exp_avg, exp_avg_sq):
    """One tensor's RAdam update, in place; `scalars` are `_new_values`' leading arguments."""
    theta, theta_next, m, v = _new_values(*scalars, param, grad, exp_avg, exp_avg_sq)
    _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v)
    if gated:
        theta_next = ops.select(finite, theta_next, theta)
    _write(param, theta_next)
    return True


@_radam_update.register("Tuple", "Bool", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _radam_update_kahan(scalars, gated, finite, param, grad, exp_avg, exp_avg_sq, kahan_comp):
    """As `_radam_update_tensor`, with Kahan-compensated parameter writes: `kahan_comp` (in the
    parameter's dtype) carries what rounding into the parameter lost, and is added back next step::

        c = comp + (theta_next - theta);  param = round(theta + c);  comp = round(c - (param - theta))
    """
    theta, theta_next, m, v = _new_values(*scalars, param, grad, exp_avg, exp_avg_sq)
    compensated = ops.cast(kahan_comp, theta.dtype) + (theta_next - theta)
    rounded = ops.cast(ops.cast(theta + compensated, param.dtype), theta.dtype)
    comp_next = compensated - (rounded - theta)
    _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v)
    if gated:
        rounded = ops.select(finite, rounded, theta)
        comp_next = ops.select(finite, comp_next, ops.cast(kahan_comp, theta.dtype))
    _write(param, rounded)
    _write(kahan_comp, comp_next)
    return True


# A group's constants, packed as one float64 Tensor (exact: built in Python, see schedule.float64)
# for the scalar schedule, in this order; `group_options` gives the same values as Python numbers.
HYPER_FIELDS = ("beta1", "beta2", "threshold", "weight_decay", "eps", "one_minus_beta1", "one_minus_beta2",
                "maximize", "decoupled_weight_decay", "degenerated_to_sgd")


def group_options(group):
    """The HYPER_FIELDS values of a parameter group dict, as a tuple of Python numbers and bools.

    ``1 - beta`` is computed here, in double precision, as torch does; graph code would compute it
    from a float32-rounded beta (``1 - float32(0.99999999) == 0``).
    """
    beta1, beta2 = group["betas"]
    return (beta1, beta2, group["threshold"], group["weight_decay"], group["eps"], 1.0 - beta1, 1.0 - beta2,
            group["maximize"], group["decoupled_weight_decay"], group["degenerated_to_sgd"])


def group_hyper(options):
    """`options` as the exact float64 Tensor that graph code and the fused kernel read."""
    return Tensor([float(value) for value in options], mstype.float64)


_ALWAYS = Tensor(True, mstype.bool_)


def finite_flag(finite):
    """The optional ``grads_finite`` input as the 0-d bool Tensor the implementations read (True if None)."""
    return _ALWAYS if finite is None else ops.reshape(finite, ())


def hypermap_radam(*, params, grads, exp_avg, exp_avg_sq, step, lr, hyper, options, finite=None,
                   kahan_comp=None):
    """Portable implementation of one group's step: the scalars once, then ``HyperMap`` of the
    per-tensor update.

    Every implementation takes this keyword-only signature (see :mod:`mindspore_radam.dispatch`).

    Args:
        params, grads, exp_avg, exp_avg_sq (tuple[Tensor]): the group's tensors, in order.
        step (Parameter): the group's int64 step count; incremented here.
        lr (Tensor): the group's learning rate.
        hyper (Tensor): float64 ``HYPER_FIELDS`` of the group (:func:`group_hyper`).
        options (tuple): the same values as Python numbers (:func:`group_options`).
        finite (Optional[Tensor]): a 0-d bool Tensor; False makes the step change nothing (step
            count included). None: always step.
        kahan_comp (Optional[tuple[Tensor]]): Kahan compensation buffers, one per parameter in its
            dtype; None: plain writes.

    Returns:
        True, once every update is done (use it with ``ops.depend``).
    """
    _, beta2, _, weight_decay, eps, one_minus_beta1, one_minus_beta2, maximize, decoupled_weight_decay, \
        degenerated_to_sgd = options
    gated = finite is not None
    finite = finite_flag(finite)
    step = ops.assign_add(step, ops.cast(finite, mstype.int64))
    # Indexed, not unpacked: graph code that unpacks outputs it never uses ("_") warns that side
    # effect nodes were eliminated (the scalars hang off the step's in-place increment).
    step_scalars = radam_scalars(step, lr, hyper[0], hyper[1], hyper[2], degenerated_to_sgd)
    rect, adaptive_step, sgd_step = step_scalars[3], step_scalars[5], step_scalars[6]
    decay = float64(1.0) - ops.cast(lr, mstype.float64) * hyper[3]
    scalars = (maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1, one_minus_beta2, eps,
               decay, rect, adaptive_step, sgd_step)
    update = ops.partial(_radam_update, scalars, gated, finite)
    if kahan_comp is None:
        updated = ops.HyperMap()(update, params, grads, exp_avg, exp_avg_sq)
    else:
        updated = ops.HyperMap()(update, params, grads, exp_avg, exp_avg_sq, kahan_comp)
    # One bool whatever the group's size, so graph code can chain groups of different sizes.
    return ops.depend(True, updated)
