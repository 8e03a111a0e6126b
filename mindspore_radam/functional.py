r"""The RAdam update of one parameter tensor, and the portable implementation over a group.

Per element, with the group's scalars from :func:`mindspore_radam.schedule.radam_scalars`:

.. math::
    \begin{aligned}
    g &\leftarrow -g \quad \text{if maximize} \\
    g &\leftarrow g + \lambda\theta \quad \text{(L2, if not decoupled)} \\
    \theta &\leftarrow \theta (1 - lr\,\lambda) \quad \text{(if decoupled, on steps that move } \theta
        \text{: } rect \lor degenerated\_to\_sgd) \\
    m &\leftarrow m + (1 - \beta_1)(g - m) \\
    v &\leftarrow \beta_2 v + (1 - \beta_2)(g \cdot g) \\
    step &= rect \;?\; adaptive\_step \;:\; sgd\_step \quad \text{(once per group)} \\
    q &\leftarrow rect \;?\; (step \cdot m) / (\sqrt{v} + \epsilon) \;:\; step \cdot m \\
    \theta &\leftarrow \theta - q \\
    (\theta, m, v) &\leftarrow (\theta, m, v) \text{ as they were, if } \lnot finite
    \end{aligned}

``adaptive_step = lr r_t sqrt(bc2)/bc1`` and ``sgd_step = lr/bc1`` (0 when
``degenerated_to_sgd`` is off) carry the bias corrections, so the last line is
``torch.optim.RAdam``'s ``theta -= lr * m/bc1 * r_t * sqrt(bc2)/(sqrt(v)+eps)``
(or ``theta -= lr * m/bc1``). The branch is data: one step size per group and a ``select`` of the
quotient, so each tensor is read and written once per line, not once per branch. Every ``select``'s
condition is broadcast to its output's shape (MindSpore's GPU Select sizes its output from the
condition). The division is ``RealDiv``: the ``/`` operator's ``Div`` CPU kernel computes the same IEEE
quotients 4-7x slower. For ungated steps of a float32 parameter with float32 state, ``m`` and
``theta`` are written in place (``AssignAdd``/``AssignSub``: the same roundings, one pass fewer
each; float64 is left out, as MindSpore 2.10 reads a float64 ``AssignAdd`` output back through
float32 inside ``HyperMap``). `finite` is the optional ``grads_finite`` flag of a loss-scaled
train step: when it is False the step changes nothing, step count included (three more
``select``s per tensor, only when the flag is given).

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
import collections

from mindspore import Tensor, ops
import mindspore.common.dtype as mstype

from mindspore_radam.schedule import float64, radam_scalars

_radam_update = ops.MultitypeFuncGraph("radam_update")


# IEEE division; the `/` operator's Div kernel computes the same quotients 4-7x slower on CPU. (The
# one-kernel Lerp/Addcmul/Addcdiv compute our lines exactly but run 10-15x slower than Add/Mul there.)
_REAL_DIV = ops.RealDiv()


def compute_dtype(dtype):
    """The dtype a parameter's update is computed in: float32 for float16/bfloat16, else its own."""
    # Two comparisons, not ``in``: graph code resolves these at compile time (``in`` a tuple of
    # dtypes leaves the dtype to runtime, where ops.ones then defaults to float64).
    if dtype == mstype.float16 or dtype == mstype.bfloat16:
        return mstype.float32
    return dtype


def _as(tensor, dtype):
    """`tensor` in `dtype`, with no Cast kernel when it is in `dtype` already."""
    return tensor if tensor.dtype == dtype else ops.cast(tensor, dtype)


def write_value(target, value):
    """``target <- value`` rounded to target's dtype, in place (``Assign``; ``copy_`` for bfloat16,
    which has no ``Assign`` CPU kernel). Graph code, and eager calls from Python."""
    value = _as(value, target.dtype)
    if target.dtype == mstype.bfloat16:
        return target.copy_(value)
    return ops.assign(target, value)


def _scalar(pair, dtype):
    """A group scalar's (float64, float32) `pair` in `dtype`."""
    if dtype == mstype.float32:
        return pair[1]
    return ops.cast(pair[0], dtype)


