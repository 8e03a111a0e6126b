"""Fast-path loader: the fused C++ kernel (csrc/radam_cpu.cc), built by setup.py at install time.

The library is built for the baseline instruction set of its architecture and, on x86-64, carries
AVX2 and AVX-512 variants of its loop, picking the widest the CPU has (``active_variant()``; the
environment variable ``MINDSPORE_RADAM_ISA=baseline|avx2|avx512`` or ``force_variant`` choose
another supported one). All variants give bit-identical results.

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

_state = {"op": None, "reason": None, "library": None}


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
        library = ctypes.CDLL(path)  # the same loaded instance that MindSpore runs (dlopen by path)
        getattr(library, _SYMBOL)
        library.RAdamIsaName.restype = ctypes.c_char_p
        library.RAdamIsaCalls.restype = ctypes.c_longlong
        op = ops.Custom(f"{path}:{_SYMBOL}", out_shape=[1], out_dtype=mstype.float32, func_type="aot")
        # The op writes its inputs in place and its output is unused: keep it in the graph.
        op.add_prim_attr("side_effect_mem", True)
    except (OSError, AttributeError, RuntimeError, TypeError, ValueError) as error:
        _state["reason"] = f"loading {path} failed: {error}"
        return
    _state["op"] = op
    _state["library"] = library


def available():
    _load()
    return _state["op"] is not None


def unavailable_reason():
    _load()
    return _state["reason"]


def reset():
    """Forgets the loaded op (tests use it to simulate a missing library)."""
    _state.update(op=None, reason=None, library=None)


def _kernel_library():
    if not available():
        raise RuntimeError(f"the fused kernel is not available: {unavailable_reason()}")
    return _state["library"]


def variants():
    """The kernel's instruction-set variants, narrowest first: ``("baseline", "avx2", "avx512")``."""
    library = _kernel_library()
    return tuple(library.RAdamIsaName(i).decode() for i in range(library.RAdamIsaCount()))


def supported_variants():
    """The variants this CPU can run."""
    library = _kernel_library()
    return tuple(name for i, name in enumerate(variants()) if library.RAdamIsaSupported(i))


def active_variant():
    """The variant the kernel runs now."""
    library = _kernel_library()
    return variants()[library.RAdamActiveIsa()]


def variant_calls():
    """{variant: number of kernel calls it ran in this process}."""
    library = _kernel_library()
    return {name: library.RAdamIsaCalls(i) for i, name in enumerate(variants())}


def force_variant(name):
    """Runs the kernel with variant `name` from now on (None: the widest supported again).

    Raises ValueError for an unknown name or one this CPU does not support."""
    library = _kernel_library()
    if name is None:
        library.RAdamForceIsa(-1)
        return
    names = variants()
    if name not in names:
        raise ValueError(f"variant must be one of {names} or None, but got {name!r}")
    if library.RAdamForceIsa(names.index(name)) != 0:
        raise ValueError(f"this CPU does not support the {name!r} variant; it supports {supported_variants()}")


def fused_radam(*, params, grads, exp_avg, exp_avg_sq, step, lr, hyper, options, finite=None, kahan_comp=None):
    """Fused implementation: one kernel call increments the step, computes the scalars and updates
    the whole group in one pass (float32, CPU), or changes nothing when `finite` is False. Same
    signature and arithmetic as :func:`mindspore_radam.functional.hypermap_radam`; `options` is
    not needed here, and `kahan_comp` is always None (dispatch never picks this with Kahan).
    """
    inputs = (step, lr, hyper, finite_flag(finite)) + params + grads + exp_avg + exp_avg_sq
    return ops.depend(True, _state["op"](*inputs))
