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
    \end{cases}
    \end{aligned}

``adaptive_step = lr r_t sqrt(bc2)/bc1`` and ``sgd_step = lr/bc1`` (0 when
``degenerated_to_sgd`` is off) carry the bias corrections, so the last line is
``torch.optim.RAdam``'s ``theta -= lr * m/bc1 * r_t * sqrt(bc2)/(sqrt(v)+eps)``
(or ``theta -= lr * m/bc1``). The branch is a ``select`` on data.

Every implementation (see :mod:`mindspore_radam.dispatch`) takes the same keyword-only signature
as :func:`hypermap_radam`.
"""
from mindspore import ops

_radam_update = ops.MultitypeFuncGraph("radam_update")


@_radam_update.register("Bool", "Bool", "Number", "Number", "Number", "Number", "Number",
                        "Tensor", "Tensor", "Tensor", "Tensor",
                        "Tensor", "Tensor", "Tensor", "Tensor")
def _radam_update_tensor(maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1, one_minus_beta2,
                         eps, decay, rect, adaptive_step, sgd_step,
                         param, grad, exp_avg, exp_avg_sq):
    """One tensor's RAdam update, in place; the lines match the module docstring."""
    dtype = param.dtype
    theta = param
    if maximize:
        grad = -grad
    if weight_decay != 0.0:
        if decoupled_weight_decay:
            theta = theta * ops.cast(decay, dtype)
        else:
            grad = grad + weight_decay * theta
    m = exp_avg + one_minus_beta1 * (grad - exp_avg)
    v = beta2 * exp_avg_sq + one_minus_beta2 * (grad * grad)
    rectified = ops.cast(adaptive_step, dtype) * m / (ops.sqrt(v) + eps)
    unrectified = ops.cast(sgd_step, dtype) * m
    theta = theta - ops.select(rect, rectified, unrectified)
    ops.assign(exp_avg, m)
    ops.assign(exp_avg_sq, v)
    ops.assign(param, theta)
    return True


def hypermap_radam(*, params, grads, exp_avg, exp_avg_sq, rect, adaptive_step, sgd_step, decay,
                   beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, decoupled_weight_decay, maximize):
    """Portable implementation: ``HyperMap`` of the per-tensor update over one group.

    Args:
        params, grads, exp_avg, exp_avg_sq (tuple[Tensor]): the group's tensors, in order.
        rect, adaptive_step, sgd_step (Tensor): this step's scalars for the group
            (:func:`mindspore_radam.schedule.radam_scalars`).
        decay (Tensor): ``1 - lr * weight_decay`` (used only with decoupled weight decay).
        beta2, eps, weight_decay (float), decoupled_weight_decay, maximize (bool): the group's
            hyperparameters.
        one_minus_beta1, one_minus_beta2 (float): ``1 - beta`` computed in Python (double) before it
            reaches graph code, as torch does; graph code would compute it from a float32-rounded
            beta (``1 - float32(0.99999999) == 0``).

    Returns:
        True, once every update is done (use it with ``ops.depend``).
    """
    updated = ops.HyperMap()(
        ops.partial(_radam_update, maximize, decoupled_weight_decay, weight_decay, beta2, one_minus_beta1,
                    one_minus_beta2, eps, decay, rect, adaptive_step, sgd_step),
        params, grads, exp_avg, exp_avg_sq)
    # One bool whatever the group's size, so graph code can chain groups of different sizes.
    return ops.depend(True, updated)