def _decayed(maximize, decoupled_weight_decay, weight_decay, decay, theta, grad, dtype):
    """The first three lines: (gradient after maximize and L2 decay, theta after decoupled decay)."""
    theta_next = theta
    if maximize:
        grad = -grad
    if weight_decay is not None:
        if decoupled_weight_decay:
            theta_next = theta * _scalar(decay, dtype)
        else:
            grad = grad + _scalar(weight_decay, dtype) * theta
    return grad, theta_next


def _full(flag, like):
    """A 0-d bool `flag` broadcast to `like`'s shape: every ``select`` gets a condition of its output's shape
    (MindSpore's GPU Select sizes its output from the condition; CPU and Ascend broadcast)."""
    return ops.broadcast_to(flag, like.shape)


def _step_quotient(rect, eps, step_size, m, v, dtype):
    """``step * m / denom`` with ``denom = rect ? sqrt(v) + eps : 1``: what the last line subtracts,
    as ``rect ? (step * m) / (sqrt(v) + eps) : step * m`` (``x / 1`` is ``x`` exactly)."""
    scaled = _scalar(step_size, dtype) * m
    return ops.select(_full(rect, m), _REAL_DIV(scaled, ops.sqrt(v) + _scalar(eps, dtype)), scaled)


def _new_values(maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1, one_minus_beta2,
                eps, rect, decay, step_size, param, grad, exp_avg, exp_avg_sq):
    """(theta, theta_next, m, v) of one tensor in its compute dtype; the lines match the module docstring.

    `maximize` and `decoupled_weight_decay` are Python bools and `weight_decay` is None when it is 0,
    which choose the lines; every number in the arithmetic is one of the group's scalars, as a
    (float64, float32) pair of 0-d Tensors (`_scalar`): float32 is the compute dtype of every
    parameter dtype but float64, so it is cast once per group, not per tensor. (A Python float
    reaching graph code through a tuple turns float32 arithmetic into float64.)
    """
    dtype = compute_dtype(param.dtype)
    theta = _as(param, dtype)
    exp_avg = _as(exp_avg, dtype)
    exp_avg_sq = _as(exp_avg_sq, dtype)
    grad, theta_next = _decayed(maximize, decoupled_weight_decay, weight_decay, decay, theta, _as(grad, dtype), dtype)
    m = exp_avg + _scalar(one_minus_beta1, dtype) * (grad - exp_avg)
    v = _scalar(beta2, dtype) * exp_avg_sq + _scalar(one_minus_beta2, dtype) * (grad * grad)
    theta_next = theta_next - _step_quotient(rect, eps, step_size, m, v, dtype)
    return theta, theta_next, m, v


def _update_in_place(maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1, one_minus_beta2,
                     eps, rect, decay, step_size, param, grad, exp_avg, exp_avg_sq):
    """`_new_values` and the writes in one, for a parameter whose state and compute dtype are its own
    and an ungated step: ``m + x`` and ``theta - x`` as in-place ``AssignAdd``/``AssignSub``, which
    round alike and save a pass over memory each (10M float32 parameters in 10 tensors: 34 against
    39 ms a step on CPU)."""
    dtype = param.dtype
    grad, theta_next = _decayed(maximize, decoupled_weight_decay, weight_decay, decay, param, grad, dtype)
    m = ops.assign_add(exp_avg, _scalar(one_minus_beta1, dtype) * (grad - exp_avg))
    v = ops.assign(exp_avg_sq, _scalar(beta2, dtype) * exp_avg_sq + _scalar(one_minus_beta2, dtype) * (grad * grad))
    quotient = _step_quotient(rect, eps, step_size, m, v, dtype)
    if weight_decay is not None and decoupled_weight_decay:
        return ops.assign(param, theta_next - quotient)
    return ops.assign_sub(param, quotient)


def _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v):
    """Stores the new moments, or (gated and not `finite`) leaves them as they were."""
    if gated:
        m = ops.select(_full(finite, m), m, ops.cast(exp_avg, m.dtype))
        v = ops.select(_full(finite, v), v, ops.cast(exp_avg_sq, v.dtype))
    write_value(exp_avg, m)
    write_value(exp_avg_sq, v)


