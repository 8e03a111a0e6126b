"""Ours inside the training frameworks MindSpore users train with: the frameworks tier.

Run by ``bash scripts/frameworks_tier.sh`` (CI runs it after the version tier), each framework in the venv
of the MindSpore it needs; there ``MINDSPORE_RADAM_FRAMEWORKS`` names the frameworks that must import
(a missing one fails instead of skipping). Outside that tier these tests are deselected (marker
``frameworks``). Each runs the framework's own training machinery with ours and, in the same test, the
controls: MindSpore's built-in optimizers (and the framework's own where it has one) in the same pipeline.
"""
import os

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

import mindspore_radam
from mindspore_radam.nn import RAdam as NNRAdam

pytestmark = pytest.mark.frameworks

MODES = {"pynative": ms.PYNATIVE_MODE, "graph": ms.GRAPH_MODE}


def framework(name):
    """Imports framework `name`; where the tier requires it, failing to import is an error, not a skip."""
    required = {item.strip() for item in os.environ.get("MINDSPORE_RADAM_FRAMEWORKS", "").split(",")}
    try:
        return __import__(name)
    except ImportError as error:
        if name in required:
            raise
        pytest.skip(f"{name} is not installed here ({error}); the frameworks tier installs it")
    return None


def tiny_net():
    ms.set_seed(0)
    return nn.SequentialCell(nn.Dense(4, 8, weight_init="normal"), nn.ReLU(), nn.Dense(8, 2, weight_init="normal"))


def batches(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(Tensor(rng.standard_normal((4, 4)).astype(np.float32)), Tensor(rng.standard_normal((4, 2)).astype(np.float32)))
            for _ in range(count)]


def make_optimizer(kind, params):
    if kind == "ours_nn":
        return NNRAdam(params, learning_rate=0.01)
    if kind == "ours_core":
        return mindspore_radam.RAdam(params, lr=0.01)
    if kind == "builtin_radam":
        return ms.experimental.optim.RAdam(params, lr=0.01)
    return nn.Adam(params, learning_rate=0.01)


OPTIMIZERS = ("ours_nn", "ours_core", "builtin_radam", "nn_adam")


# --- mindone: EMA weight swaps around evaluation (its EvalSaveCallback does them at every save) ---

def mindone_run(kind, mode, swap_at=None, swap_back=True):
    framework("mindone")
    from mindone.trainers.ema import EMA  # pylint: disable=import-outside-toplevel
    from mindone.trainers.train_step import TrainOneStepWrapper  # pylint: disable=import-outside-toplevel
    ms.set_context(mode=MODES[mode])
    net = tiny_net()
    params = net.trainable_params()
    ema = EMA(net, ema_decay=0.9, offloading=True)  # mindone's default: swaps with Parameter.set_data
    step = TrainOneStepWrapper(nn.WithLossCell(net, nn.MSELoss()), make_optimizer(kind, params),
                               scale_sense=Tensor(1.0, ms.float32), ema=ema, drop_overflow_update=True)
    for index, (x, y) in enumerate(batches()):
        step(x, y)
        if index == swap_at:
            ema.swap_before_eval()  # the EMA weights in, for evaluation
            net(x)
            if swap_back:
                ema.swap_after_eval()  # the training weights back
    return [p.asnumpy().copy() for p in params]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_mindone_ema_swap_around_eval_leaves_training_unchanged(kind, mode):
    """With every optimizer, ours and MindSpore's alike, the EMA swap in and out around an evaluation
    leaves training bit-identical to training without it (the weights come back, training goes on from
    them, not from the EMA weights)."""
    without = mindone_run(kind, mode)
    with_swap = mindone_run(kind, mode, swap_at=3)
    for ours, want in zip(with_swap, without):
        np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize("kind", ("ours_nn", "ours_core"))
def test_mindone_ema_swap_comparison_can_fail(kind):
    """Negative control: the swap without the swap back (training goes on from the EMA weights) differs."""
    without = mindone_run(kind, "pynative")
    left_in = mindone_run(kind, "pynative", swap_at=3, swap_back=False)
    assert any(not np.array_equal(a, b) for a, b in zip(left_in, without))


