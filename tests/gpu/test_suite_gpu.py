"""The shared suite (every tests/common/suite*.py) on GPU; skipped with a reason when there is no GPU device."""
from tests.common.devices import require, shared_tests

globals().update(shared_tests())  # the shared tests, collected here

DEVICE_TARGET = "GPU"
pytestmark = require(DEVICE_TARGET)
