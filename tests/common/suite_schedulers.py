"""Shared tests of mindspore_radam.lr_scheduler: the three added schedulers against their float64
reference at every step, driving RAdam and a MindSpore experimental optimizer, in PyNative, graph
mode and inside a jit train step; resume from a checkpoint; bad arguments; the re-export."""
import math

import numpy as np
import pytest
import mindspore as ms
from mindspore.experimental import optim
from mindspore.experimental.optim import lr_scheduler as experimental

from mindspore_radam import RAdam, lr_scheduler
from tests.common import reference_schedules as ref
from tests.common.configs import make_arrays, make_params
from tests.common.harness import MODES, make_stepper, rotating
from tests.common.reference import ReferenceRAdam

BASE_LRS = (0.01, 0.005)
STEPS = 24  # past every schedule's total_steps (20)
# The experimental optimizers reject zero-size parameters (RAdam's own suite covers them).
SHAPES = ((4, 3), (7,), (), (2, 3, 2))

# name -> (scheduler factory, reference rate of a group with base lr `base` after `t` steps).
# OneCycleLR sets each group's rate from max_lr (one per group here), so its base lr is unused.
NEW_SCHEDULERS = {
    "OneCycleLR": (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=20),
                   lambda t, g, base: ref.one_cycle(min(t, 20), [0.1, 0.05][g], 20)),
    "OneCycleLR_three_phase_linear": (
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=4, steps_per_epoch=5, pct_start=0.25,
                                          anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0,
                                          three_phase=True),
        lambda t, g, base: ref.one_cycle(min(t, 20), 0.1, 20, pct_start=0.25, anneal_strategy="linear",
                                         div_factor=10.0, final_div_factor=100.0, three_phase=True)),
    "WarmupCosineLR": (lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=5, total_steps=20, eta_min=1e-4),
                       lambda t, g, base: ref.warmup_cosine(t, base, 5, 20, eta_min=1e-4)),
    "WarmupCosineLR_no_warmup_start_factor": (
        lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=0, total_steps=20, warmup_start_factor=0.5),
        lambda t, g, base: ref.warmup_cosine(t, base, 0, 20)),
    "WarmupCosineLR_start_factor": (
        lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=4, total_steps=20, warmup_start_factor=0.1),
        lambda t, g, base: ref.warmup_cosine(t, base, 4, 20, warmup_start_factor=0.1)),
    "FlatCosineLR": (lambda o: lr_scheduler.FlatCosineLR(o, flat_steps=8, total_steps=20, eta_min=2e-4),
                     lambda t, g, base: ref.flat_cosine(t, base, 8, 20, eta_min=2e-4)),
}


def two_groups(kind, params):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": BASE_LRS[1]}]
    if kind == "radam":
        return RAdam(groups, lr=BASE_LRS[0])
    return optim.Adam(groups, lr=BASE_LRS[0])


def assert_lrs(optimizer, expected_rate, t, context):
    """The float32 lr Parameters equal the float64 reference rounded to float32 (1 ulp)."""
    for group, lr in enumerate(optimizer.lrs):
        want = expected_rate(t, group, BASE_LRS[group])
        np.testing.assert_allclose(float(lr.asnumpy()), want, rtol=1.2e-7, atol=1e-12,
                                   err_msg=f"{context}: group {group} after {t} steps")


@pytest.mark.parametrize("kind, mode, name", rotating(sorted(NEW_SCHEDULERS), implementations=("radam", "experimental_adam"),
                                                     ids=str))
