"""The example-script tests (tests/common/examples.py) on CPU; skipped with a reason without a CPU device."""
import pytest

from tests.common.devices import require
from tests.common.examples import *  # noqa: F401,F403 - the shared tests, collected here

DEVICE_TARGET = "CPU"
pytestmark = require(DEVICE_TARGET)


@pytest.fixture
def device_target():
    return DEVICE_TARGET
