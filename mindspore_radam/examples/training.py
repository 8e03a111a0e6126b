"""Training LeNet5 with a ``value_and_grad`` train step, as in MindSpore's documentation."""
import hashlib
from dataclasses import dataclass, field

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops
from mindspore.experimental import optim
from mindspore.experimental.optim import lr_scheduler

from mindspore_radam.examples.lenet import PARAM_DTYPES, LeNet5
from mindspore_radam.radam import RAdam

OPTIMIZERS = {
    "radam": RAdam,
    "adam": optim.Adam,
    "builtin-radam": optim.RAdam,
}
SCHEDULERS = ("none", "cosine", "step")


@dataclass
class RunConfig:
    optimizer: str = "radam"
    lr: float = 1e-2
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    mode: str = "pynative"
    scheduler: str = "cosine"
    distributed: bool = False  # data parallel under msrun: call init_distributed() first
    param_dtype: str = "float32"  # or "bfloat16"/"float16": half-precision parameters (see LeNet5)
    kahan: bool = False  # RAdam's kahan_summation


@dataclass
class History:
    train_loss: list = field(default_factory=list)   # mean loss per epoch
    train_accuracy: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)    # every step's loss
    test_accuracy: float = float("nan")
    ranks_agree: bool = None  # data parallel: whether every rank ended with the same parameters


def make_scheduler(name, optimizer, epochs):
    """Stepped once per epoch."""
    if name == "none":
        return None
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    raise ValueError(f"scheduler must be one of {SCHEDULERS}, but got {name!r}")


def init_distributed():
    """Joins the msrun job (MindSpore's collective library, MCCL, on CPU) in DATA_PARALLEL mode;
    returns (rank, group size)."""
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return get_rank(), get_group_size()


def ranks_agree(params):
    """Whether every rank holds bit-identical `params`, as a data-parallel run whose gradients were
    reduced does: each rank's SHA-256 fingerprint of each parameter, gathered and compared."""
    fingerprint = [int.from_bytes(hashlib.sha256(p.asnumpy().tobytes()).digest()[:8], "little", signed=True)
                   for p in params]
    rows = ops.AllGather()(Tensor(np.array([fingerprint], np.int64))).asnumpy()
    return bool((rows == rows[0]).all())


def broadcast_from_rank0(params):
    """Every rank takes rank 0's values (DATA_PARALLEL does not broadcast initial parameters)."""
    broadcast = ops.Broadcast(0)
    for param in params:  # one at a time: a multi-tensor Broadcast mixed up tensors on CPU (MindSpore 2.10)
        param.set_data(broadcast((param.value(),))[0])


