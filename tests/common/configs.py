"""The shared tables every device suite runs: valid configurations and bad inputs.

Like torch's OptimizerInfo: `CONFIGS` are valid (kwargs, groups) pairs checked against the float64
reference; `BAD_INPUTS` must raise at construction (or in add_param_group); `BAD_CALLS` must raise
when the optimizer is called, leaving everything unchanged.
"""
from dataclasses import dataclass
import math

import numpy as np
from mindspore import Parameter, Tensor
import mindspore.common.dtype as mstype

# Includes a 0-d and a zero-size parameter.
SHAPES = ((4, 3), (7,), (), (0,), (2, 3, 2))
STEPS = 15  # well past t=6, the first rectified step for beta2=0.999


@dataclass(frozen=True)
class OptimizerInput:
    desc: str
    kwargs: dict
    # Per-group overrides; each entry takes a slice of the parameters (see `split`). None: one group.
    groups: tuple = None
    grad_scale: float = 1.0


def split(n_params, n_groups):
    """Contiguous slices of the parameter list, one per group."""
    bounds = np.linspace(0, n_params, n_groups + 1).round().astype(int)
    return [slice(bounds[i], bounds[i + 1]) for i in range(n_groups)]


CONFIGS = (
    OptimizerInput("default", {}),
    OptimizerInput("lr_0.1", {"lr": 0.1}),
    OptimizerInput("lr_int", {"lr": 1, "betas": (0.8, 0.99)}, grad_scale=1e-2),
    OptimizerInput("lr_tensor", {"lr": Tensor(0.05, mstype.float32)}),
    OptimizerInput("betas_0.9_0.99", {"lr": 0.01, "betas": (0.9, 0.99)}),
    OptimizerInput("beta2_0.9999", {"lr": 0.1, "betas": (0.9, 0.9999)}),
    OptimizerInput("beta2_0.99999", {"lr": 0.1, "betas": (0.9, 0.99999)}),
    OptimizerInput("beta1_0", {"lr": 0.01, "betas": (0.0, 0.999)}),
    OptimizerInput("beta2_0_never_rectified", {"lr": 0.01, "betas": (0.9, 0.0)}),
    OptimizerInput("betas_0.5", {"lr": 0.01, "betas": (0.5, 0.5)}),
    OptimizerInput("eps_0", {"lr": 0.01, "eps": 0.0}),
    OptimizerInput("eps_large", {"lr": 0.01, "eps": 0.1}),
    OptimizerInput("weight_decay_l2", {"lr": 0.01, "weight_decay": 0.1}),
    OptimizerInput("weight_decay_decoupled", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    OptimizerInput("maximize", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    OptimizerInput("threshold_8", {"lr": 0.01, "threshold": 8.0}),
    OptimizerInput("no_sgd_fallback", {"lr": 0.01, "degenerated_to_sgd": False}),
    OptimizerInput("no_sgd_fallback_decoupled",
                   {"lr": 0.01, "degenerated_to_sgd": False, "weight_decay": 0.2, "decoupled_weight_decay": True}),
    OptimizerInput(
        "groups_mixed",
        {"lr": 0.01},
        groups=(
            {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1, "name": "first"},
            {"betas": (0.9, 0.9999), "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True,
             "threshold": 6.5, "eps": 1e-6},
        )),
    OptimizerInput(
        "groups_three",
        {"lr": 0.02, "betas": (0.9, 0.999)},
        groups=(
            {"degenerated_to_sgd": False},
            {"lr": Tensor(0.003, mstype.float32), "betas": (0.0, 0.99999)},
            {"threshold": 10.0, "weight_decay": 0.3},
        )),
)


def make_arrays(seed, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def make_params(arrays, prefix="p"):
    return [Parameter(Tensor(a.copy()), name=f"{prefix}{i}") for i, a in enumerate(arrays)]


def build_groups(config, params):
    """The `params` argument for RAdam(...) for a config."""
    if config.groups is None:
        return list(params)
    slices = split(len(params), len(config.groups))
    return [dict(overrides, params=list(params[s])) for overrides, s in zip(config.groups, slices)]


def reference_groups(config, arrays):
    """The same groups for the float64 reference, with hyperparameters as plain numbers."""
    def plain(options):
        return {k: (float(v.asnumpy()) if isinstance(v, Tensor) else v) for k, v in options.items()}
    base = plain(config.kwargs)
    if config.groups is None:
        return [dict(base, params=arrays)]
    slices = split(len(arrays), len(config.groups))
    return [dict(base, **plain(overrides), params=arrays[s]) for overrides, s in zip(config.groups, slices)]


@dataclass(frozen=True)
class ErrorInput:
    desc: str
    # Called with fresh parameters; returns (args, kwargs) for RAdam.
    make: object
    error: type
    regex: str


def _kw(**kwargs):
    return lambda ps: ((ps,), kwargs)


def _odd(name, dtype):
    """A Parameter of a dtype RAdam does not compute."""
    return Parameter(Tensor(np.ones(3, dtype)), name=name)


def _group(**options):
    return lambda ps: (([{"params": ps[:2]}, dict(options, params=ps[2:])],), {})


BAD_INPUTS = (
    ErrorInput("lr_negative", _kw(lr=-0.1), ValueError, r"Invalid learning rate: lr=-0\.1"),
    ErrorInput("lr_nan", _kw(lr=math.nan), ValueError, r"Invalid learning rate: lr=nan"),
    ErrorInput("lr_inf", _kw(lr=math.inf), ValueError, r"Invalid learning rate: lr=inf"),
    ErrorInput("lr_string", _kw(lr="0.1"), TypeError, r"lr must be a float, int or scalar Tensor.*'0\.1'"),
    ErrorInput("lr_none", _kw(lr=None), TypeError, r"lr must be a float, int or scalar Tensor.*None"),
    ErrorInput("lr_bool", _kw(lr=True), TypeError, r"lr must be a float, int or scalar Tensor.*True"),
    ErrorInput("lr_tensor_two_elements", _kw(lr=Tensor(np.ones(2, np.float32))), ValueError,
               r"lr must be a Tensor with one element.*\(2,\)"),
    ErrorInput("lr_tensor_bool", _kw(lr=Tensor(True)), TypeError, r"lr must be .* real Tensor.*Bool"),
    ErrorInput("lr_tensor_negative", _kw(lr=Tensor(-1.0, mstype.float32)), ValueError,
               r"Invalid learning rate: lr=-1\.0"),
    ErrorInput("eps_negative", _kw(eps=-1e-8), ValueError, r"Invalid epsilon value: eps=-1e-08"),
    ErrorInput("eps_nan", _kw(eps=math.nan), ValueError, r"Invalid epsilon value: eps=nan"),
    ErrorInput("eps_string", _kw(eps="tiny"), TypeError, r"eps must be a real number.*'tiny'"),
    ErrorInput("weight_decay_negative", _kw(weight_decay=-0.1), ValueError,
               r"Invalid weight_decay value: weight_decay=-0\.1"),
    ErrorInput("weight_decay_nan", _kw(weight_decay=math.nan), ValueError,
               r"Invalid weight_decay value: weight_decay=nan"),
    ErrorInput("betas_single", _kw(betas=(0.9,)), ValueError, r"betas must be a pair.*1 values"),
    ErrorInput("betas_triple", _kw(betas=(0.9, 0.99, 0.999)), ValueError, r"betas must be a pair.*3 values"),
    ErrorInput("betas_scalar", _kw(betas=0.9), TypeError, r"betas must be a pair.*0\.9"),
    ErrorInput("beta1_one", _kw(betas=(1.0, 0.999)), ValueError, r"Invalid beta parameter at index 0: betas\[0\]=1\.0"),
    ErrorInput("beta2_one", _kw(betas=(0.9, 1.0)), ValueError, r"Invalid beta parameter at index 1: betas\[1\]=1\.0"),
    ErrorInput("beta1_negative", _kw(betas=(-0.1, 0.999)), ValueError, r"Invalid beta parameter at index 0"),
    ErrorInput("beta2_nan", _kw(betas=(0.9, math.nan)), ValueError, r"Invalid beta parameter at index 1.*nan"),
    ErrorInput("beta_string", _kw(betas=("0.9", 0.999)), TypeError, r"betas\[0\] must be a real number"),
    ErrorInput("threshold_inf", _kw(threshold=math.inf), ValueError, r"Invalid threshold value: threshold=inf"),
    ErrorInput("threshold_nan", _kw(threshold=math.nan), ValueError, r"Invalid threshold value: threshold=nan"),
    ErrorInput("threshold_string", _kw(threshold="5"), TypeError, r"threshold must be a real number"),
    ErrorInput("maximize_not_bool", _kw(maximize=1), TypeError, r"maximize must be a bool.*1"),
    ErrorInput("decoupled_not_bool", _kw(decoupled_weight_decay="yes"), TypeError,
               r"decoupled_weight_decay must be a bool"),
    ErrorInput("degenerated_not_bool", _kw(degenerated_to_sgd=None), TypeError, r"degenerated_to_sgd must be a bool"),
    ErrorInput("fused_not_bool", _kw(fused="yes"), TypeError, r"fused must be None, True or False.*'yes'"),
    ErrorInput("state_dtype_unknown", _kw(state_dtype="float32"), ValueError,
               r"state_dtype must be None .* or 'param' .*, but got 'float32'"),
    ErrorInput("state_dtype_not_str", _kw(state_dtype=mstype.float16), TypeError,
               r"state_dtype must be None or 'param', but got mindspore.float16"),
    ErrorInput("kahan_not_bool", _kw(kahan_summation=1), TypeError, r"kahan_summation must be a bool, but got 1"),
    ErrorInput("params_none", lambda ps: ((None,), {}), TypeError, r"params must be .* got None"),
    ErrorInput("params_empty", lambda ps: (([],), {}), ValueError, r"params is empty"),
    ErrorInput("params_set", lambda ps: ((set(ps),), {}), TypeError, r"params must be an ordered collection.*set"),
    ErrorInput("params_single_parameter", lambda ps: ((ps[0],), {}), TypeError, r"single Parameter; wrap it in a list"),
    ErrorInput("params_tensor_inside", lambda ps: (([ps[0], Tensor(np.ones(2, np.float32))],), {}), TypeError,
               r"params\[1\] must be a mindspore\.Parameter, but got mindspore\.[\w.]*Tensor"),
    ErrorInput("params_number_inside", lambda ps: (([ps[0], 3.0],), {}), TypeError,
               r"params\[1\] must be a mindspore\.Parameter, but got float"),
    ErrorInput("params_mixed_dict_and_parameter", lambda ps: (([{"params": ps[:1]}, ps[1]],), {}), TypeError,
               r"either all Parameters or all dicts"),
    ErrorInput("parameter_twice_in_group", lambda ps: (([ps[0], ps[0]],), {}), ValueError,
               r"Parameter 'p0' appears more than once"),
    ErrorInput("parameter_in_two_groups", lambda ps: (([{"params": ps[:2]}, {"params": ps[1:]}],), {}), ValueError,
               r"Parameter 'p1' appears more than once"),
    ErrorInput("two_parameters_one_name", lambda ps: (([ps[0], ps[1], _odd("p1", np.float32)],), {}), ValueError,
               r"params: two different Parameters are named 'p1'; the optimizer saves its state under each"),
    ErrorInput("group_parameters_one_name", lambda ps: (([{"params": ps[:2]}, {"params": [_odd("p0", np.float32)]}],), {}),
               ValueError, r"params\[1\]: two different Parameters are named 'p0'"),
    ErrorInput("group_without_params", lambda ps: (([{"params": ps}, {"lr": 0.1}],), {}), ValueError,
               r"params\[1\] has no 'params' key"),
    ErrorInput("group_params_set", lambda ps: (([{"params": set(ps)}],), {}), TypeError,
               r"params\[0\]\['params'\] must be an ordered collection"),
    ErrorInput("param_complex64", lambda ps: (([ps[0], _odd("z", np.complex64)],), {}), TypeError,
               r"params\[1\]: Parameter 'z' is Complex64; RAdam updates floating-point Parameters only"),
    ErrorInput("param_int32", lambda ps: (([_odd("count", np.int32), ps[0]],), {}), TypeError,
               r"params\[0\]: Parameter 'count' is Int32"),
    ErrorInput("param_bool", lambda ps: (([ps[0], _odd("mask", np.bool_)],), {}), TypeError,
               r"params\[1\]: Parameter 'mask' is Bool"),
    ErrorInput("group_param_complex128", lambda ps: (([{"params": ps[:2]}, {"params": [_odd("zz", np.complex128)]}],), {}),
               TypeError, r"params\[1\]\['params'\]\[0\]: Parameter 'zz' is Complex128"),
    ErrorInput("group_lr_negative", _group(lr=-1.0), ValueError, r"Invalid learning rate: params\[1\]\['lr'\]=-1\.0"),
    ErrorInput("group_lr_nan", _group(lr=math.nan), ValueError, r"Invalid learning rate: params\[1\]\['lr'\]=nan"),
    ErrorInput("group_eps_nan", _group(eps=math.nan), ValueError, r"Invalid epsilon value: params\[1\]\['eps'\]=nan"),
    ErrorInput("group_weight_decay_negative", _group(weight_decay=-1.0), ValueError,
               r"Invalid weight_decay value: params\[1\]\['weight_decay'\]=-1\.0"),
    ErrorInput("group_betas_out_of_range", _group(betas=(0.9, 1.5)), ValueError,
               r"Invalid beta parameter at index 1: params\[1\]\['betas'\]\[1\]=1\.5"),
    ErrorInput("group_betas_single", _group(betas=(0.9,)), ValueError, r"params\[1\]\['betas'\] must be a pair"),
    ErrorInput("group_threshold_nan", _group(threshold=math.nan), ValueError,
               r"Invalid threshold value: params\[1\]\['threshold'\]=nan"),
    ErrorInput("group_maximize_not_bool", _group(maximize="no"), TypeError, r"params\[1\]\['maximize'\] must be a bool"),
    ErrorInput("group_key_weight_decy", _group(weight_decy=0.1), ValueError,
               r"unknown key 'weight_decy'; did you mean 'weight_decay'\?"),
    ErrorInput("group_key_beta", _group(beta=(0.9, 0.99)), ValueError, r"unknown key 'beta'; did you mean 'betas'\?"),
    ErrorInput("group_key_learning_rate", _group(learning_rate=0.1), ValueError,
               r"unknown key 'learning_rate'; did you mean 'lr'\?"),
    ErrorInput("group_key_maximise", _group(maximise=True), ValueError, r"unknown key 'maximise'; did you mean 'maximize'\?"),
)


@dataclass(frozen=True)
class CallError:
    desc: str
    # Called with the list of valid gradient arrays; returns the bad gradient tuple.
    make: object
    error: type
    regex: str


BAD_CALLS = (
    CallError("too_few", lambda gs: gs[:-1], ValueError, r"gradients: expected 5 tensors.*got 4"),
    CallError("too_many", lambda gs: gs + [gs[0]], ValueError, r"gradients: expected 5 tensors.*got 6"),
    CallError("wrong_shape_last", lambda gs: gs[:-1] + [np.ones((3, 2, 2), np.float32)], ValueError,
              r"gradients\[4\]: shape \(3, 2, 2\) does not match parameter 'p4'"),
    CallError("transposed_first", lambda gs: [gs[0].T] + gs[1:], ValueError,
              r"gradients\[0\]: shape \(3, 4\) does not match parameter 'p0'"),
    CallError("wrong_dtype_last", lambda gs: gs[:-1] + [gs[-1].astype(np.float16)], TypeError,
              r"gradients\[4\]: dtype Float16 does not match parameter 'p4' of dtype Float32"),
)
