"""The argument checks every front door shares: values, Parameter lists, group keys, gradients.

Each owner keeps its own rules beside it (the core door's groups in :mod:`mindspore_radam.radam`, the
``nn`` door's in :mod:`mindspore_radam.nn`, the schedulers' in :mod:`mindspore_radam.lr_scheduler`,
Lookahead's in :mod:`mindspore_radam.lookahead`) and builds them from these. Every check runs before
anything is created or touched; every failure is a ``ValueError`` or ``TypeError`` whose message names
the argument as the user wrote it and the value it got.
"""
import difflib
import math
import numbers
from collections.abc import Iterable

import numpy as np
from mindspore import Parameter, Tensor, ops
import mindspore.common.dtype as mstype
from mindspore.experimental.optim import Optimizer

from mindspore_radam import _internals


def class_name(value):
    """`value`'s class with its module (``mindtorch.nn.parameter.Parameter``): two frameworks' classes can
    share a name, and "must be a mindspore.Parameter, but got Parameter" helps nobody."""
    if isinstance(value, Parameter):  # its class is made per instance, in module "abc"
        return "mindspore.Parameter"
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


def is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def real(name, value):
    """Returns `value` (a number or a one-element real Tensor) as a float, or raises TypeError naming `name`."""
    if isinstance(value, Tensor) and value.size == 1 and value.dtype != mstype.bool_:
        return float(value.asnumpy().reshape(()))
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, but got {value!r} of type {class_name(value)}")
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
    elif is_real(value):
        number = float(value)
    else:
        raise TypeError(f"{name} must be a float, int or scalar Tensor, but got {value!r} "
                        f"of type {class_name(value)}")
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
        beta = real(f"{name}[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {name}[{index}]={beta!r}; "
                             f"it must be in [0, 1)")
        checked.append(beta)
    return tuple(checked)


def check_eps(value, name="eps"):
    eps = real(name, value)
    if not math.isfinite(eps) or eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {name}={eps!r}; it must be finite and >= 0")
    return eps


def check_weight_decay(value, name="weight_decay"):
    weight_decay = real(name, value)
    if not math.isfinite(weight_decay) or weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {name}={weight_decay!r}; it must be finite and >= 0")
    return weight_decay


def check_threshold(value, name="threshold"):
    threshold = real(name, value)
    if not math.isfinite(threshold):
        raise ValueError(f"Invalid threshold value: {name}={threshold!r}; it must be a finite number")
    return threshold


def check_flag(value, name):
    if isinstance(value, Tensor) and value.size == 1 and value.dtype == mstype.bool_:
        value = bool(value.asnumpy().reshape(()))
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, but got {value!r} of type {class_name(value)}")
    return bool(value)


def check_fused(value):
    if value is not None and not _is_bool(value):
        raise TypeError(f"fused must be None, True or False, but got {value!r} of type {class_name(value)}")
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


def check_group_keys(group, where, known, *, metadata):
    """The one group-key rule of both doors: a key that looks like a misspelt or foreign name of a known key
    (``weight_decy``, ``learning_rate``) is refused with the key it probably means. Other unknown keys are
    the user's metadata where the door keeps it (`metadata`, torch's convention), else refused too."""
    for key in group:
        if key in known:
            continue
        if not isinstance(key, str):
            raise TypeError(f"{where} keys must be strings, but got {key!r}")
        guess = _did_you_mean(key, known, cutoff=0.75)
        if guess is not None:
            raise ValueError(f"{where} has an unknown key {key!r}; did you mean {guess!r}?")
        if not metadata:
            raise ValueError(f"{where} has an unknown key {key!r}; a group holds {', '.join(map(repr, known))}")


def check_unique(params, where, taken):
    """The one duplicate rule of both doors: a Parameter is optimized once, and no two share a name (the
    optimizer's state is saved under it, as MindSpore's own optimizers require). `taken` maps the names
    already owned to their Parameters, and is updated."""
    for param in params:
        other = taken.get(param.name)
        if other is param:
            raise ValueError(f"Parameter {param.name!r} appears more than once among the optimizer's "
                             f"parameters ({where})")
        if other is not None:
            raise ValueError(f"{where}: two different Parameters are named {param.name!r}; the optimizer saves its "
                             f"state under each Parameter's name, so names must be unique: name them "
                             f"(Parameter(..., name=...)) or take them from one Cell, which names them by attribute")
        taken[param.name] = param


def check_param_list(params, where):
    """Returns the Parameters of one group as a list."""
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{where} must be an ordered collection (list or tuple) of Parameters, but got a "
                        f"{class_name(params)}, whose order changes between runs")
    if isinstance(params, (Tensor, str, bytes, dict)) or not isinstance(params, Iterable):
        raise TypeError(f"{where} must be a list of Parameters, but got {class_name(params)}")
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
        if _internals.is_view(param):
            raise ValueError(view_message(f"{where}[{index}]", [param.name]))
    return params


def view_message(where, names):
    """Parameters holding a view of another tensor's storage: MindSpore's kernels can't update them in place
    (the update would land in a copy), so every implementation refuses them, naming what works."""
    return (f"{where}: Parameters {names} hold a view of another tensor (set_data of a slice such as table[3:7], or "
            f"of a transpose), which MindSpore's kernels can't update in place: the update would be lost. Give each "
            f"its own storage, e.g. param.set_data(view.copy()) or Parameter(view.copy(), name=...), and copy the "
            f"trained values back into the viewed tensor yourself if you need them there")