class Trainer:
    """LeNet5, its loss, optimizer and scheduler, and a train step: one jit-compiled graph in graph
    mode; a jit-compiled forward and backward pass, then the optimizer from Python, in PyNative."""

    def __init__(self, config):
        if config.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, but got {config.optimizer!r}")
        if config.param_dtype not in PARAM_DTYPES:
            raise ValueError(f"param_dtype must be one of {tuple(PARAM_DTYPES)}, but got {config.param_dtype!r}")
        if config.kahan and config.optimizer != "radam":
            raise ValueError(f"kahan summation is an option of mindspore_radam.RAdam, not of {config.optimizer!r}")
        self.config = config
        ms.set_context(mode=ms.GRAPH_MODE if config.mode == "graph" else ms.PYNATIVE_MODE)
        ms.set_seed(config.seed)
        self.net = LeNet5(param_dtype=config.param_dtype)
        self.loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        options = {"kahan_summation": True} if config.kahan else {}
        self.optimizer = OPTIMIZERS[config.optimizer](self.net.trainable_params(), lr=config.lr, **options)
        self.scheduler = make_scheduler(config.scheduler, self.optimizer, config.epochs)
        self.epoch = 0
        reducer = None
        if config.distributed:
            from mindspore.communication import get_group_size
            broadcast_from_rank0(self.net.trainable_params())
            reducer = nn.DistributedGradReducer(self.optimizer.parameters, mean=True, degree=get_group_size())
        grad_fn = ms.value_and_grad(self.forward, None, self.optimizer.parameters, has_aux=True)
        if config.mode == "pynative":
            # The forward and backward pass compiled; the optimizer, scheduler and loop stay in
            # PyNative. MindSpore 2.10's eager autodiff costs about 150 ms a step here whatever the
            # optimizer (20 epochs: 150 s with RAdam, the built-in RAdam or Adam alike).
            grad_fn = ms.jit(grad_fn)

        def train_step(data, label):
            (loss, correct), grads = grad_fn(data, label)
            if reducer is not None:
                grads = reducer(grads)
            self.optimizer(grads)
            return loss, correct
        self.train_step = ms.jit(train_step) if config.mode == "graph" else train_step

    def forward(self, data, label):
        logits = self.net(data)
        correct = (ops.argmax(logits, 1) == label).astype(ms.int32).sum()
        return self.loss_fn(logits, label), correct

    def train_epoch(self, x, y, progress=None):
        """One epoch over (x, y) in an order fixed by (seed, epoch), so a resumed run repeats it."""
        order = np.random.default_rng([self.config.seed, self.epoch]).permutation(len(x))
        batches = [order[i:i + self.config.batch_size] for i in range(0, len(x), self.config.batch_size)]
        losses, correct, seen = [], 0, 0
        for index in batches:
            loss, right = self.train_step(Tensor(x[index]), Tensor(y[index]))
            losses.append(float(loss.asnumpy()))
            correct += int(right.asnumpy())
            seen += len(index)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{losses[-1]:.4f}", acc=f"{correct / seen:.4f}")
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        return losses, correct / seen

    def evaluate(self, x, y, batch_size=512):
        correct = 0
        for i in range(0, len(x), batch_size):
            logits = self.net(Tensor(x[i:i + batch_size]))
            correct += int((logits.asnumpy().argmax(1) == y[i:i + batch_size]).sum())
        return correct / len(x)

    def checkpoint_entries(self):
        """Network, optimizer state, learning rates, scheduler position and epoch, by name."""
        entries = [{"name": p.name, "data": p} for p in self.optimizer.get_parameters() if p.size > 0]
        if self.scheduler is not None:
            entries.append({"name": "scheduler.last_epoch", "data": self.scheduler.last_epoch})
        entries.append({"name": "trainer.epoch", "data": Tensor(self.epoch, ms.int64)})
        return entries

    def save(self, path):
        ms.save_checkpoint(self.checkpoint_entries(), path)

    def load(self, path):
        """Restores a checkpoint written by `save` for the same configuration."""
        try:
            state = ms.load_checkpoint(path)
        except Exception as error:  # noqa: BLE001 - MindSpore raises several types for bad files
            raise ValueError(f"cannot read checkpoint {path!r}: {str(error).strip().splitlines()[0]}") from None
        if "trainer.epoch" not in state:
            raise ValueError(f"checkpoint {path!r} was not written by this script (no 'trainer.epoch')")
        not_loaded, _ = ms.load_param_into_net(self.optimizer, state, strict_load=True)
        if not_loaded:
            raise ValueError(f"checkpoint {path!r} does not match this model and optimizer: "
                             f"missing {', '.join(not_loaded[:5])}")
        if self.scheduler is not None:
            if "scheduler.last_epoch" not in state:
                raise ValueError(f"checkpoint {path!r} holds no scheduler state")
            self.scheduler.last_epoch.set_data(state["scheduler.last_epoch"])
        self.epoch = int(state["trainer.epoch"].asnumpy())


def train(config, data, progress=False, resume=None, save=None, stop_after=None):
    """Trains per `config` on data = (x_train, y_train, x_test, y_test); returns (trainer, History).

    With `progress`, shows a tqdm bar per epoch with the running loss and accuracy. `stop_after`
    ends this run after that many epochs while the schedule still spans ``config.epochs`` (an
    interrupted run, to be continued with `resume`).
    """
    x_train, y_train, x_test, y_test = data
    trainer = Trainer(config)
    if resume:
        trainer.load(resume)
    history = History()
    steps = -(-len(x_train) // config.batch_size)
    last = config.epochs if stop_after is None else min(config.epochs, trainer.epoch + stop_after)
    while trainer.epoch < last:
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=steps, desc=f"epoch {trainer.epoch + 1}/{config.epochs}", leave=True)
        losses, accuracy = trainer.train_epoch(x_train, y_train, bar)
        if bar is not None:
            bar.close()
        history.step_loss.extend(losses)
        history.train_loss.append(float(np.mean(losses)))
        history.train_accuracy.append(accuracy)
    if save:
        trainer.save(save)
    if config.distributed:
        history.ranks_agree = ranks_agree(trainer.optimizer.parameters)
    history.test_accuracy = trainer.evaluate(x_test, y_test)
    return trainer, history
