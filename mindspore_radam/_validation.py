"""Argument checks for :class:`mindspore_radam.RAdam` and the schedulers of :mod:`mindspore_radam.lr_scheduler`.

Every check runs before the optimizer creates or touches any Parameter, and every failure is a
``ValueError`` or ``TypeError`` whose message names the argument and the value it got.
"""
import difflib
import math
import numbers
from collections.abc import Iterable

import numpy as np
from mindspore import Parameter, Tensor, ops
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import Optimizer


def class_name(value):
    """`value`'s class with its module (``mindtorch.nn.parameter.Parameter``): two frameworks' classes can
    share a name, and "must be a mindspore.Parameter, but got Parameter" helps nobody."""
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# The Parameter dtypes the update computes: float16/bfloat16 in float32, float32 and float64 in their own.
SUPPORTED_DTYPES = (mstype.float16, mstype.bfloat16, mstype.float32, mstype.float64)

HYPERPARAMETERS = (
    "lr", "betas", "eps", "weight_decay", "decoupled_weight_decay",
    "maximize", "threshold", "degenerated_to_sgd",
)

# Names users bring from other optimizer APIs (mindspore.nn, optax, Keras) that mean one of ours.
_ALIASES = {
    "learning_rate": "lr",
    "beta1": "betas",
    "beta2": "betas",
    "b1": "betas",
    "b2": "betas",
    "epsilon": "eps",
    "wd": "weight_decay",
    "decoupled": "decoupled_weight_decay",
}


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _real(name, value):
    """Returns `value` (a number or a one-element real Tensor) as a float, or raises TypeError naming `name`."""
    if isinstance(value, Tensor) and value.size == 1 and value.dtype != mstype.bool_:
        return float(value.asnumpy().reshape(()))
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, but got {value!r} of type {type(value).__name__}")
    return float(value)


def check_lr(value, name="lr"):
    """Learning rate: a non-negative finite int, float or one-element Tensor (of any rank, as torch
    accepts). Returns numbers unchanged and Tensors as 0-d Tensors."""
    if isinstance(value, Tensor):
        if value.size != 1:
            raise ValueError(f"{name} must be a Tensor with one element, but got a Tensor of shape {value.shape}")
        if value.dtype not in mstype.float_type + mstype.int_type + mstype.uint_type:
            raise TypeError(f"{name} must be a float, int or one-element real Tensor, but got a Tensor of dtype "
                            f"{value.dtype}")
        number = float(value.asnumpy().reshape(()))
        if value.ndim != 0:
            value = value.reshape(())
    elif _is_real(value):
        number = float(value)
    else:
        raise TypeError(f"{name} must be a float, int or scalar Tensor, but got {value!r} "
                        f"of type {type(value).__name__}")
    if not math.isfinite(number) or number < 0.0:
        raise ValueError(f"Invalid learning rate: {name}={number!r}; it must be finite and >= 0")
    return value