def frozen_message(where, names):
    """Frozen Parameters (``requires_grad=False``) handed to an optimizer: MindSpore gives them zero
    gradients in PyNative, and their real ones inside ``jit``, so momentum, weight decay or the
    gradient would move them; torch leaves them untouched. Refused, with what works."""
    return (f"{where}: Parameters {names} have requires_grad=False (frozen), and an optimizer would still move them "
            f"(MindSpore computes their gradients inside jit, and momentum and weight decay act on zero ones). "
            f"Build the optimizer from net.trainable_params() (frozen Parameters then stay bit-identical); to "
            f"freeze a layer mid-run, build a new optimizer and train step from trainable_params(), load each "
            f"Parameter's state into it with mindspore.load_param_into_net(new, {{k: v for k, v in "
            f"old.parameters_dict().items() if k.startswith(('exp_avg.', 'exp_avg_sq.', 'kahan_comp.', 'global_step'))}}, "
            f"strict_load=True) and set "
            f"each group's step count (new.steps[i].set_data(old.steps[j].value()))")


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
    """What a call from Python checks before it runs the compiled step: the count, and that every gradient
    is a dense Tensor (sparse ones are refused first: one that left a ``jit`` function arrives as a tuple
    ``(indices, values, dense_shape)``, or as a RowTensor object). Shapes and dtypes are checked while the
    step compiles (:func:`check_gradients` in its graph code; MindSpore compiles it again for new shapes or
    dtypes): read from Python, they wait for the queued ops that compute the gradients."""
    check_gradient_sequence(gradients)
    if len(gradients) != len(expected):
        raise ValueError(f"gradients: expected {len(expected)} tensors, one per parameter in "
                         f"optimizer.parameters order, but got {len(gradients)}")
    check_dense_gradients(gradients, names)


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


def check_gradient_sequence(gradients):
    """The gradients come as a tuple or a list (of Tensors, checked next); in Python and in graph code (where
    a message must be a constant: a Tensor's class name is not, so that case has its own)."""
    for kind, name in ((Tensor, "a single Tensor"), (dict, "a dict")):
        if isinstance(gradients, kind):
            raise TypeError("gradients must be a tuple or list of Tensors, one per parameter in optimizer.parameters "
                            "order (e.g. from mindspore.value_and_grad), but got " + name)
    if not isinstance(gradients, (tuple, list)):
        raise TypeError(f"gradients must be a tuple or list of Tensors, one per parameter in optimizer.parameters "
                        f"order (e.g. from mindspore.value_and_grad), but got {class_name(gradients)}")


def check_gradients(gradients, expected, names):
    """Call-time check of the gradient tuple against the parameters' ``(shape, dtype)`` pairs and names.

    Runs in Python (PyNative) and at compile time in graph code, where shapes and dtypes are
    constants. One ``HyperMap`` gathers them, so graph code compares a single tuple however many
    tensors there are; a loop of per-tensor ``if``s would nest one graph per tensor and exceed
    MindSpore's call depth at a few hundred tensors.
    """
    check_gradient_sequence(gradients)
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


def check_grads_finite(flag, attributes=True):
    """The optional ``grads_finite`` input of an optimizer call: None or a one-element bool Tensor.

    Runs at compile time in graph code, where dtype and shape are constants, and in Python with
    `attributes` False: there only the type is checked, since reading a queued Tensor's dtype waits for
    MindSpore's pipeline (the compiled step checks the rest).
    """
    if flag is None:
        return
    if not isinstance(flag, Tensor):
        raise TypeError(f"grads_finite must be None or a bool Tensor (e.g. mindspore.amp.all_finite(grads)), "
                        f"but got {class_name(flag)}")
    if attributes and (flag.dtype != mstype.bool_ or flag.size != 1):
        raise TypeError(f"grads_finite must be a bool Tensor with one element, but got dtype {flag.dtype} "
                        f"and shape {flag.shape}")


def check_state_dtype(value):
    """``state_dtype``: None (float32 state for half-precision parameters) or "param"."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"state_dtype must be None or 'param', but got {value!r} of type {class_name(value)}")
    if value not in (None, "param"):
        raise ValueError(f"state_dtype must be None (float32 state for float16/bfloat16 parameters) or 'param' "
                         f"(the parameter's dtype), but got {value!r}")
    return value


def check_beta(value, name):
    """One coefficient, in [0, 1), named `name` in errors (``beta1``, not ``betas[0]``)."""
    beta = real(name, value)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"Invalid {name}: {beta!r}; it must be in [0, 1)")
    return beta


def check_count(name, value, minimum):
    """An int >= `minimum` (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, but got {value!r} of type {class_name(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, but got {value}")


def check_fraction(name, value, low, high, closed):
    """A real number in [low, high] (`closed`) or (low, high)."""
    number = real(name, value)
    inside = low <= number <= high if closed else low < number < high
    if not inside:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{name} must be in {bounds}, but got {number!r}")


def check_positive(name, value, allow_zero=False):
    """A finite real number > 0 (>= 0 with `allow_zero`)."""
    number = real(name, value)
    if not math.isfinite(number) or number < 0.0 or (number == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>= 0' if allow_zero else '> 0'}, but got {number!r}")


def check_optimizer(owner, optimizer):
    """What a scheduler or Lookahead drives: an experimental-family optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be a mindspore.experimental.optim.Optimizer "
                        f"(mindspore_radam.RAdam is one), but got {class_name(optimizer)}")
