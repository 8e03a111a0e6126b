"""What differs between the MindSpore releases this package supports (2.7.0 to 2.10.x), in one place.

Everything else in the package is written against the API all of them share; each difference
below names the releases it concerns and what was measured there (CPU, Python 3.11).
"""
import re

import mindspore
from mindspore import ops
import mindspore.common.dtype as mstype

SUPPORTED = ">=2.7.0,<2.11"
VERSION = tuple(int(part) for part in re.findall(r"\d+", mindspore.__version__)[:3])

try:  # 2.9 and later
    from mindspore.graph.api import jit_class  # noqa: F401 - re-exported
except ImportError:  # 2.7 and 2.8: mindspore.graph does not exist yet
    from mindspore import jit_class  # noqa: F401


def zeros(shape, dtype):
    """``ops.zeros(shape, dtype)``. 2.7: the CPU ``Zeros`` kernel has no bfloat16 output ("Select CPU
    operator[Zeros] fail! Unsupported data type"), so bfloat16 zeros are float32 zeros cast."""
    if dtype == mstype.bfloat16 and VERSION < (2, 8):
        return ops.zeros(shape, mstype.float32).astype(dtype)
    return ops.zeros(shape, dtype)
