"""Shared tests of loss-scaled training: a step whose gradients overflow changes nothing
(parameters, moments, step counts bit-identical) through RAdam's ``grads_finite`` input, in every
mode and implementation, and the mindspore.amp DynamicLossScaler pattern inside a jit train step."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor
from mindspore.amp import DynamicLossScaler, all_finite

from tests.common.configs import CONFIGS, build_groups, make_arrays, make_params, reference_groups
from tests.common.harness import MODES, assert_unchanged, make_stepper, rotating, set_mode, snapshot
from tests.common.reference import ReferenceRAdam
from tests.common.suite import IMPLEMENTATIONS, assert_matches, grad_sequence, make_radam

OVERFLOW_STEPS = (2, 6, 7)  # the 0-based steps whose gradients are not finite
POISONS = {"inf": np.inf, "nan": np.nan, "-inf": -np.inf}


def poisoned(grads, poison):
    grads = [g.copy() for g in grads]
    grads[0].flat[1] = poison
    return grads


@pytest.mark.parametrize("implementation, mode, poison", rotating(sorted(POISONS), ids=str))
def test_non_finite_steps_change_nothing(implementation, mode, poison):
    config = CONFIGS[-2]  # two groups, both weight decays
    arrays = make_arrays(41)
    params = make_params(arrays)
    optimizer = make_radam(build_groups(config, params), implementation, **config.kwargs)
    reference = ReferenceRAdam(reference_groups(config, arrays))
    step = make_stepper(mode, optimizer, gated=True)
    for t, grads in enumerate(grad_sequence(42, steps=12)):
        if t in OVERFLOW_STEPS:
            before = snapshot(optimizer)
            step(poisoned(grads, POISONS[poison]))
            assert_unchanged(before, snapshot(optimizer))
        else:
            step(grads)
            reference.step(grads)
            assert_matches(params, reference.params, f"{poison}, {mode}, after step {t}")
    assert [int(s.asnumpy()) for s in optimizer.steps] == [12 - len(OVERFLOW_STEPS)] * 2


def test_ungated_non_finite_step_changes_things():
    """Negative control for the test above: without grads_finite the same poisoned step does change
    the parameters and state, so "nothing changed" is a finding, not a given."""
    config = CONFIGS[-2]
    params = make_params(make_arrays(41))
    optimizer = make_radam(build_groups(config, params), "hypermap", **config.kwargs)
    step = make_stepper("pynative", optimizer)
    grads = grad_sequence(42, steps=1)[0]
    before = snapshot(optimizer)
    step(poisoned(grads, POISONS["nan"]))
    with pytest.raises(AssertionError):
        assert_unchanged(before, snapshot(optimizer))


@pytest.mark.parametrize("mode", ("pynative", "jit"))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_dynamic_loss_scaler_train_step(implementation, mode):
    """mindspore.amp's pattern: scale the loss, unscale the grads, adjust the scaler, and pass
    all_finite(grads) to the optimizer. Overflowing steps halve the scale and change nothing."""
    arrays = make_arrays(43)
    params = make_params(arrays)
    optimizer = make_radam(params, implementation, lr=0.01)
    reference = ReferenceRAdam([dict(params=arrays, lr=0.01)])
    scaler = DynamicLossScaler(scale_value=2.0 ** 24, scale_factor=2, scale_window=1000)

    def scaled_loss(*targets):  # its gradient is exactly scale * target
        total = 0.0
        for param, target in zip(params, targets):
            total = total + (param * target).sum()
        return scaler.scale(total)

    grad_fn = ms.value_and_grad(scaled_loss, None, optimizer.parameters)

    def train_step(*targets):
        loss, grads = grad_fn(*targets)
        grads = scaler.unscale(grads)
        is_finite = all_finite(grads)
        scaler.adjust(is_finite)
        optimizer(grads, is_finite)
        return scaler.unscale(loss), is_finite

    set_mode("pynative")
    if mode == "jit":
        train_step = ms.jit(train_step)
    for t, targets in enumerate(grad_sequence(44, steps=10)):
        overflow = t in OVERFLOW_STEPS
        if overflow:  # 1e38 * 2**24 overflows float32
            targets[0].flat[0] = 1e38
        before = snapshot(optimizer)
        scale = float(scaler.scale_value.asnumpy())
        _, is_finite = train_step(*(Tensor(g) for g in targets))
        assert bool(is_finite.asnumpy()) is not overflow
        if overflow:
            assert_unchanged(before, snapshot(optimizer))
            assert float(scaler.scale_value.asnumpy()) == scale / 2
        else:
            reference.step(targets)
            assert_matches(params, reference.params, f"{mode}, after step {t}")
    assert int(optimizer.steps[0].asnumpy()) == 10 - len(OVERFLOW_STEPS)


@pytest.mark.parametrize("flag, error, pattern", [
    (True, TypeError, r"grads_finite must be None or a bool Tensor"),
    (Tensor(1.0), TypeError, r"grads_finite must be a bool Tensor with one element, but got dtype Float32"),
    (Tensor([True, False]), TypeError, r"grads_finite must be a bool Tensor with one element"),
])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_bad_grads_finite_rejected_before_anything_changes(implementation, flag, error, pattern):
    params = make_params(make_arrays(45))
    optimizer = make_radam(params, implementation)
    before = snapshot(optimizer)
    grads = tuple(Tensor(g) for g in grad_sequence(46, steps=1)[0])
    with pytest.raises(error, match=pattern):
        optimizer(grads, flag)
    assert_unchanged(before, snapshot(optimizer))
