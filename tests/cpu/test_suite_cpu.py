"""The shared suite (every tests/common/suite*.py) on CPU (always there: a failing probe fails collection)."""
from tests.common.devices import require, shared_tests

globals().update(shared_tests())  # the shared tests, collected here

DEVICE_TARGET = "CPU"
pytestmark = require(DEVICE_TARGET)
