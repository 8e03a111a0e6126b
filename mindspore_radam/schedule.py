r"""Per-step scalars of RAdam, computed once per parameter group per step, in float64.

For a group at step :math:`t` (its own counter, starting at 1):

.. math::
    \begin{aligned}
    bc_1 &= 1 - \beta_1^t \\
    bc_2 &= 1 - \beta_2^t \\
    \rho_\infty &= 2 / (1 - \beta_2) - 1 \\
    \rho_t &= \rho_\infty - 2 t \beta_2^t / bc_2 \\
    rect &= \rho_t > threshold \\
    r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
    adaptive\_step &= rect \;?\; lr \cdot r_t \sqrt{bc_2} / bc_1 \;:\; 0 \\
    sgd\_step &= \lnot rect \;?\; (lr / bc_1) \cdot degenerated\_to\_sgd \;:\; 0
    \end{aligned}

The arithmetic is the same float64 arithmetic as ``torch.optim.RAdam`` does on Python floats, on
device tensors, so it is bit-identical to it in PyNative and in graph mode, with no host round
trip and no recompilation as ``t`` grows. The step count is int64, exact up to 2**63.
The two branches are data (``select``), never control flow.
"""
from mindspore import Tensor, ops
import mindspore.common.dtype as mstype

# The order of radam_scalars' outputs. A plain tuple, not a namedtuple: MindSpore 2.10's graph
# compiler drops the downstream parameter writes when a namedtuple flows through graph code.
SCALAR_NAMES = ("bias_correction1", "bias_correction2", "rho_t", "rect", "r_t", "adaptive_step", "sgd_step")


def float64(value):
    """An exact float64 Tensor of `value` (a Python number or a Tensor).

    MindSpore rounds Python floats through float32 when they meet a Tensor in arithmetic, when
    ``ops.scalar_to_tensor`` converts them under jit, and when they reach graph code as function
    arguments or from containers. ``Tensor(x, float64)`` built in Python keeps every bit, so
    callers in graph code pass such Tensors (as :class:`mindspore_radam.RAdam` does).
    """
    if isinstance(value, Tensor):
        return ops.cast(value, mstype.float64)
    return Tensor(value, mstype.float64)


def radam_scalars(step, lr, beta1, beta2, threshold=5.0, degenerated_to_sgd=True):
    """Returns the tuple of :data:`SCALAR_NAMES` for one group: float64 Tensors, `rect` a bool one.

    Works elementwise, so `step` may also hold many step counts at once.

    Args:
        step (Tensor): the group's step count after this step's increment (int64).
        lr (Tensor): the group's learning rate (0-d).
        beta1, beta2, threshold (Union[float, Tensor]): the group's hyperparameters. Inside graph
            code pass float64 Tensors (see :func:`float64`) to keep them exact.
        degenerated_to_sgd (Union[bool, Tensor]): whether steps with ``rho_t <= threshold`` take an
            SGD step; as data (a float64 1.0 or 0.0 Tensor, read on the device) or a bool.
    """
    one, two, four = float64(1.0), float64(2.0), float64(4.0)
    beta1, beta2, threshold = float64(beta1), float64(beta2), float64(threshold)
    t = ops.cast(step, mstype.float64)
    lr = ops.cast(lr, mstype.float64)
    beta1_t = ops.pow(beta1, t)
    beta2_t = ops.pow(beta2, t)
    bias_correction1 = one - beta1_t
    bias_correction2 = one - beta2_t
    rho_inf = two / (one - beta2) - one
    rho_t = rho_inf - two * t * beta2_t / bias_correction2
    rect = rho_t > threshold
    r_t = ops.sqrt((rho_t - four) * (rho_t - two) * rho_inf
                   / ((rho_inf - four) * (rho_inf - two) * rho_t))
    zero = ops.zeros_like(bias_correction1)
    adaptive_step = ops.select(rect, lr * r_t * ops.sqrt(bias_correction2) / bias_correction1, zero)
    sgd_step = ops.select(rect, zero, lr / bias_correction1 * float64(degenerated_to_sgd))
    return (bias_correction1, bias_correction2, rho_t, rect, r_t, adaptive_step, sgd_step)
