"""Compare RAdam (ours), Adam and the built-in RAdam on LeNet5 + the bundled digits, sweeping the
learning rate over several seeds, with no warmup and no schedule (the paper's claims: RAdam needs no
warmup and is less sensitive to the learning rate).

Writes, into --out: compare_loss.png (training loss per step at --curve-lr, mean over seeds),
compare_accuracy.png (final test accuracy against lr, mean with min-max over seeds) and
compare_table.md.

    python scripts/compare_optimizers.py            # the README's figures
    python scripts/compare_optimizers.py --quick    # a smoke run
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only

import numpy as np  # noqa: E402

from mindspore_radam.examples.data import load_digits  # noqa: E402
from mindspore_radam.examples.training import RunConfig, train  # noqa: E402

OPTIMIZERS = ("radam", "adam", "builtin-radam")
LABELS = {"radam": "RAdam (mindspore_radam)", "adam": "Adam (experimental.optim)",
          "builtin-radam": "RAdam (experimental.optim)"}
# Our RAdam and the built-in agree closely at betas=(0.9, 0.999): distinct styles keep both visible.
STYLES = {"radam": dict(marker="o", linestyle="-"), "adam": dict(marker="s", linestyle="-"),
          "builtin-radam": dict(marker="x", linestyle="--")}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--curve-lr", type=float, default=3e-2, help="learning rate of the loss-curve plot")
    parser.add_argument("--mode", choices=("pynative", "graph"), default="graph")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--quick", action="store_true", help="2 learning rates, 1 seed, 1 epoch")
    parser.add_argument("--from-json", metavar="PATH",
                        help="redraw the plots and table from a compare_results.json instead of training")
    args = parser.parse_args(argv)
    if args.quick:
        args.lrs, args.seeds, args.epochs = [1e-3, 3e-2], 1, 1
    if args.curve_lr not in args.lrs:
        args.curve_lr = args.lrs[-1]
    return args


def sweep(args, data):
    """results[(optimizer, lr)] = list over seeds of (test accuracy, step losses)."""
    results = {}
    for optimizer in OPTIMIZERS:
        for lr in args.lrs:
            runs = []
            for seed in range(args.seeds):
                config = RunConfig(optimizer=optimizer, lr=lr, epochs=args.epochs, batch_size=args.batch_size,
                                   seed=seed, mode=args.mode, scheduler="none")
                _, history = train(config, data)
                runs.append((history.test_accuracy, history.step_loss))
            results[(optimizer, lr)] = runs
            accuracies = [a for a, _ in runs]
            print(f"{optimizer:14s} lr={lr:<7g} test accuracy {np.mean(accuracies):.4f} "
                  f"(min {np.min(accuracies):.4f}, max {np.max(accuracies):.4f})", flush=True)
    return results


def plot(args, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for optimizer in OPTIMIZERS:
        losses = np.array([loss for _, loss in results[(optimizer, args.curve_lr)]])
        ax.plot(np.nanmean(losses, axis=0), label=LABELS[optimizer], linewidth=1,
                linestyle=STYLES[optimizer]["linestyle"])
    ax.set(xlabel="step", ylabel="training loss", yscale="log",
           title=f"LeNet5 on digits, lr={args.curve_lr:g}, no warmup (mean of {args.seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "compare_loss.png"), dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    for optimizer in OPTIMIZERS:
        acc = np.array([[a for a, _ in results[(optimizer, lr)]] for lr in args.lrs])
        mean = acc.mean(axis=1)
        spread = np.maximum(0.0, [mean - acc.min(axis=1), acc.max(axis=1) - mean])  # no -1e-17 from rounding
        ax.errorbar(args.lrs, mean, yerr=spread, capsize=3, label=LABELS[optimizer], **STYLES[optimizer])
    ax.set(xscale="log", xlabel="learning rate", ylabel="test accuracy",
           title=f"Final test accuracy after {args.epochs} epochs (mean, min-max over {args.seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "compare_accuracy.png"), dpi=110)


def table(args, results, seconds):
    lines = ["| optimizer | " + " | ".join(f"lr={lr:g}" for lr in args.lrs) + " |",
             "|---|" + "---|" * len(args.lrs)]
    for optimizer in OPTIMIZERS:
        cells = []
        for lr in args.lrs:
            acc = [a for a, _ in results[(optimizer, lr)]]
            cells.append(f"{np.mean(acc):.4f} ({np.min(acc):.3f}–{np.max(acc):.3f})")
        lines.append(f"| {LABELS[optimizer]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Test accuracy, mean (min–max) over {args.seeds} seeds; {args.epochs} epochs, batch "
                 f"{args.batch_size}, {args.mode} mode, no schedule. Produced by `python scripts/"
                 f"compare_optimizers.py` in {seconds / 60:.1f} min.")
    with open(os.path.join(args.out, "compare_table.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            saved = json.load(f)
        results = {(r["optimizer"], r["lr"]): list(zip(r["test_accuracy"], r["step_loss"])) for r in saved}
        args.lrs = sorted({lr for _, lr in results})
        args.seeds = len(saved[0]["test_accuracy"])
        args.epochs = saved[0].get("epochs", args.epochs)
        plot(args, results)
        print(f"redrew {args.out}/compare_loss.png and compare_accuracy.png from {args.from_json}")
        return 0
    results = sweep(args, load_digits())
    with open(os.path.join(args.out, "compare_results.json"), "w", encoding="utf-8") as f:
        json.dump([{"optimizer": o, "lr": lr, "epochs": args.epochs, "test_accuracy": [a for a, _ in runs],
                    "step_loss": [loss for _, loss in runs]} for (o, lr), runs in results.items()], f)
    plot(args, results)
    table(args, results, time.time() - start)
    print(f"wrote {args.out}/compare_loss.png, compare_accuracy.png, compare_table.md, compare_results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
