"""Shared tests of mindspore_radam.Lookahead against a float64 reference (Lookahead around the
reference RAdam, or around a reference SGD for a MindSpore experimental optimizer)."""
import numpy as np
import pytest
import mindspore as ms
from mindspore.experimental import optim

from mindspore_radam import Lookahead, lr_scheduler
from tests.common.configs import make_arrays, make_params
from tests.common.harness import MODES, assert_unchanged, make_stepper, snapshot
from tests.common.reference import ReferenceLookahead, ReferenceRAdam, ReferenceSGD
from tests.common.suite import IMPLEMENTATIONS, grad_sequence, make_radam

# The experimental optimizers reject zero-size parameters (RAdam's own suite covers them).
SHAPES = ((4, 3), (7,), (), (2, 3, 2))
INNERS = tuple(f"radam_{name}" for name in IMPLEMENTATIONS) + ("experimental_sgd",)


def build(inner, arrays, k, alpha, lr=0.01):
    """(Lookahead, its parameters, the float64 reference) for one inner optimizer."""
    params = make_params(arrays)
    if inner == "experimental_sgd":
        optimizer = optim.SGD(params, lr=lr, momentum=0.9)
        reference = ReferenceSGD(arrays, lr=lr, momentum=0.9)
    else:
        optimizer = make_radam([{"params": params[:2]}, {"params": params[2:], "weight_decay": 0.1}],
                               inner.removeprefix("radam_"), lr=lr)
        reference = ReferenceRAdam([dict(params=arrays[:2], lr=lr), dict(params=arrays[2:], lr=lr, weight_decay=0.1)])
    return Lookahead(optimizer, k=k, alpha=alpha), params, ReferenceLookahead(reference, k, alpha)


def assert_close(params, reference, context):
    for i, (param, want) in enumerate(zip(params, reference.params, strict=True)):
        np.testing.assert_allclose(param.asnumpy(), want, rtol=1e-5, atol=1e-6, err_msg=f"{context}: parameter {i}")


# Each inner optimizer with each (k, alpha), the mode rotating: every inner meets every mode.
@pytest.mark.parametrize("inner, mode, k, alpha", [
    pytest.param(inner, MODES[(i + j) % len(MODES)], k, alpha, id=f"{inner}-{MODES[(i + j) % len(MODES)]}-k{k}")
    for i, inner in enumerate(INNERS) for j, (k, alpha) in enumerate(((5, 0.5), (3, 0.8), (4, 0.3)))])
def test_lookahead_matches_reference_every_step(inner, mode, k, alpha):
    arrays = make_arrays(31, SHAPES)
    lookahead, params, reference = build(inner, arrays, k, alpha)
    step = make_stepper(mode, lookahead)
    for t, grads in enumerate(grad_sequence(32, steps=16, shapes=SHAPES), start=1):
        step(grads)
        reference.step(grads)
        assert_close(params, reference, f"{inner}, {mode}, k={k}, alpha={alpha}, step {t}")
        for slow, want in zip(lookahead.slow_weights, reference.slow, strict=True):
            np.testing.assert_allclose(slow.asnumpy(), want, rtol=1e-5, atol=1e-6, err_msg=f"slow weights, step {t}")
    assert int(lookahead.lookahead_step.asnumpy()) == 16


def test_lookahead_comparison_can_fail():
    """Negative control: the same run against a reference pulling by 1 - alpha fails the comparison."""
    arrays = make_arrays(31, SHAPES)
    lookahead, params, _ = build("radam_hypermap", arrays, 3, 0.8)
    _, _, wrong = build("radam_hypermap", arrays, 3, 0.2)
    step = make_stepper("pynative", lookahead)
    for grads in grad_sequence(32, steps=6, shapes=SHAPES):
        step(grads)
        wrong.step(grads)
    with pytest.raises(AssertionError):
        assert_close(params, wrong, "control")


@pytest.mark.parametrize("inner", INNERS[:-1])
def test_lookahead_step_from_python_then_inside_jit_train_step(inner):
    """Warm-up steps from Python, then the compiled train step (MindSpore's jit methods redirect the
    graph parser of their Cell until we point it back at construct)."""
    arrays = make_arrays(37, SHAPES)
    lookahead, params, reference = build(inner, arrays, 3, 0.5)
    grads = grad_sequence(38, steps=10, shapes=SHAPES)
    for step_grads in grads[:2]:
        make_stepper("pynative", lookahead)(step_grads)
        reference.step(step_grads)
    step = make_stepper("jit", lookahead)
    for t, step_grads in enumerate(grads[2:], start=3):
        step(step_grads)
        reference.step(step_grads)
        assert_close(params, reference, f"{inner}, jit step {t} after steps from Python")
    assert int(lookahead.lookahead_step.asnumpy()) == 10


