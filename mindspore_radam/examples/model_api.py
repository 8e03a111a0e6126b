"""Training LeNet5 with ``mindspore.train.Model``, as MindSpore's own LeNet5 tutorial does, with
:class:`mindspore_radam.nn.RAdam`: a ``mindspore.dataset`` pipeline, ``Model.train`` with
``LossMonitor``/``TimeMonitor``/``ModelCheckpoint`` callbacks, then ``Model.eval`` with ``Accuracy``."""
import math
from dataclasses import dataclass

import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.train import Accuracy, CheckpointConfig, LossMonitor, Model, ModelCheckpoint, TimeMonitor

from mindspore_radam.examples.lenet import LeNet5
from mindspore_radam.nn import RAdam

SCHEDULES = ("none", "cosine", "step")


@dataclass
class ModelRunConfig:
    lr: float = 1e-2
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    mode: str = "graph"
    schedule: str = "cosine"
    checkpoint_dir: str = None  # ModelCheckpoint writes one checkpoint per epoch here
    print_loss: bool = True     # LossMonitor and TimeMonitor once per epoch


def learning_rates(name, lr, epochs, steps_per_epoch):
    """The learning rate per global step (a list, as ``nn`` optimizers take it), changing once per
    epoch like the other example's schedulers: cosine annealing from `lr` towards 0 over `epochs`,
    or x0.1 every third of them; ``"none"``: the number `lr`."""
    if name == "none":
        return lr
    if name == "cosine":
        per_epoch = [lr * (1 + math.cos(math.pi * epoch / epochs)) / 2 for epoch in range(epochs)]
    elif name == "step":
        per_epoch = [lr * 0.1 ** (epoch // max(1, epochs // 3)) for epoch in range(epochs)]
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, but got {name!r}")
    return [rate for rate in per_epoch for _ in range(steps_per_epoch)]


def dataset(x, y, batch_size, shuffle, seed):
    """A ``mindspore.dataset`` pipeline over NumPy arrays."""
    ds.config.set_seed(seed)
    data = ds.NumpySlicesDataset({"image": x, "label": y}, shuffle=shuffle)
    return data.batch(batch_size)


def train_with_model(config, data):
    """Trains LeNet5 on data = (x_train, y_train, x_test, y_test) with ``Model.train``; returns
    (model, test accuracy from ``Model.eval``)."""
    if config.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, but got {config.schedule!r}")
    x_train, y_train, x_test, y_test = data
    ms.set_context(mode=ms.GRAPH_MODE if config.mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_seed(config.seed)
    train_set = dataset(x_train, y_train, config.batch_size, True, config.seed)
    steps = train_set.get_dataset_size()
    net = LeNet5()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = RAdam(net.trainable_params(),
                      learning_rate=learning_rates(config.schedule, config.lr, config.epochs, steps))
    model = Model(net, loss, optimizer, metrics={"accuracy": Accuracy()})
    callbacks = []
    if config.print_loss:
        callbacks += [LossMonitor(per_print_times=steps), TimeMonitor(data_size=steps)]
    if config.checkpoint_dir:
        keep = CheckpointConfig(save_checkpoint_steps=steps, keep_checkpoint_max=2)
        callbacks.append(ModelCheckpoint(prefix="lenet5", directory=config.checkpoint_dir, config=keep))
    model.train(config.epochs, train_set, callbacks=callbacks, dataset_sink_mode=False)
    metrics = model.eval(dataset(x_test, y_test, 512, False, config.seed), dataset_sink_mode=False)
    return model, metrics["accuracy"]
