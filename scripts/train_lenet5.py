"""Train LeNet5 with mindspore_radam.RAdam on real handwritten digits that ship with scikit-learn
(no download), or on MNIST IDX files. The last line printed is ``test accuracy: X.XXXX``.

    python scripts/train_lenet5.py                # a value_and_grad train step (PyNative)
    python scripts/train_lenet5.py --api model    # mindspore.train.Model with mindspore_radam.nn.RAdam (graph)
    python scripts/train_lenet5.py --dataset mnist --data-dir ~/data/mnist --epochs 3
"""
import argparse
import os
import sys

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only

import mindspore as ms  # noqa: E402

from mindspore_radam.examples import data as example_data  # noqa: E402
from mindspore_radam.examples.lenet import PARAM_DTYPES  # noqa: E402
from mindspore_radam.examples.model_api import ModelRunConfig, train_with_model  # noqa: E402
from mindspore_radam.examples.training import (  # noqa: E402
    OPTIMIZERS, SCHEDULERS, RunConfig, init_distributed, train)

# Options of the value_and_grad example that --api model does not take.
LOOP_ONLY = ("optimizer", "distributed", "param_dtype", "kahan", "save", "resume", "stop_after")


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv):
    defaults = RunConfig()
    parser = OneLineErrorParser(prog="train_lenet5.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", choices=("loop", "model"), default="loop",
                        help="loop: a value_and_grad train step with mindspore_radam.RAdam (default); model: "
                             "mindspore.train.Model with mindspore_radam.nn.RAdam, LossMonitor, ModelCheckpoint, "
                             "Accuracy")
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--data-dir", help="directory with the four MNIST IDX files (for --dataset mnist)")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=defaults.optimizer)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--mode", choices=("pynative", "graph"),
                        help=f"default: {defaults.mode} for --api loop, {ModelRunConfig().mode} for --api model")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=defaults.scheduler)
    parser.add_argument("--device", choices=("CPU", "GPU", "Ascend"), default="CPU")
    parser.add_argument("--save", metavar="PATH", help="write a checkpoint (model, optimizer, scheduler) at the end")
    parser.add_argument("--resume", metavar="PATH", help="continue from a checkpoint written with --save")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="stop after N epochs of this run, the schedule still spanning --epochs "
                             "(an interrupted run; continue it with --resume)")
    parser.add_argument("--distributed", action="store_true",
                        help="data parallel, launched by msrun (see scripts/run_distributed.sh): each rank "
                             "trains on its shard with --batch-size / ranks per step; rank 0 prints and saves")
    parser.add_argument("--param-dtype", choices=tuple(PARAM_DTYPES), default=defaults.param_dtype,
                        help="store the parameters in this dtype (computed in float32; the optimizer keeps "
                             "float32 state)")
    parser.add_argument("--kahan", action="store_true", help="RAdam's kahan_summation (for --param-dtype bfloat16)")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="--api model: ModelCheckpoint writes a checkpoint per epoch into DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (--api model: no LossMonitor)")
    args = parser.parse_args(argv)
    if args.api == "model":
        for name in LOOP_ONLY:
            if getattr(args, name) not in (None, False, parser.get_default(name)):
                parser.error(f"argument --{name.replace('_', '-')}: not an option of --api model")
    elif args.checkpoint_dir:
        parser.error("argument --checkpoint-dir: an option of --api model (use --save with the default api)")
    if args.mode is None:
        args.mode = ModelRunConfig().mode if args.api == "model" else defaults.mode
    if not args.lr >= 0 or args.lr == float("inf"):
        parser.error(f"argument --lr: must be a finite number >= 0, got {args.lr}")
    if args.epochs < 1:
        parser.error(f"argument --epochs: must be >= 1, got {args.epochs}")
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"argument --stop-after: must be >= 1, got {args.stop_after}")
    if args.batch_size < 1:
        parser.error(f"argument --batch-size: must be >= 1, got {args.batch_size}")
    if args.dataset == "mnist" and not args.data_dir:
        parser.error("argument --data-dir: required with --dataset mnist")
    if args.resume and not os.path.isfile(args.resume):
        parser.error(f"argument --resume: no such file {args.resume!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        ms.set_device(args.device)
        rank, ranks, batch_size = 0, 1, args.batch_size
        if args.distributed:
            rank, ranks = init_distributed()
            batch_size = max(1, args.batch_size // ranks)  # the global batch stays --batch-size
        if args.dataset == "mnist":
            data = example_data.load_mnist(args.data_dir, num_shards=ranks if args.distributed else None,
                                           shard_id=rank if args.distributed else None)
        else:
            x_train, y_train, x_test, y_test = example_data.load_digits()
            data = (x_train[rank::ranks], y_train[rank::ranks], x_test, y_test)
        if args.api == "model":
            config = ModelRunConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                    mode=args.mode, schedule=args.scheduler, checkpoint_dir=args.checkpoint_dir,
                                    print_loss=not args.no_progress)
            _, accuracy = train_with_model(config, data)
            print(f"test accuracy: {accuracy:.4f}")
            return 0
        config = RunConfig(optimizer=args.optimizer, lr=args.lr, epochs=args.epochs, batch_size=batch_size,
                           seed=args.seed, mode=args.mode, scheduler=args.scheduler, distributed=args.distributed,
                           param_dtype=args.param_dtype, kahan=args.kahan)
        _, history = train(config, data, progress=not args.no_progress and rank == 0, resume=args.resume,
                           save=args.save if rank == 0 else None, stop_after=args.stop_after)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"train_lenet5.py: error: {message}", file=sys.stderr)
        return 1
    if history.ranks_agree is not None and rank == 0:
        print(f"ranks agree: {'yes' if history.ranks_agree else 'no'}")
    if history.ranks_agree is False:
        print("train_lenet5.py: error: the ranks ended with different parameters", file=sys.stderr)
        return 1
    if rank == 0:
        print(f"test accuracy: {history.test_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