def test_mindone_optimizer_only_checkpoint_is_refused_by_name_fallback_and_loads_strictly(tmp_path):
    """mindone saves the optimizer's state without the network's Parameters; MindSpore's loader, not finding
    a weight's name, would load ``exp_avg.<name>`` into it: refused, naming the call that works."""
    framework("mindone")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = tiny_net()
    optimizer = NNRAdam(net.trainable_params(), learning_rate=0.01)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)
    for x, y in batches(3):
        train(x, y)
    weights = {p.name for p in net.trainable_params()}
    state_only = [{"name": p.name, "data": p} for p in optimizer.get_parameters() if p.name not in weights]
    path = str(tmp_path / "optimizer.ckpt")
    ms.save_checkpoint(state_only, path)
    fresh_net = tiny_net()
    fresh = NNRAdam(fresh_net.trainable_params(), learning_rate=0.01)
    before = [p.asnumpy().copy() for p in fresh_net.trainable_params()]
    with pytest.raises(ValueError, match="strict_load=True"):
        ms.load_param_into_net(fresh, ms.load_checkpoint(path))
    for param, value in zip(fresh_net.trainable_params(), before):
        np.testing.assert_array_equal(param.asnumpy(), value)
    ms.load_param_into_net(fresh, ms.load_checkpoint(path), strict_load=True)
    for ours, want in zip(fresh.exp_avg, optimizer.exp_avg):
        np.testing.assert_array_equal(ours.asnumpy(), want.asnumpy())
    # control: the step count came across
    assert int(fresh.steps[0].asnumpy()) == 3


# --- mindcv: create_trainer (its TrainStep: EMA, clipping, accumulation; Model with loss scale, sink) ---

def mindcv_dataset(count=8):
    data = batches(count, seed=1)
    x = np.concatenate([a.asnumpy() for a, _ in data])
    y = np.concatenate([b.asnumpy() for _, b in data])
    return ms.dataset.NumpySlicesDataset({"x": x, "y": y}, shuffle=False).batch(4)


def mindcv_train(make, mode, epochs=2, **trainer_kwargs):
    framework("mindcv")
    from mindcv.optim.optim_factory import init_group_params  # pylint: disable=import-outside-toplevel
    from mindcv.utils import create_trainer  # pylint: disable=import-outside-toplevel
    ms.set_context(mode=MODES[mode])
    net = tiny_net()
    groups = init_group_params(net.trainable_params(), 0.05, "auto", [])  # mindcv's decay/no-decay split
    optimizer = make(groups)
    kwargs = dict(amp_level="O0", amp_cast_list=None, loss_scale_type="fixed", loss_scale=1.0,
                  drop_overflow_update=False)
    kwargs.update(trainer_kwargs)
    model = create_trainer(net, nn.MSELoss(), optimizer, metrics=None, **kwargs)
    model.train(epochs, mindcv_dataset(), dataset_sink_mode=False)
    return [p.asnumpy().copy() for p in net.trainable_params()], optimizer


def _ours(groups):
    return NNRAdam(groups, learning_rate=0.01, betas=(0.9, 0.99))


def _ours_other_lr(groups):
    return NNRAdam(groups, learning_rate=0.02, betas=(0.9, 0.99))


def _mindcv_adamw(groups):
    from mindcv.optim.adamw import AdamW  # pylint: disable=import-outside-toplevel
    return AdamW(groups, learning_rate=0.01)


def _plain_train_step(mode, epochs=2):
    """The same optimizer and data through MindSpore's plain TrainOneStepCell (no framework)."""
    framework("mindcv")
    from mindcv.optim.optim_factory import init_group_params  # pylint: disable=import-outside-toplevel
    ms.set_context(mode=MODES[mode])
    net = tiny_net()
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()),
                                _ours(init_group_params(net.trainable_params(), 0.05, "auto", [])))
    for _ in range(epochs):
        for row in mindcv_dataset().create_dict_iterator():
            train(row["x"], row["y"])
    return [p.asnumpy().copy() for p in net.trainable_params()]


