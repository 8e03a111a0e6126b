"""The hyperparameter record is declared once: the C++ kernel's ``enum Hyper`` has its names in its order,
and every reader goes by name."""
import pathlib
import re

import numpy as np
from mindspore import Tensor

from mindspore_radam import functional
from mindspore_radam.functional import H, HYPER_FIELDS, fields_of_hyper, group_hyper, group_options

KERNEL = pathlib.Path(functional.__file__).parent / "csrc" / "radam_cpu.cc"


def enum_fields(source):
    """The field names of the kernel's ``enum Hyper`` (``kBeta1`` -> ``beta1``), without ``kHyperSize``."""
    body = re.search(r"enum Hyper\s*\{([^}]*)\}", source).group(1)
    names = [name.strip() for name in body.split(",") if name.strip()]
    assert names[-1] == "kHyperSize"
    return tuple(re.sub(r"(?<!^)([A-Z])", r"_\1", name[1:]).lower() for name in names[:-1])


ALIASES = {"decoupled": "decoupled_weight_decay"}  # the kernel's shorter name for the same field


def kernel_fields(source):
    return tuple(ALIASES.get(name, name) for name in enum_fields(source))


def test_the_kernel_reads_the_record_in_its_order():
    assert kernel_fields(KERNEL.read_text()) == HYPER_FIELDS


def test_a_kernel_with_two_fields_swapped_is_caught():
    """Negative control: the check sees a reordered enum."""
    source = KERNEL.read_text().replace("kBeta1, kBeta2,", "kBeta2, kBeta1,")
    assert source != KERNEL.read_text()
    assert kernel_fields(source) != HYPER_FIELDS


def test_indices_name_the_record():
    assert [getattr(H, name) for name in HYPER_FIELDS] == list(range(len(HYPER_FIELDS)))


def test_a_group_round_trips_through_the_vector_by_name():
    group = dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.25, threshold=6.0, maximize=True,
                 decoupled_weight_decay=False, degenerated_to_sgd=False)
    options = group_options(group)
    assert options[H.beta2] == 0.99 and options[H.one_minus_beta1] == 1.0 - 0.8 and options[H.maximize] is True
    fields = fields_of_hyper(group_hyper(options), "test")
    assert fields == group
    # control: another vector gives other fields
    other = np.array(group_hyper(options).asnumpy())
    other[H.eps] = 1e-3
    assert fields_of_hyper(Tensor(other), "test")["eps"] == 1e-3
