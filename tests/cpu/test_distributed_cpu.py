"""Data-parallel tests (tests/common/distributed.py): msrun with 2 CPU workers over loopback."""
from tests.common.distributed import *  # noqa: F401,F403 - the shared tests, collected here

DEVICE_TARGET = "CPU"