@pytest.mark.parametrize("mode", MODES)
def test_mindcv_create_trainer_steps_ours_as_a_plain_train_step_does(mode):
    """mindcv's trainer (its TrainStep, fixed loss scale) calls ours exactly as TrainOneStepCell does:
    bit-identical parameters after 2 epochs; mindcv's own AdamW trains in the same trainer (control)."""
    ours, optimizer = mindcv_train(_ours, mode)
    plain = _plain_train_step(mode)
    for a, b in zip(ours, plain):
        np.testing.assert_array_equal(a, b)
    assert int(optimizer.global_step.asnumpy()[0]) == 16  # 2 epochs of 8 batches
    adamw, _ = mindcv_train(_mindcv_adamw, mode)
    assert all(np.all(np.isfinite(p)) for p in adamw)
    # control: another learning rate is told apart
    other, _ = mindcv_train(_ours_other_lr, mode)
    assert any(not np.array_equal(a, b) for a, b in zip(other, ours))


@pytest.mark.parametrize("mode", ("graph",))
def test_mindcv_trainer_with_ema_clipping_and_accumulation_trains(mode):
    """EMA, gradient clipping and accumulation over 2 batches, mindcv's TrainStep: ours steps once per 2
    batches (global_step counts optimizer steps) and the weights move; mindcv's AdamW beside it (control).
    GRAPH_MODE only: in PyNative mindcv 0.3.0's GradientAccumulation assigns an int to its Parameter
    ``_accumulation_step`` and raises TypeError with any optimizer (its AdamW too)."""
    start = [p.asnumpy().copy() for p in tiny_net().trainable_params()]
    kwargs = dict(ema=True, ema_decay=0.9, clip_grad=True, clip_value=1.0, gradient_accumulation_steps=2)
    ours, optimizer = mindcv_train(_ours, mode, **kwargs)
    assert int(optimizer.global_step.asnumpy()[0]) == 8
    assert int(optimizer.steps[0].asnumpy()) == 8  # 16 batches, one step per 2
    assert all(np.all(np.isfinite(p)) for p in ours)
    assert max(float(np.abs(a - b).max()) for a, b in zip(ours, start)) > 1e-3
    adamw, _ = mindcv_train(_mindcv_adamw, mode, **kwargs)
    assert max(float(np.abs(a - b).max()) for a, b in zip(adamw, start)) > 1e-3


# --- mindformers: its optimizer registry and its Trainer, with checkpoints and resume ---

def _mindformers_register():
    """Ours in mindformers' registry (as docs/frameworks.md says), and MindSpore's own train step as the
    wrapper: mindformers' MFTrainOneStepCell reads NPU-only overflow flags on CPU."""
    framework("mindformers")
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister  # pylint: disable=import-outside-toplevel

    class PlainTrainOneStepCell(nn.TrainOneStepCell):
        def __init__(self, network, optimizer, scale_sense=None, **kwargs):  # pylint: disable=unused-argument
            super().__init__(network, optimizer)
    if not MindFormerRegister.is_exist(MindFormerModuleType.OPTIMIZER, "RAdam"):
        MindFormerRegister.register_cls(NNRAdam, module_type=MindFormerModuleType.OPTIMIZER)
    if not MindFormerRegister.is_exist(MindFormerModuleType.WRAPPER, "PlainTrainOneStepCell"):
        MindFormerRegister.register_cls(PlainTrainOneStepCell, module_type=MindFormerModuleType.WRAPPER)


def test_mindformers_registry_builds_ours_from_a_config_with_betas():
    """build_optim from a mindformers config (which writes betas, as for its AdamW) builds ours with them;
    control: its AdamW from the same config."""
    _mindformers_register()
    from mindformers.core.optim import build_optim  # pylint: disable=import-outside-toplevel
    net = tiny_net()
    config = {"betas": [0.9, 0.99], "learning_rate": 0.01, "weight_decay": 0.01}
    ours = build_optim(dict(config, type="RAdam"), default_args={"params": net.trainable_params()})
    assert isinstance(ours, NNRAdam) and (ours.beta1, ours.beta2) == (0.9, 0.99)
    theirs = build_optim(dict(config, type="AdamW"), default_args={"params": net.trainable_params()})
    assert type(theirs).__name__ == "AdamW"