def check_betas(value, name="betas"):
    """Returns betas as a tuple of two floats, each in [0, 1)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a pair (beta1, beta2), but got {value!r}")
    betas = tuple(value)
    if len(betas) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), but got {len(betas)} values: {value!r}")
    checked = []
    for index, beta in enumerate(betas):
        beta = _real(f"{name}[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {name}[{index}]={beta!r}; "
                             f"it must be in [0, 1)")
        checked.append(beta)
    return tuple(checked)


def check_eps(value, name="eps"):
    eps = _real(name, value)
    if not math.isfinite(eps) or eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {name}={eps!r}; it must be finite and >= 0")
    return eps


def check_weight_decay(value, name="weight_decay"):
    weight_decay = _real(name, value)
    if not math.isfinite(weight_decay) or weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {name}={weight_decay!r}; it must be finite and >= 0")
    return weight_decay


def check_threshold(value, name="threshold"):
    threshold = _real(name, value)
    if not math.isfinite(threshold):
        raise ValueError(f"Invalid threshold value: {name}={threshold!r}; it must be a finite number")
    return threshold


def check_flag(value, name):
    if isinstance(value, Tensor) and value.size == 1 and value.dtype == mstype.bool_:
        value = bool(value.asnumpy().reshape(()))
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, but got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_fused(value):
    if value is not None and not _is_bool(value):
        raise TypeError(f"fused must be None, True or False, but got {value!r} of type {type(value).__name__}")
    return None if value is None else bool(value)


def check_hyperparameters(options, where=""):
    """Checks the hyperparameters present in `options`; returns a dict of normalized values.

    `where` prefixes the argument names in messages, e.g. ``param_groups[1]['eps']``.
    """
    def label(key):
        return f"{where}['{key}']" if where else key

    checked = {}
    checkers = {
        "lr": check_lr,
        "betas": check_betas,
        "eps": check_eps,
        "weight_decay": check_weight_decay,
        "threshold": check_threshold,
    }
    for key in HYPERPARAMETERS:
        if key not in options:
            continue
        if key in checkers:
            checked[key] = checkers[key](options[key], label(key))
        else:
            checked[key] = check_flag(options[key], label(key))
    return checked


def _did_you_mean(key, known, cutoff):
    """The known key that `key` probably means: its alias from another API if that is known here,
    else the closest spelling (``difflib``), else None."""
    alias = _ALIASES.get(key)
    if alias in known:
        return alias
    return next(iter(difflib.get_close_matches(key, known, n=1, cutoff=cutoff)), None)


def _check_group_keys(group, where):
    """Rejects keys that look like a misspelt hyperparameter; other keys are user metadata."""
    known = HYPERPARAMETERS + ("params",)
    for key in group:
        if key in known:
            continue
        if not isinstance(key, str):
            raise TypeError(f"{where} keys must be strings, but got {key!r}")
        guess = _did_you_mean(key, known, cutoff=0.75)
        if guess is not None:
            raise ValueError(f"{where} has an unknown key {key!r}; did you mean {guess!r}?")


def check_param_list(params, where):
    """Returns the Parameters of one group as a list."""
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{where} must be an ordered collection (list or tuple) of Parameters, but got a "
                        f"{type(params).__name__}, whose order changes between runs")
    if isinstance(params, (Tensor, str, bytes, dict)) or not isinstance(params, Iterable):
        raise TypeError(f"{where} must be a list of Parameters, but got {type(params).__name__}")
    params = list(params)
    for index, param in enumerate(params):
        if not isinstance(param, Parameter):
            raise TypeError(f"{where}[{index}] must be a mindspore.Parameter, but got {class_name(param)}")
        if param.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{where}[{index}]: Parameter {param.name!r} is {param.dtype}; RAdam updates "
                            f"floating-point Parameters only ({', '.join(str(d) for d in SUPPORTED_DTYPES)}). Complex Parameters: "
                            f"optimize their real and imaginary parts as two float Parameters; integer and bool "
                            f"ones have no gradient to follow")
        if not param.requires_grad:
            raise ValueError(frozen_message(f"{where}[{index}]", [param.name]))
    return params


def frozen_message(where, names):
    """Frozen Parameters (``requires_grad=False``) handed to an optimizer: MindSpore gives them zero
    gradients in PyNative, and their real ones inside ``jit``, so momentum, weight decay or the
    gradient would move them; torch leaves them untouched. Refused, with what works."""
    return (f"{where}: Parameters {names} have requires_grad=False (frozen), and an optimizer would still move them "
            f"(MindSpore computes their gradients inside jit, and momentum and weight decay act on zero ones). "
            f"Build the optimizer from net.trainable_params() (frozen Parameters then stay bit-identical); to "
            f"freeze a layer mid-run, build a new optimizer and train step from trainable_params() and load the "
            f"state into it with mindspore.load_param_into_net(new, old.parameters_dict(), strict_load=True)")


def check_param_groups(params):
    """Normalizes the `params` argument into a list of group dicts with validated values."""
    if params is None:
        raise TypeError("params must be a list of Parameters or a list of dicts, but got None")
    if isinstance(params, (set, frozenset)):
        raise TypeError("params must be an ordered collection (list or tuple), but got a set, whose "
                        "order changes between runs")
    if isinstance(params, (Parameter, Tensor)):
        raise TypeError("params must be a list of Parameters or a list of dicts, but got a single "
                        f"{type(params).__name__}; wrap it in a list")
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(f"params must be a list of Parameters or a list of dicts, but got "
                        f"{type(params).__name__}")
    items = list(params)
    if not items:
        raise ValueError("params is empty: the optimizer got no Parameters to optimize")
    if all(isinstance(item, dict) for item in items):
        groups = items
    elif any(isinstance(item, dict) for item in items):
        raise TypeError("params must be either all Parameters or all dicts, not a mix")
    else:
        groups = [{"params": check_param_list(items, "params")}]

    owned = set()
    checked_groups = []
    for index, group in enumerate(groups):
        where = f"params[{index}]" if len(groups) > 1 or isinstance(items[0], dict) else "params"
        checked_groups.append(check_group(group, where, owned))
    return checked_groups


def check_group(group, where, owned):
    """Validates one group dict; `owned` is the set of ids of Parameters already taken (updated)."""
    if not isinstance(group, dict):
        raise TypeError(f"{where} must be a dict with a 'params' key, but got {type(group).__name__}")
    if "params" not in group:
        raise ValueError(f"{where} has no 'params' key")
    _check_group_keys(group, where)
    group_params = check_param_list(group["params"], f"{where}['params']")  # may be empty, as in torch
    for param in group_params:
        if id(param) in owned:
            raise ValueError(f"Parameter {param.name!r} appears more than once among the optimizer's "
                             f"parameter groups ({where})")
        owned.add(id(param))
    checked = dict(group)
    checked.update(check_hyperparameters(group, where))
    checked["params"] = group_params
    return checked


_shape_and_dtype = ops.MultitypeFuncGraph("shape_and_dtype")


@_shape_and_dtype.register("Tensor")
def _tensor_shape_and_dtype(tensor):
    return tensor.shape, tensor.dtype


# Sparse gradients (graph code): named, so the check below reports them.
@_shape_and_dtype.register("RowTensor")
def _row_tensor_shape_and_dtype(tensor):
    return "RowTensor", tensor.values.dtype


@_shape_and_dtype.register("COOTensor")
def _coo_tensor_shape_and_dtype(tensor):
    return "COOTensor", tensor.values.dtype


@_shape_and_dtype.register("CSRTensor")
def _csr_tensor_shape_and_dtype(tensor):
    return "CSRTensor", tensor.values.dtype


def check_gradients_from_python(gradients, expected, names):
    """:func:`check_gradients` for calls from Python, where a plain loop is cheaper than ``HyperMap``'s
    dispatch (0.2 against 0.7 ms for 10 tensors); sparse gradients are refused first: one that left a
    ``jit`` function arrives as a tuple ``(indices, values, dense_shape)``, or as a RowTensor object."""
    if len(gradients) != len(expected):
        raise ValueError(f"gradients: expected {len(expected)} tensors, one per parameter in "
                         f"optimizer.parameters order, but got {len(gradients)}")
    check_dense_gradients(gradients, names)
    got = tuple((tuple(grad.shape), grad.dtype) for grad in gradients)
    if got != expected:
        _raise_first_mismatch(got, expected, names)


def check_dense_gradients(gradients, names):
    """Calls from Python: every gradient is a Tensor (see :func:`check_gradients_from_python`)."""
    for index, (grad, name) in enumerate(zip(gradients, names)):
        if not isinstance(grad, Tensor):
            kind = type(grad).__name__
            if isinstance(grad, tuple):
                kind = "a tuple (indices, values, dense_shape): a RowTensor out of a jit function"
            elif not kind.endswith("Tensor"):
                raise TypeError(f"gradients[{index}] for parameter '{name}' must be a mindspore.Tensor, but got "
                                f"{class_name(grad)}")
            raise TypeError(f"gradients[{index}] for parameter '{name}' is a sparse gradient ({kind}, e.g. from "
                            f"nn.EmbeddingLookup(..., sparse=True)): RAdam takes dense gradients, as torch.optim.RAdam "
                            f"does. Use a dense layer (nn.Embedding, or nn.EmbeddingLookup(..., target='DEVICE', "
                            f"sparse=False)). Nothing was updated.")


def check_gradients(gradients, expected, names):
    """Call-time check of the gradient tuple against the parameters' ``(shape, dtype)`` pairs and names.

    Runs in Python (PyNative) and at compile time in graph code, where shapes and dtypes are
    constants. One ``HyperMap`` gathers them, so graph code compares a single tuple however many
    tensors there are; a loop of per-tensor ``if``s would nest one graph per tensor and exceed
    MindSpore's call depth at a few hundred tensors.
    """
    if len(gradients) != len(expected):
        raise ValueError(f"gradients: expected {len(expected)} tensors, one per parameter in "
                         f"optimizer.parameters order, but got {len(gradients)}")
    got = ops.HyperMap()(_shape_and_dtype, gradients)
    if got != expected:
        _raise_first_mismatch(got, expected, names)


def _raise_first_mismatch(got, expected, names):
    for index, ((shape, dtype), (want_shape, want_dtype), name) in enumerate(zip(got, expected, names)):
        if isinstance(shape, str):  # graph code raises only builtin exceptions, written out here
            raise TypeError(f"gradients[{index}] for parameter '{name}' is a sparse gradient ({shape}, e.g. from "
                            f"nn.EmbeddingLookup(..., sparse=True)): RAdam takes dense gradients, as torch.optim.RAdam "
                            f"does. Use a dense layer (nn.Embedding, or nn.EmbeddingLookup(..., target='DEVICE', "
                            f"sparse=False)). "
                            f"Nothing was updated.")
        if shape != want_shape and len(shape) == len(want_shape) > 1 and shape[1:] == want_shape[1:]:
            raise ValueError(f"gradients[{index}]: shape {shape} does not match parameter "
                             f"'{name}' of shape {want_shape}: if it is a sparse gradient's rows (PyNative hands "
                             f"on those alone, e.g. for nn.EmbeddingLookup(..., sparse=True)), use a dense layer "
                             f"(nn.Embedding, or nn.EmbeddingLookup(..., target='DEVICE', sparse=False)); RAdam takes "
                             f"dense gradients")
        if shape != want_shape:
            raise ValueError(f"gradients[{index}]: shape {shape} does not match parameter "
                             f"'{name}' of shape {want_shape}")
        if dtype != want_dtype:
            raise TypeError(f"gradients[{index}]: dtype {dtype} does not match parameter "
                            f"'{name}' of dtype {want_dtype}")


def _count(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, but got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {value}")


def _fraction(name, value, low, high, closed):
    number = _real(name, value)
    inside = low <= number <= high if closed else low < number < high
    if not inside:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{name} must be in {bounds}, but got {number!r}")


def _positive(name, value, allow_zero=False):
    number = _real(name, value)
    if not math.isfinite(number) or number < 0.0 or (number == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>= 0' if allow_zero else '> 0'}, but got {number!r}")


_SCHEDULER_CHECKS = {
    "warmup_steps": lambda name, value: _count(name, value, 0),
    "flat_steps": lambda name, value: _count(name, value, 0),
    "total_steps": lambda name, value: _count(name, value, 1),
    "epochs": lambda name, value: _count(name, value, 1),
    "steps_per_epoch": lambda name, value: _count(name, value, 1),
    "eta_min": lambda name, value: _positive(name, value, allow_zero=True),
    "warmup_start_factor": lambda name, value: _fraction(name, value, 0.0, 1.0, closed=True),
    "pct_start": lambda name, value: _fraction(name, value, 0.0, 1.0, closed=False),
    "div_factor": _positive,
    "final_div_factor": _positive,
    "three_phase": lambda name, value: check_flag(value, name),
}


def _check_optimizer(owner, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be a mindspore.experimental.optim.Optimizer "
                        f"(mindspore_radam.RAdam is one), but got {type(optimizer).__name__}")


def check_scheduler_args(scheduler, optimizer, last_epoch, **arguments):
    """Checks a scheduler's arguments (see mindspore_radam.lr_scheduler) before it changes anything."""
    _check_optimizer(scheduler, optimizer)
    _count(f"{scheduler}: last_epoch", last_epoch, -1)
    for key, value in arguments.items():
        name = f"{scheduler}: {key}"
        if key in _SCHEDULER_CHECKS:
            _SCHEDULER_CHECKS[key](name, value)
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
                _positive(f"{name}[{index}]", rate)


