"""The shared suite (every tests/common/suite*.py) on Ascend; skipped with a reason when there is no Ascend device."""
from tests.common.devices import require, shared_tests

globals().update(shared_tests())  # the shared tests, collected here

DEVICE_TARGET = "Ascend"
pytestmark = require(DEVICE_TARGET)
