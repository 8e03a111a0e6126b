"""The example-script tests (tests/common/examples.py) on Ascend; skipped with a reason without a Ascend device."""
import pytest

from tests.common.devices import require
from tests.common.examples import *  # noqa: F401,F403 - the shared tests, collected here

DEVICE_TARGET = "Ascend"
pytestmark = require(DEVICE_TARGET)


@pytest.fixture
def device_target():
    return DEVICE_TARGET