def mindformers_run(kind, out, resume=None):
    """A one-layer LLaMA (mindformers' own model class, CPU settings) trained by mindformers' Trainer for 4
    steps, saving a checkpoint (network and optimizer) every 2; `resume`: a checkpoint to continue from
    (mindformers' resume_training). Returns the trained weights and the optimizer."""
    _mindformers_register()
    import mindspore.dataset as ds  # pylint: disable=import-outside-toplevel
    from mindformers import Trainer, TrainingArguments  # pylint: disable=import-outside-toplevel
    from mindformers.core.optim import build_optim  # pylint: disable=import-outside-toplevel
    from mindformers.models.llama import LlamaConfig, LlamaForCausalLM  # pylint: disable=import-outside-toplevel
    # PyNative: in GRAPH_MODE one embedding element in 1,024 differed by an ulp between the uninterrupted and
    # the resumed run with ours (the embedding's gradient is a scatter-add; not traced further); PyNative
    # runs reproduce bit for bit.
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(0)
    config = LlamaConfig(batch_size=2, seq_length=8, hidden_size=16, num_layers=1, num_heads=2, vocab_size=64,
                         use_rope_slice=True, fused_rms_norm=False, use_flash_attention=False,
                         compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
                         rotary_dtype="float32", param_init_type="float32")
    model = LlamaForCausalLM(config)
    ids = np.random.default_rng(0).integers(0, 64, (8, 9)).astype(np.int32)
    dataset = ds.NumpySlicesDataset({"input_ids": ids}, shuffle=False).batch(2)
    optimizer = build_optim({"type": kind, "betas": [0.9, 0.999], "learning_rate": 1e-3, "weight_decay": 0.0},
                            default_args={"params": model.trainable_params()})
    args = TrainingArguments(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=2,
                             wrapper_type="PlainTrainOneStepCell", save_steps=2, use_parallel=False, sink_mode=False)
    trainer = Trainer(args=args, model=model, train_dataset=dataset, optimizers=optimizer)
    if resume is None:
        trainer.train()
    else:
        trainer.train(resume_from_checkpoint=os.path.dirname(os.path.dirname(resume)),
                      resume_training=os.path.basename(resume))
    return {p.name: p.asnumpy().copy() for p in model.trainable_params()}, optimizer


def _mindformers_checkpoint(out, step):
    import glob  # pylint: disable=import-outside-toplevel
    found = glob.glob(os.path.join(str(out), "checkpoint", "rank_0", f"*-1_{step}.ckpt"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("kind", ("RAdam", "AdamW"))
def test_mindformers_trainer_resumes_bit_identically(kind, tmp_path):
    """Trainer: 4 steps uninterrupted, against 2 steps resumed by Trainer from the step-2 checkpoint (ours and,
    as the control, mindformers' AdamW): the same bits; ours trained (the weights moved)."""
    full, optimizer = mindformers_run(kind, tmp_path / "full")
    if kind == "RAdam":
        assert isinstance(optimizer, NNRAdam) and int(optimizer.steps[0].asnumpy()) == 4
    resumed, _ = mindformers_run(kind, tmp_path / "resumed", resume=_mindformers_checkpoint(tmp_path / "full", 2))
    for name, value in full.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=f"{kind}: {name}")


def test_mindformers_resume_comparison_can_fail(tmp_path):
    """Negative control: the step-2 checkpoint without our step counts continues elsewhere."""
    full, _ = mindformers_run("RAdam", tmp_path / "full")
    path = _mindformers_checkpoint(tmp_path / "full", 2)
    checkpoint = {key: value for key, value in ms.load_checkpoint(path).items() if not key.startswith("step.")}
    stripped = path.replace("-1_2.ckpt", "-1_2-nosteps.ckpt")
    ms.save_checkpoint([{"name": key, "data": value} for key, value in checkpoint.items()], stripped)
    resumed, _ = mindformers_run("RAdam", tmp_path / "resumed", resume=stripped)
    assert any(not np.array_equal(resumed[name], value) for name, value in full.items())