def check_lookahead(optimizer, k, alpha):
    """Lookahead's arguments (see mindspore_radam.lookahead)."""
    _check_optimizer("Lookahead", optimizer)
    _count("Lookahead: k", k, 1)
    _fraction("Lookahead: alpha", alpha, 0.0, 1.0, closed=True)


def check_grads_finite(flag):
    """The optional ``grads_finite`` input of an optimizer call: None or a one-element bool Tensor.

    Runs in Python (PyNative) and at compile time in graph code, where dtype and shape are constants.
    """
    if flag is None:
        return
    if not isinstance(flag, Tensor):
        raise TypeError(f"grads_finite must be None or a bool Tensor (e.g. mindspore.amp.all_finite(grads)), "
                        f"but got {type(flag).__name__}")
    if flag.dtype != mstype.bool_ or flag.size != 1:
        raise TypeError(f"grads_finite must be a bool Tensor with one element, but got dtype {flag.dtype} "
                        f"and shape {flag.shape}")


def check_state_dtype(value):
    """``state_dtype``: None (float32 state for half-precision parameters) or "param"."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"state_dtype must be None or 'param', but got {value!r} of type {type(value).__name__}")
    if value not in (None, "param"):
        raise ValueError(f"state_dtype must be None (float32 state for float16/bfloat16 parameters) or 'param' "
                         f"(the parameter's dtype), but got {value!r}")
    return value


# --- mindspore_radam.nn.RAdam (the mindspore.nn.Optimizer front door) ---

NN_GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization")


def check_beta(value, name):
    """One coefficient, in [0, 1), named `name` in errors."""
    beta = _real(name, value)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"Invalid {name}: {beta!r}; it must be in [0, 1)")
    return beta


def check_nn_betas(beta1, beta2, betas):
    """``nn.RAdam``'s coefficients: ``beta1``/``beta2`` (the ``nn`` family's names) or ``betas`` (torch's
    and the experimental family's pair, which framework configs write), one way, not both. Returns the
    pair; the defaults are ``(0.9, 0.999)``."""
    if betas is not None:
        if beta1 is not None or beta2 is not None:
            given = ", ".join(name for name, value in (("beta1", beta1), ("beta2", beta2)) if value is not None)
            raise ValueError(f"give either betas or beta1/beta2, not both: got betas={betas!r} and {given}")
        return check_betas(betas, "betas")
    return (check_beta(0.9 if beta1 is None else beta1, "beta1"),
            check_beta(0.999 if beta2 is None else beta2, "beta2"))


def check_nn_learning_rate(value, name="learning_rate"):
    """An ``nn``-style learning rate: a number, a 0-d Tensor, a 1-d Tensor or a list of numbers
    indexed by the global step, or a ``LearningRateSchedule``. Values must be finite and >= 0."""
    from mindspore.nn.learning_rate_schedule import LearningRateSchedule  # pylint: disable=import-outside-toplevel
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, Tensor):
        if value.ndim > 1:
            raise ValueError(f"{name} must be a 0-d or 1-d Tensor, but got a Tensor of shape {value.shape}")
        if value.dtype == mstype.bool_:
            raise TypeError(f"{name} must hold numbers, but got a Bool Tensor")
        values = value.asnumpy().astype(np.float64).reshape(-1)
    elif _is_real(value):
        values = np.array([float(value)])
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not _is_real(item):
                raise TypeError(f"{name}[{index}] must be a real number, but got {item!r}")
        values = np.array([float(item) for item in value])
    else:
        raise TypeError(f"{name} must be a float, int, Tensor, list of numbers or LearningRateSchedule, "
                        f"but got {type(value).__name__}")
    if values.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(values)) or np.any(values < 0.0):
        raise ValueError(f"Invalid learning rate: {name} must be finite and >= 0, but got {value!r}")
    return value


def check_nn_weight_decay(value, name="weight_decay"):
    """A number >= 0, or a Cell mapping the global step to the coefficient (a dynamic weight decay)."""
    from mindspore.nn import Cell  # pylint: disable=import-outside-toplevel
    if isinstance(value, Cell):
        return value
    if not _is_real(value):
        raise TypeError(f"{name} must be a float, int or a Cell of the global step, but got {value!r} "
                        f"of type {type(value).__name__}")
    return check_weight_decay(value, name)


def check_loss_scale(value):
    if not _is_real(value):
        raise TypeError(f"loss_scale must be a float, but got {value!r} of type {type(value).__name__}")
    if not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ValueError(f"Invalid loss_scale: {value!r}; it must be finite and > 0")
    return float(value)


def check_nn_params(params):
    """``mindspore.nn.Optimizer``'s `params`: Parameters, or group dicts (``NN_GROUP_KEYS``) and at
    most one ``{'order_params': ...}`` dict. Checks what ``nn.Optimizer`` would reject later, with
    errors that name the argument, before anything is created."""
    if isinstance(params, (Parameter, Tensor)) or params is None or isinstance(params, (str, bytes, dict)) \
            or not isinstance(params, Iterable) or isinstance(params, (set, frozenset)):
        raise TypeError(f"params must be a list of Parameters or of group dicts, but got {type(params).__name__}")
    items = list(params)
    if not items:
        raise ValueError("params is empty: the optimizer got no Parameters to optimize")
    if not all(isinstance(item, dict) for item in items):
        check_param_list(items, "params")
        _check_unique(items, "params")
        return items
    seen, group_params, ordered = [], [], None
    for index, group in enumerate(items):
        where = f"params[{index}]"
        if "order_params" in group:
            if len(group) > 1:
                raise ValueError(f"{where}: the 'order_params' dict must hold only that key, but has {sorted(group)}")
            ordered = check_param_list(group["order_params"], f"{where}['order_params']")
            continue
        for key in group:
            if key not in NN_GROUP_KEYS:
                guess = _did_you_mean(str(key), NN_GROUP_KEYS, cutoff=0.6)
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise ValueError(f"{where} has an unknown key {key!r} (known: {', '.join(NN_GROUP_KEYS)}, "
                                 f"or a separate 'order_params' dict){hint}")
        if "params" not in group:
            raise ValueError(f"{where} has no 'params' key")
        members = check_param_list(group["params"], f"{where}['params']")
        if not members:
            raise ValueError(f"{where}['params'] is empty")
        if "lr" in group:
            check_nn_learning_rate(group["lr"], f"{where}['lr']")
        if "weight_decay" in group:
            check_nn_weight_decay(group["weight_decay"], f"{where}['weight_decay']")
        if "grad_centralization" in group:
            check_flag(group["grad_centralization"], f"{where}['grad_centralization']")
        seen += members
        group_params.append(members)
    _check_unique(seen, "params")
    if ordered is not None and (len(ordered) != len(seen) or {id(p) for p in ordered} != {id(p) for p in seen}):
        raise ValueError("params: 'order_params' must list exactly the Parameters of the groups, each once")
    return items


def _check_unique(params, where):
    names = set()
    for param in params:
        if param.name in names:
            raise ValueError(f"{where}: Parameter {param.name!r} appears more than once")
        names.add(param.name)
