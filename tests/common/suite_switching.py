"""Shared tests of switching from mindspore.experimental.optim.RAdam mid-run
(mindspore_radam.load_builtin_checkpoint)."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor
from mindspore.experimental import optim

from mindspore_radam import load_builtin_checkpoint
from tests.common.configs import make_arrays, make_params
from tests.common.harness import assert_unchanged, make_stepper, snapshot
from tests.common.suite import IMPLEMENTATIONS, grad_sequence, make_radam

SHAPES = ((4, 3), (7,), (), (2, 3, 2))  # the built-in rejects zero-size parameters
SWITCH, STEPS = 5, 10  # steps 6-10 are rectified at the default betas


def builtin_run(tmp_path, mode):
    """The built-in's parameters after SWITCH and after STEPS steps, and its checkpoint at SWITCH."""
    params = make_params(make_arrays(40, SHAPES))
    builtin = optim.RAdam(params, lr=0.01)
    step = make_stepper(mode, builtin)
    grads = grad_sequence(41, steps=STEPS, shapes=SHAPES)
    for step_grads in grads[:SWITCH]:
        step(step_grads)
    path = str(tmp_path / "builtin.ckpt")
    ms.save_checkpoint(builtin, path)
    at_switch = [p.asnumpy().copy() for p in params]
    for step_grads in grads[SWITCH:]:
        step(step_grads)
    return path, at_switch, [p.asnumpy() for p in params], grads


@pytest.mark.parametrize("mode", ("pynative", "jit"))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_switching_from_the_builtin_continues_its_run(tmp_path, implementation, mode):
    path, at_switch, builtin_final, grads = builtin_run(tmp_path, mode)

    def continue_with_ours(load):
        params = make_params(at_switch)
        optimizer = make_radam(params, implementation, lr=0.01)
        if load:
            assert load_builtin_checkpoint(optimizer, path) == SWITCH
            assert [int(s.asnumpy()) for s in optimizer.steps] == [SWITCH]
        step = make_stepper(mode, optimizer)
        for step_grads in grads[SWITCH:]:
            step(step_grads)
        return [p.asnumpy() for p in params]

    # At the default betas the built-in's float32 schedule is within float32 noise of ours.
    for ours, theirs in zip(continue_with_ours(True), builtin_final, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    # Control: loaded by name alone, the step counts restart and the run goes elsewhere.
    restarted = continue_with_ours(False)
    assert max(np.abs(a - b).max() for a, b in zip(restarted, builtin_final)) > 1e-3


def mismatch_cases(path):
    state = ms.load_checkpoint(path)

    def without(name):
        return {k: v for k, v in state.items() if k != name}

    def replaced(name, value):
        return {**state, name: value}
    return [
        ("no step_t", without("step_t"), ValueError, r"no 'step_t'"),
        ("missing moment", without("exp_avg_sq.p2"), ValueError, r"no 'exp_avg_sq\.p2'"),
        ("wrong shape", replaced("exp_avg.p1", Tensor(np.zeros(8, np.float32))), ValueError,
         r"'exp_avg\.p1' has shape \(8,\), but 'exp_avg\.p1' has shape \(7,\)"),
        ("wrong dtype", replaced("exp_avg.p0", Tensor(np.zeros((4, 3)))), ValueError,
         r"'exp_avg\.p0' is Float64, but 'exp_avg\.p0' is Float32"),
        ("float step_t", replaced("step_t", Tensor(5.0, ms.float32)), ValueError, r"'step_t' must be one int32"),
        ("negative step_t", replaced("step_t", Tensor(-1, ms.int32)), ValueError, r"'step_t' must be >= 0"),
        ("no such file", str(path) + ".missing", ValueError, r"checkpoint: cannot read"),
        ("not a checkpoint", 42, TypeError, r"checkpoint must be a path or the dict"),
    ]


def test_a_checkpoint_that_does_not_fit_is_rejected_before_anything_changes(tmp_path):
    path, at_switch, _, _ = builtin_run(tmp_path, "pynative")
    optimizer = make_radam(make_params(at_switch), "hypermap", lr=0.01)
    before = snapshot(optimizer)
    for desc, checkpoint, error, message in mismatch_cases(path):
        with pytest.raises(error, match=message):
            load_builtin_checkpoint(optimizer, checkpoint)
        assert_unchanged(before, snapshot(optimizer))
    with pytest.raises(TypeError, match=r"optimizer must be a mindspore_radam\.RAdam, but got mindspore\.experimental\.optim\.radam\.RAdam"):
        load_builtin_checkpoint(optim.RAdam(make_params(at_switch), lr=0.01), path)