@pytest.mark.parametrize("mode", ("pynative", "jit"))
def test_schedulers_drive_lookahead_and_its_inner_optimizer(mode):
    """A scheduler built on the wrapper changes the wrapped optimizer's rates (they are shared)."""
    arrays = make_arrays(33, SHAPES)
    lookahead, params, reference = build("radam_hypermap", arrays, 4, 0.5, lr=0.02)
    assert lookahead.lrs is lookahead.optimizer.lrs
    scheduler = lr_scheduler.WarmupCosineLR(lookahead, warmup_steps=3, total_steps=12)
    step = make_stepper(mode, lookahead, then=scheduler.step)
    seen = set()
    for t, grads in enumerate(grad_sequence(34, steps=12, shapes=SHAPES), start=1):
        lrs = [float(lr.asnumpy()) for lr in lookahead.optimizer.lrs]
        seen.add(tuple(lrs))
        step(grads)
        reference.step(grads, lrs=lrs)
        assert_close(params, reference, f"{mode}, step {t}")
    assert len(seen) > 5


@pytest.mark.parametrize("mode", [pytest.param(m, marks=() if m == "jit" else pytest.mark.extended) for m in MODES])
def test_lookahead_checkpoint_resume_is_bit_identical(mode, tmp_path):
    grads = grad_sequence(36, steps=14, shapes=SHAPES)

    def fresh():
        lookahead, params, _ = build("radam_hypermap", make_arrays(35, SHAPES), 5, 0.5)
        return lookahead, params, make_stepper(mode, lookahead)

    lookahead, params, step = fresh()
    for g in grads:
        step(g)
    uninterrupted = snapshot(lookahead)

    lookahead, params, step = fresh()
    for g in grads[:7]:  # mid-cycle: the next sync is at step 10
        step(g)
    path = str(tmp_path / "ranger.ckpt")
    ms.save_checkpoint(lookahead, path)
    lookahead, params, step = fresh()
    not_loaded, _ = ms.load_param_into_net(lookahead, ms.load_checkpoint(path))
    assert not not_loaded
    assert int(lookahead.lookahead_step.asnumpy()) == 7
    for g in grads[7:]:
        step(g)
    resumed = snapshot(lookahead)
    assert {"lookahead_step", "lookahead_slow.p0", "exp_avg.p0", "step.group_1"} <= set(resumed)
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)


def test_lookahead_add_param_group_gets_slow_weights():
    arrays = make_arrays(37, SHAPES)
    lookahead, params, _ = build("radam_hypermap", arrays[:3], 2, 0.5)
    extra = make_params(arrays[3:], prefix="q")
    lookahead.add_param_group({"params": extra, "lr": 0.05})
    assert [p.name for p in lookahead.slow_weights] == [f"lookahead_slow.{p.name}" for p in params + extra]
    assert len(lookahead.param_groups) == 3 and lookahead.parameters is lookahead.optimizer.parameters
    np.testing.assert_array_equal(lookahead.slow_weights[-1].asnumpy(), arrays[-1])


LOOKAHEAD_BAD_INPUTS = (
    (dict(k=0), ValueError, r"Lookahead: k must be >= 1"),
    (dict(k=2.0), TypeError, r"Lookahead: k must be an int"),
    (dict(alpha=1.5), ValueError, r"Lookahead: alpha must be in \[0.0, 1.0\]"),
    (dict(alpha="0.5"), TypeError, r"Lookahead: alpha must be a real number"),
    (dict(optimizer=[]), TypeError, r"Lookahead: optimizer must be a mindspore.experimental.optim.Optimizer"),
)


@pytest.mark.parametrize("index", range(len(LOOKAHEAD_BAD_INPUTS)))
def test_bad_lookahead_arguments_raise_before_anything_changes(index):
    kwargs, error, pattern = LOOKAHEAD_BAD_INPUTS[index]
    params = make_params(make_arrays(38, SHAPES))
    optimizer = optim.SGD(params, lr=0.1)
    before = snapshot(optimizer)
    with pytest.raises(error, match=pattern):
        Lookahead(**{"optimizer": optimizer, **kwargs})
    assert snapshot(optimizer).keys() == before.keys()