@_radam_update.register("Tuple", "Bool", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _radam_update_tensor(scalars, gated, finite, param, grad, exp_avg, exp_avg_sq):
    """One tensor's RAdam update, in place; `scalars` are `_new_values`' leading arguments."""
    if param.size == 0:  # nothing to update (and MindSpore 2.7's CPU TensorMove fails on empty writes)
        return True
    # float32 only: MindSpore 2.10 reads an in-place AssignAdd's float64 output back through float32
    # inside HyperMap (a float64 parameter's updates were 1.5e-8 off, relative).
    if not gated and param.dtype == mstype.float32 and exp_avg.dtype == param.dtype \
            and exp_avg_sq.dtype == param.dtype:
        _update_in_place(*scalars, param, grad, exp_avg, exp_avg_sq)
        return True
    theta, theta_next, m, v = _new_values(*scalars, param, grad, exp_avg, exp_avg_sq)
    _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v)
    if gated:
        theta_next = ops.select(_full(finite, theta), theta_next, theta)
    write_value(param, theta_next)
    return True


@_radam_update.register("Tuple", "Bool", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _radam_update_kahan(scalars, gated, finite, param, grad, exp_avg, exp_avg_sq, kahan_comp):
    """As `_radam_update_tensor`, with Kahan-compensated parameter writes: `kahan_comp` (in the
    parameter's dtype) carries what rounding into the parameter lost, and is added back next step::

        c = comp + (theta_next - theta);  param = round(theta + c);  comp = round(c - (param - theta))
    """
    if param.size == 0:
        return True
    theta, theta_next, m, v = _new_values(*scalars, param, grad, exp_avg, exp_avg_sq)
    compensated = ops.cast(kahan_comp, theta.dtype) + (theta_next - theta)
    rounded = ops.cast(ops.cast(theta + compensated, param.dtype), theta.dtype)
    comp_next = compensated - (rounded - theta)
    _write_moments(gated, finite, exp_avg, exp_avg_sq, m, v)
    if gated:
        rounded = ops.select(_full(finite, theta), rounded, theta)
        comp_next = ops.select(_full(finite, theta), comp_next, ops.cast(kahan_comp, theta.dtype))
    write_value(param, rounded)
    write_value(kahan_comp, comp_next)
    return True


# The hyperparameter record of a group, declared once: (name, kind), in the order of the float64 vector
# (`group_hyper`) that graph code and the C++ kernel read (its `enum Hyper` lists the same names in the
# same order; tests/cpu/test_hyper_record.py checks it). Kinds: "value" (read on the device every step),
# "derived" (computed in Python from another field, in double precision), "structure" (chooses lines
# of the compiled update), "flag" (a bool read on the device).
HYPER_RECORD = (
    ("beta1", "value"), ("beta2", "value"), ("threshold", "value"), ("weight_decay", "value"), ("eps", "value"),
    ("one_minus_beta1", "derived"), ("one_minus_beta2", "derived"),
    ("maximize", "structure"), ("decoupled_weight_decay", "structure"), ("degenerated_to_sgd", "flag"),
)
HYPER_FIELDS = tuple(name for name, _ in HYPER_RECORD)
# `H.<field>` is the field's index, in Python and in graph code (MindSpore's parser reads it as a constant):
# `hyper[H.eps]`, `options[H.maximize]`.
H = collections.namedtuple("HyperIndex", HYPER_FIELDS)(*range(len(HYPER_FIELDS)))


def group_options(group):
    """The HYPER_FIELDS values of a parameter group dict, as a tuple of Python numbers and bools.

    ``1 - beta`` is computed here, in double precision, as torch does; graph code would compute it
    from a float32-rounded beta (``1 - float32(0.99999999) == 0``).
    """
    beta1, beta2 = group["betas"]
    values = dict(beta1=beta1, beta2=beta2, one_minus_beta1=1.0 - beta1, one_minus_beta2=1.0 - beta2)
    return tuple(values[name] if name in values else group[name] for name in HYPER_FIELDS)


def group_hyper(options):
    """`options` as the exact float64 Tensor that graph code and the fused kernel read."""
    return Tensor([float(value) for value in options], mstype.float64)


def fields_of_hyper(value, where):
    """The hyperparameters a ``group_hyper`` vector holds (`value`: a Tensor of its 10 floats, e.g. loaded
    from a checkpoint), as keyword values to validate and then pass to :func:`group_options`.

    Raises:
        ValueError: if `value` does not hold one value per ``HYPER_FIELDS`` entry (named by `where`).
    """
    values = [float(x) for x in value.asnumpy().reshape(-1)]
    if len(values) != len(HYPER_FIELDS):
        raise ValueError(f"{where}: expected {len(HYPER_FIELDS)} values ({', '.join(HYPER_FIELDS)}), "
                         f"but got {len(values)}")
    fields = {name: (bool(values[index]) if kind in ("structure", "flag") else values[index])
              for index, (name, kind) in enumerate(HYPER_RECORD) if kind != "derived"}
    fields["betas"] = (fields.pop("beta1"), fields.pop("beta2"))
    return fields


STRUCTURE_NAMES = ("maximize", "decoupled_weight_decay", "weight_decay != 0")


def structure(options):
    """What of a group's options (:func:`group_options`) chooses lines of the portable update
    (:func:`_new_values`): a change of it needs the update compiled again. Named by STRUCTURE_NAMES."""
    return (options[H.maximize], options[H.decoupled_weight_decay], options[H.weight_decay] != 0.0)


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
        hyper (Tensor): float64 ``HYPER_FIELDS`` of the group (:func:`group_hyper`); every number
            of the update is read from it on the device.
        options (tuple): the same values as Python numbers (:func:`group_options`); only
            ``maximize``, ``decoupled_weight_decay`` and whether ``weight_decay`` is non-zero are
            read from it, when the graph is compiled: they choose the lines.
        finite (Optional[Tensor]): a 0-d bool Tensor; False makes the step change nothing (step
            count included). None: always step.
        kahan_comp (Optional[tuple[Tensor]]): Kahan compensation buffers, one per parameter in its
            dtype; None: plain writes.

    Returns:
        True, once every update is done (use it with ``ops.depend``).
    """
    maximize, decoupled_weight_decay = options[H.maximize], options[H.decoupled_weight_decay]
    gated = finite is not None
    finite = finite_flag(finite)
    step = ops.assign_add(step, ops.cast(finite, mstype.int64))
    # Indexed, not unpacked: graph code that unpacks outputs it never uses ("_") warns that side
    # effect nodes were eliminated (the scalars hang off the step's in-place increment).
    step_scalars = radam_scalars(step, lr, hyper[H.beta1], hyper[H.beta2], hyper[H.threshold],
                                 hyper[H.degenerated_to_sgd])
    rect, adaptive_step, sgd_step = step_scalars[3], step_scalars[5], step_scalars[6]
    step_size = ops.select(rect, adaptive_step, sgd_step)
    # Decoupled decay only on steps that move theta (the authors' code skips the whole update when
    # rho_t <= threshold and degenerated_to_sgd is off).
    one = float64(1.0)
    decay = ops.select(ops.logical_or(rect, hyper[H.degenerated_to_sgd] != 0),
                       one - ops.cast(lr, mstype.float64) * hyper[H.weight_decay], one)

    def pair(index):
        return hyper[index], ops.cast(hyper[index], mstype.float32)
    # Every value is read from `hyper` (a Parameter: written between steps, it takes effect);
    # `options[H.weight_decay]` only says whether there is a weight decay at all, which chooses the lines.
    weight_decay = pair(H.weight_decay) if options[H.weight_decay] != 0.0 else None
    scalars = (maximize, decoupled_weight_decay, weight_decay, pair(H.beta2), pair(H.one_minus_beta1),
               pair(H.one_minus_beta2), pair(H.eps), rect,
               (decay, ops.cast(decay, mstype.float32)), (step_size, ops.cast(step_size, mstype.float32)))
    update = ops.partial(_radam_update, scalars, gated, finite)
    if kahan_comp is None:
        updated = ops.HyperMap()(update, params, grads, exp_avg, exp_avg_sq)
    else:
        updated = ops.HyperMap()(update, params, grads, exp_avg, exp_avg_sq, kahan_comp)
    # One bool whatever the group's size, so graph code can chain groups of different sizes.
    return ops.depend(True, updated)