def test_new_scheduler_matches_reference_every_step(kind, mode, name):
    """In "jit" mode scheduler.step() runs inside the jit train step, after optimizer(grads)."""
    factory, expected_rate = NEW_SCHEDULERS[name]
    arrays = make_arrays(21, SHAPES)
    params = make_params(arrays)
    optimizer = two_groups(kind, params)
    scheduler = factory(optimizer)
    assert isinstance(scheduler, experimental.LRScheduler)
    assert_lrs(optimizer, expected_rate, 0, name)
    reference = ReferenceRAdam([dict(params=arrays[:2]), dict(params=arrays[2:])])
    step = make_stepper(mode, optimizer, then=scheduler.step)
    rng = np.random.default_rng(22)
    for t in range(1, STEPS + 1):
        lrs = [float(lr.asnumpy()) for lr in optimizer.lrs]
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
        step(grads)
        assert_lrs(optimizer, expected_rate, t, f"{name}, {mode}")
        if kind == "radam":
            reference.step(grads, lrs=lrs)
            for param, want in zip(params, reference.params, strict=True):
                np.testing.assert_allclose(param.asnumpy(), want, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{name}, {mode}, parameters after step {t}")


@pytest.mark.parametrize("name", sorted(NEW_SCHEDULERS))
def test_new_scheduler_resumes_from_checkpoint_and_jumps_to_epoch(name, tmp_path):
    """The rate depends on last_epoch alone: restoring it (with the optimizer) resumes exactly,
    and step(epoch) jumps to the closed form."""
    factory, expected_rate = NEW_SCHEDULERS[name]
    optimizer = two_groups("radam", make_params(make_arrays(23, SHAPES)))
    scheduler = factory(optimizer)
    for _ in range(9):
        scheduler.step()
    path = str(tmp_path / "schedule.ckpt")
    ms.save_checkpoint([{"name": "scheduler.last_epoch", "data": scheduler.last_epoch}]
                       + [{"name": p.name, "data": p} for p in optimizer.lrs], path)
    uninterrupted = []
    for _ in range(9, STEPS):
        scheduler.step()
        uninterrupted.append([lr.asnumpy().copy() for lr in optimizer.lrs])

    optimizer = two_groups("radam", make_params(make_arrays(23, SHAPES)))
    scheduler = factory(optimizer)
    state = ms.load_checkpoint(path)
    scheduler.last_epoch.set_data(state["scheduler.last_epoch"])
    for lr in optimizer.lrs:
        lr.set_data(state[lr.name])
    for t, expected in enumerate(uninterrupted, start=10):
        scheduler.step()
        for got, want in zip(optimizer.lrs, expected, strict=True):
            np.testing.assert_array_equal(got.asnumpy(), want, err_msg=f"{name}: resumed, after {t} steps")

    scheduler.step(3)
    assert_lrs(optimizer, expected_rate, 3, f"{name}: step(3)")


def test_one_cycle_matches_torch_when_installed():
    """Cross-checks the reference against torch itself (torch is not a dependency)."""
    torch = pytest.importorskip("torch", reason="torch is not installed; the float64 reference still runs")
    for kwargs in (dict(max_lr=[0.1, 0.05], total_steps=20),
                   dict(max_lr=0.1, total_steps=20, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
                        final_div_factor=100.0, three_phase=True)):
        groups = [{"params": [torch.nn.Parameter(torch.ones(1))]}, {"params": [torch.nn.Parameter(torch.ones(1))]}]
        torch_optimizer = torch.optim.SGD(groups, lr=0.01)
        torch_scheduler = torch.optim.lr_scheduler.OneCycleLR(torch_optimizer, cycle_momentum=False, **kwargs)
        optimizer = two_groups("radam", make_params(make_arrays(24, SHAPES)))
        scheduler = lr_scheduler.OneCycleLR(optimizer, **kwargs)
        for t in range(20):
            torch_lrs = [group["lr"] for group in torch_optimizer.param_groups]
            ours = [float(lr.asnumpy()) for lr in optimizer.lrs]
            np.testing.assert_allclose(ours, torch_lrs, rtol=1.2e-7, err_msg=f"{kwargs}, step {t}")
            torch_optimizer.step()
            torch_scheduler.step()
            scheduler.step()


SCHEDULER_BAD_INPUTS = (
    (lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=5, total_steps=5), ValueError,
     r"total_steps must be greater than warmup_steps"),
    (lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=-1, total_steps=5), ValueError, r"warmup_steps must be >= 0"),
    (lambda o: lr_scheduler.WarmupCosineLR(o, warmup_steps=2.5, total_steps=5), TypeError, r"warmup_steps must be an int"),
    (lambda o: lr_scheduler.WarmupCosineLR(o, 1, 5, warmup_start_factor=1.5), ValueError,
     r"warmup_start_factor must be in \[0.0, 1.0\]"),
    (lambda o: lr_scheduler.WarmupCosineLR(o, 1, 5, eta_min=-0.1), ValueError, r"eta_min must be finite and >= 0"),
    (lambda o: lr_scheduler.WarmupCosineLR(o, 1, 5, eta_min="0"), TypeError, r"eta_min must be a real number"),
    (lambda o: lr_scheduler.FlatCosineLR(o, flat_steps=9, total_steps=4), ValueError,
     r"total_steps must be greater than flat_steps"),
    (lambda o: lr_scheduler.FlatCosineLR(o, flat_steps=True, total_steps=4), TypeError, r"flat_steps must be an int"),
    (lambda o: lr_scheduler.FlatCosineLR([], 1, 4), TypeError, r"optimizer must be a mindspore.experimental"),
    (lambda o: lr_scheduler.FlatCosineLR(o, 1, 4, last_epoch=-2), ValueError, r"last_epoch must be >= -1"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, r"give total_steps, or both epochs"),
    (lambda o: lr_scheduler.OneCycleLR([], max_lr=0.1, total_steps=10), TypeError,
     r"OneCycleLR: optimizer must be a mindspore.experimental"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=0, steps_per_epoch=3), ValueError,
     r"epochs must be >= 1"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1], total_steps=10), ValueError,
     r"max_lr has 1 values for 2 parameter groups"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, -1.0], total_steps=10), ValueError,
     r"max_lr\[1\] must be finite and > 0"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.0), ValueError,
     r"pct_start must be in \(0.0, 1.0\)"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="cosine"), ValueError,
     r"anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, cycle_momentum=True), ValueError,
     r"cycle_momentum must be False"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, div_factor=0), ValueError,
     r"div_factor must be finite and > 0"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, three_phase=1), TypeError,
     r"three_phase must be a bool"),
)


@pytest.mark.parametrize("index", range(len(SCHEDULER_BAD_INPUTS)))
def test_bad_scheduler_arguments_change_nothing(index):
    factory, error, pattern = SCHEDULER_BAD_INPUTS[index]
    optimizer = two_groups("radam", make_params(make_arrays(25, SHAPES)))
    before = [dict(group) for group in optimizer.param_groups]
    with pytest.raises(error, match=pattern):
        factory(optimizer)
    assert [float(lr.asnumpy()) for lr in optimizer.lrs] == pytest.approx(BASE_LRS, rel=1e-7)
    assert [dict(group) for group in optimizer.param_groups] == before


def test_lr_scheduler_reexports_the_experimental_module():
    for name in experimental.__all__:
        assert getattr(lr_scheduler, name) is getattr(experimental, name), name
    assert {"OneCycleLR", "WarmupCosineLR", "FlatCosineLR"} <= set(lr_scheduler.__all__)
    assert math.isclose(ref.one_cycle(0, 0.1, 20), 0.004)  # the reference itself: max_lr / 25 at t=0
