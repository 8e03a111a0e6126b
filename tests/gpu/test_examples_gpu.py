"""The example-script tests (tests/common/examples.py) on GPU; skipped with a reason without a GPU device."""
import pytest

from tests.common.devices import require
from tests.common.examples import *  # noqa: F401,F403 - the shared tests, collected here

DEVICE_TARGET = "GPU"
pytestmark = require(DEVICE_TARGET)


@pytest.fixture
def device_target():
    return DEVICE_TARGET
