"""Fast-path loader: the fused C++ kernel (csrc/radam_cpu.cc), built by setup.py at install time.

Nothing is compiled at import. The library is looked up once, on first use; if it is missing or
fails to load, `available()` is False and `unavailable_reason()` keeps the original error, so that
`RAdam(fused=True)` can raise it with an install hint; nothing fails at import.
"""
import glob
import os

from mindspore import ops
import mindspore.common.dtype as mstype

from mindspore_radam.functional import finite_flag

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_GLOB = "_radam_cpu*.so"
_SYMBOL = "RAdamFusedStep"
INSTALL_HINT = ("reinstall with a C++ compiler available (`pip install --force-reinstall --no-deps "
                "mindspore-radam`, or `pip install -e .` in a checkout), which builds the kernel")

_state = {"op": None, "reason": None}


def library_path():
    """The built kernel library inside the package, or None."""
    found = sorted(glob.glob(os.path.join(_PACKAGE_DIR, _LIBRARY_GLOB)))
    return found[0] if found else None


def _load():
    if _state["op"] is not None or _state["reason"] is not None:
        return
    path = library_path()
    if path is None:
        _state["reason"] = f"the fused kernel library ({_LIBRARY_GLOB}) is not in {_PACKAGE_DIR}"
        return
    try:
        import ctypes
        getattr(ctypes.CDLL(path), _SYMBOL)
        op = ops.Custom(f"{path}:{_SYMBOL}", out_shape=[1], out_dtype=mstype.float32, func_type="aot")
        # The op writes its inputs in place and its output is unused: keep it in the graph.
        op.add_prim_attr("side_effect_mem", True)
    except (OSError, AttributeError, RuntimeError, TypeError, ValueError) as error:
        _state["reason"] = f"loading {path} failed: {error}"
        return
    _state["op"] = op


def available():
    _load()
    return _state["op"] is not None


def unavailable_reason():
    _load()
    return _state["reason"]


def reset():
    """Forgets the loaded op (tests use it to simulate a missing library)."""
    _state.update(op=None, reason=None)


def fused_radam(*, params, grads, exp_avg, exp_avg_sq, step, lr, hyper, options, finite=None, kahan_comp=None):
    """Fused implementation: one kernel call increments the step, computes the scalars and updates
    the whole group in one pass (float32, CPU), or changes nothing when `finite` is False. Same
    signature and arithmetic as :func:`mindspore_radam.functional.hypermap_radam`; `options` is
    not needed here, and `kahan_comp` is always None (dispatch never picks this with Kahan).
    """
    inputs = (step, lr, hyper, finite_flag(finite)) + params + grads + exp_avg + exp_avg_sq
    return ops.depend(True, _state["op"](*inputs))