@pytest.mark.parametrize("mode", ("pynative", "jit"))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_slow_weights_start_from_weights_loaded_after_construction(implementation, mode):
    """The fine-tuning order: build the net, build Lookahead(RAdam), then load pretrained weights
    (load_param_into_net). Syncs pull toward the pretrained weights, not the random init; control:
    slow weights taken at construction land elsewhere."""
    initial, pretrained = make_arrays(33, SHAPES), make_arrays(34, SHAPES)
    lookahead, params, reference = build(f"radam_{implementation}", initial, 3, 0.5)
    ms.load_param_into_net(lookahead, {p.name: ms.Parameter(ms.Tensor(a), name=p.name)
                                       for p, a in zip(params, pretrained)})
    _, _, reference = build(f"radam_{implementation}", pretrained, 3, 0.5)
    _, _, eager = build(f"radam_{implementation}", pretrained, 3, 0.5)
    eager.slow = [a.astype(np.float64) for a in initial]  # the old behaviour: slow weights at construction
    step = make_stepper(mode, lookahead)
    for t, grads in enumerate(grad_sequence(35, steps=7, shapes=SHAPES), start=1):
        step(grads)
        reference.step(grads)
        eager.step(grads)
        assert_close(params, reference, f"pretrained, {mode}, step {t}")
    assert max(np.abs(a - b).max() for a, b in zip(reference.params, eager.params)) > 0.1


@pytest.mark.parametrize("mode", ("pynative", "graph"))
def test_lookahead_group_added_mid_run_is_synced(mode):
    """add_param_group on the wrapper after it stepped: the new group's slow weights start there and
    every later sync pulls it back too (the wrapper's compiled sync is built again)."""
    arrays = make_arrays(36, SHAPES)
    params = make_params(arrays)
    lookahead = Lookahead(make_radam(params[:2], "hypermap", lr=0.01), k=2, alpha=0.5)
    reference = ReferenceLookahead(ReferenceRAdam([dict(params=arrays[:2], lr=0.01)]), 2, 0.5)
    grads = grad_sequence(37, steps=6, shapes=SHAPES)
    step = make_stepper(mode, lookahead)
    step(grads[0][:2])
    reference.step(grads[0][:2])
    lookahead.add_param_group({"params": params[2:], "lr": 0.02})
    reference.inner.groups.append(ReferenceRAdam([dict(params=arrays[2:], lr=0.02)]).groups[0])
    reference.slow += [a.astype(np.float64) for a in arrays[2:]]
    for t, g in enumerate(grads[1:], start=2):
        step(g)
        reference.step(g)
        assert_close(params, reference, f"group added mid-run, {mode}, step {t}")
    assert max(np.abs(s.asnumpy() - a).max() for s, a in zip(lookahead.slow_weights[2:], arrays[2:])) > 1e-4


@pytest.mark.parametrize("mode", ("pynative", "graph", "jit"))
def test_lookahead_passes_grads_finite_and_skips_the_whole_step(mode):
    """Lookahead(RAdam) in a loss-scaled step: optimizer(grads, all_finite(grads)); a non-finite step
    changes nothing (parameters, moments, both counts, slow weights); control: finite steps move."""
    arrays = make_arrays(38, SHAPES)
    lookahead, params, reference = build("radam_hypermap", arrays, 2, 0.5)
    step = make_stepper(mode, lookahead, gated=True)
    for t, g in enumerate(grad_sequence(39, steps=5, shapes=SHAPES)):
        if t == 2:
            g[1][0] = np.inf
            before = snapshot(lookahead)
            step(g)
            assert_unchanged(before, snapshot(lookahead))
            continue
        step(g)
        reference.step(g)
        assert_close(params, reference, f"grads_finite, {mode}, step {t}")
    assert int(lookahead.lookahead_step.asnumpy()) == 4


def test_lookahead_called_from_python_in_graph_mode_follows_a_structural_switch():
    arrays = make_arrays(40, SHAPES)
    lookahead, params, reference = build("radam_hypermap", arrays, 3, 0.5)
    step = make_stepper("graph", lookahead)
    for t, g in enumerate(grad_sequence(41, steps=6, shapes=SHAPES)):
        if t == 2:
            lookahead.param_groups[0]["maximize"] = True
            reference.inner.groups[0]["maximize"] = True
        step(g)
        reference.step(g)
        assert_close(params, reference, f"maximize switched, step {t}")
