"""The LeNet5 example used by scripts/train_lenet5.py, scripts/compare_optimizers.py and the tests.

Needs the ``examples`` extra (scikit-learn for the bundled digits, tqdm, matplotlib).
"""
from mindspore_radam.examples.lenet import LeNet5

__all__ = ["LeNet5"]
