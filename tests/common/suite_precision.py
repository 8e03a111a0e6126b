"""Shared tests of parameter dtypes: float64 parameters over the whole config table (and in a group
mixed with float32 and float16) against the float64 reference at 1e-12; half-precision
parameters, float16/bfloat16, against a float64 reference that
rounds into the same storage dtypes (tolerances per dtype below), the state dtype option, Kahan
summation (the bar: a 2,000-step bfloat16 quadratic tracks float32 at least 10x more closely with
it), skipped steps and checkpoints with Kahan buffers."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, ops
import mindspore.common.dtype as mstype

from mindspore_radam import RAdam
from tests.common.configs import CONFIGS, build_groups, make_arrays, reference_groups
from tests.common.harness import MODES, make_stepper
from tests.common.reference import ReferenceRAdam, RoundingReference, round_to
from tests.common.suite import grad_sequence

# float64 parameters are computed in float64 throughout: relative 1e-12 of the parameter's scale
# (measured: within a few ulps; a value rounded through float32 anywhere is off by ~1e-8).
RTOL64, ATOL64 = 1e-12, 1e-13


def float64_run(mode, config, lr_scale=1.0, steps=15):
    """RAdam on float64 parameters next to the float64 reference; returns the largest relative excess."""
    arrays = [a.astype(np.float64) + 1e-9 for a in make_arrays(0, SHAPES)]  # not float32-representable
    params = [Parameter(Tensor(a), name=f"d{i}") for i, a in enumerate(arrays)]
    optimizer = RAdam(build_groups(config, params), **config.kwargs)
    assert set(optimizer.implementations) == {"hypermap"}
    groups = reference_groups(config, arrays)
    for group in groups:
        group["lr"] = group.get("lr", 1e-3) * lr_scale
    reference = ReferenceRAdam(groups)
    step = make_stepper(mode, optimizer)
    rng = np.random.default_rng(1)
    worst = -np.inf
    for _ in range(steps):
        grads = [config.grad_scale * rng.standard_normal(a.shape) * (1 + 1e-9) for a in arrays]
        step(grads)
        reference.step(grads)
        for param, want in zip(params, reference.params, strict=True):
            assert param.dtype == mstype.float64
            excess = np.abs(param.asnumpy() - want) - (ATOL64 + RTOL64 * np.abs(want))
            worst = max(worst, float(excess.max(initial=-np.inf)))
    return worst


@pytest.mark.versions
@pytest.mark.parametrize("mode, config", [pytest.param(MODES[i % len(MODES)], c, id=f"{MODES[i % len(MODES)]}-{c.desc}")
                                          for i, c in enumerate(CONFIGS)])
def test_float64_parameters_match_the_float64_reference(mode, config):
    worst = float64_run(mode, config)
    assert worst <= 0.0, f"{config.desc}, {mode}: off the float64 reference by {worst:.3g} beyond 1e-12"


def test_float64_comparison_can_fail():
    """Negative control: a learning rate rounded through float32 (the old storage) is told apart."""
    config = next(c for c in CONFIGS if c.desc == "lr_0.1")
    assert float64_run("pynative", config, lr_scale=float(np.float32(0.1)) / 0.1) > 0.0


@pytest.mark.parametrize("mode", MODES)
def test_mixed_dtype_group_computes_each_at_its_own_precision(mode):
    """One group of float64, float32 and float16 parameters: each at its own precision (float64 at
    1e-12, float32 at 1e-5 against the float64 reference, float16 against the rounding reference)."""
    arrays = make_arrays(7, SHAPES)
    dtypes = (np.float64, np.float32, np.float16, np.float64, np.float32)
    arrays = [a.astype(d).astype(np.float64) for a, d in zip(arrays, dtypes)]
    params = [Parameter(Tensor(a.astype(d)), name=f"m{i}") for i, (a, d) in enumerate(zip(arrays, dtypes))]
    options = dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1, decoupled_weight_decay=True)
    optimizer = RAdam(params, **options)
    exact = ReferenceRAdam([dict(options, params=arrays)])
    rounded = RoundingReference([dict(options, params=arrays)], "float16")
    step = make_stepper(mode, optimizer)
    for grads in grad_sequence(8, steps=12, shapes=SHAPES):
        grads = [g.astype(d) for g, d in zip(grads, dtypes)]
        step(grads)
        exact.step(grads)
        rounded.step(grads)
    for param, dtype, want, want_rounded in zip(params, dtypes, exact.params, rounded.params):
        got = to_float(param) if dtype == np.float16 else param.asnumpy().astype(np.float64)
        if dtype == np.float64:
            np.testing.assert_allclose(got, want, rtol=RTOL64, atol=ATOL64, err_msg=param.name)
        elif dtype == np.float32:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=param.name)
        else:
            np.testing.assert_allclose(got, want_rounded, rtol=TOLERANCES["float16"], atol=1e-3, err_msg=param.name)

DTYPES = {"float16": mstype.float16, "bfloat16": mstype.bfloat16}
# Ours computes each step in float32 and rounds once into storage; the reference computes in
# float64 and rounds. A rounding tie can fall differently, so parameters may differ by a couple of
# units in the last place of the storage dtype: 2**-10 (float16) and 2**-7 (bfloat16), relative.
TOLERANCES = {"float16": 2 * 2.0 ** -10, "bfloat16": 2 * 2.0 ** -7}
SHAPES = ((4, 3), (7,), (), (0,), (2, 3, 2))


def to_float(tensor):
    return ops.cast(tensor, mstype.float32).asnumpy().astype(np.float64)


def half_params(arrays, dtype):
    return [Parameter(Tensor(a).astype(DTYPES[dtype]), name=f"h{i}") for i, a in enumerate(arrays)]


def half_precision_run(dtype, mode, state_dtype, lr=0.05, reference_lr=None, steps=15):
    """Runs RAdam on half-precision parameters next to the rounding reference; returns (the largest
    excess over the tolerance at any step, the movement of the parameters, the parameters)."""
    arrays = [round_to(dtype, a) for a in make_arrays(51, SHAPES)]
    params = half_params(arrays, dtype)
    groups = [{"params": params[:2], "weight_decay": 0.1},
              {"params": params[2:], "weight_decay": 0.1, "decoupled_weight_decay": True}]
    optimizer = RAdam(groups, lr=lr, state_dtype=state_dtype)
    assert {str(m.dtype) for m in optimizer.exp_avg} == {"Float32" if state_dtype is None else str(params[0].dtype)}
    reference_lr = lr if reference_lr is None else reference_lr
    reference = RoundingReference([dict(params=arrays[:2], lr=reference_lr, weight_decay=0.1),
                                   dict(params=arrays[2:], lr=reference_lr, weight_decay=0.1,
                                        decoupled_weight_decay=True)],
                                  dtype, "float32" if state_dtype is None else dtype)
    step = make_stepper(mode, optimizer, half=DTYPES[dtype])
    tolerance = TOLERANCES[dtype]
    worst = -np.inf
    for grads in grad_sequence(52, steps=steps, shapes=SHAPES):
        grads = [round_to(dtype, g) for g in grads]
        for g in grads:  # a few entries never get a gradient (unused rows): m = v = 0 there
            g.reshape(-1)[:1] = 0.0
        step(grads)
        reference.step(grads)
        for param, want in zip(params, reference.params, strict=True):
            assert param.dtype == DTYPES[dtype]
            excess = np.abs(to_float(param) - want) - tolerance * (1 + np.abs(want))
            worst = max(worst, float(excess.max(initial=-np.inf)))
    moved = max(float(np.abs(to_float(p) - a).max(initial=0.0)) for p, a in zip(params, arrays))
    return worst, moved, params


@pytest.mark.parametrize("state_dtype", (None, "param"))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_half_precision_matches_rounding_reference(dtype, mode, state_dtype):
    """Within a couple of units in the last place of the storage dtype at every step, while the
    parameters move by far more than that (lr 0.05: each step moves them by several ulps, so a
    missing or wrong term shows); zero-gradient entries stay finite (eps is applied in float32)."""
    worst, moved, params = half_precision_run(dtype, mode, state_dtype)
    assert worst <= 0.0, f"{dtype}, {mode}, state {state_dtype}: off the reference by {worst:.3g} beyond tolerance"
    assert moved > 10 * TOLERANCES[dtype], f"the parameters moved only {moved}"
    assert all(np.isfinite(to_float(p)).all() for p in params)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_half_precision_comparison_can_fail(dtype):
    """Negative control: a reference with a 20% different learning rate is told apart."""
    worst, _, _ = half_precision_run(dtype, "pynative", None, reference_lr=0.05 * 1.2)
    assert worst > 0.0


def quadratic_run(dtype, kahan, steps=2000, size=1000, lr=1e-3):
    """RAdam on f(x) = sum(a (x - x*)^2) / 2 with `dtype` parameters; returns the trajectory."""
    rng = np.random.default_rng(53)
    start = round_to("bfloat16", rng.uniform(0.5, 2.0, size))  # representable in every dtype
    curvature = Tensor(rng.uniform(0.5, 2.0, size).astype(np.float32))
    target = Tensor(rng.uniform(-1.0, 1.0, size).astype(np.float32))
    param = Parameter(Tensor(start.astype(np.float32)).astype(dtype), name="x")
    optimizer = RAdam([param], lr=lr, kahan_summation=kahan)

    @ms.jit
    def train_step():
        grad = curvature * (ops.cast(param, mstype.float32) - target)
        return optimizer((ops.cast(grad, dtype),))

    ms.set_context(mode=ms.PYNATIVE_MODE)
    trajectory = []
    for _ in range(steps):
        train_step()
        trajectory.append(to_float(param))
    return np.array(trajectory)


@pytest.mark.extended  # 2,000 steps: 15 s
def test_kahan_summation_tracks_float32_ten_times_closer_on_bfloat16_quadratic():
    exact = quadratic_run(mstype.float32, kahan=False)
    plain = quadratic_run(mstype.bfloat16, kahan=False)
    kahan = quadratic_run(mstype.bfloat16, kahan=True)
    plain_error = np.abs(plain - exact).mean()
    kahan_error = np.abs(kahan - exact).mean()
    assert np.abs(exact[-1] - exact[0]).mean() > 0.5, "float32 itself should travel"
    assert plain_error > 10 * kahan_error, (plain_error, kahan_error)


@pytest.mark.parametrize("mode", (pytest.param("pynative", marks=pytest.mark.extended), "graph"))
def test_kahan_buffers_checkpoint_and_skipped_steps(mode, tmp_path):
    """Kahan buffers are named Parameters that resume bit-identically; a non-finite step leaves them too."""
    arrays = [round_to("bfloat16", a) for a in make_arrays(54, SHAPES)]
    grads = [[round_to("bfloat16", g) for g in gs] for gs in grad_sequence(55, steps=10, shapes=SHAPES)]

    def fresh():
        params = half_params(arrays, "bfloat16")
        optimizer = RAdam(params, lr=1e-3, kahan_summation=True)
        return params, optimizer, make_stepper(mode, optimizer, half=mstype.bfloat16)

    params, optimizer, step = fresh()
    for g in grads:
        step(g)
    uninterrupted = [to_float(p) for p in optimizer.get_parameters()]
    assert {"kahan_comp.h0", "kahan_comp.h4"} <= {p.name for p in optimizer.get_parameters()}
    assert np.abs(to_float(optimizer.kahan_comp[0])).max() > 0, "the buffers should carry something"

    params, optimizer, step = fresh()
    for g in grads[:4]:
        step(g)
    path = str(tmp_path / "kahan.ckpt")
    ms.save_checkpoint(optimizer, path)
    params, optimizer, step = fresh()
    ms.load_param_into_net(optimizer, ms.load_checkpoint(path))
    before = [to_float(p) for p in optimizer.get_parameters()]
    bad = tuple(Tensor(g.astype(np.float32)).astype(mstype.bfloat16) for g in grads[4])
    optimizer(bad, Tensor(False))
    for name, old, new in zip([p.name for p in optimizer.get_parameters()], before,
                              [to_float(p) for p in optimizer.get_parameters()], strict=True):
        np.testing.assert_array_equal(new, old, err_msg=f"{name} changed on a skipped step")
    for g in grads[4:]:
        step(g)
    for resumed, expected in zip([to_float(p) for p in optimizer.get_parameters()], uninterrupted, strict=True):
        np.testing.assert_array_equal(resumed, expected)
