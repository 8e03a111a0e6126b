import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only (zero-size kernels warn on every step)

import mindspore as ms
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "extended: slow end-to-end runs (full-length examples, msrun jobs, wheel "
                                       "and sdist installs, benchmark scripts, the mutation subset): "
                                       "`python -m pytest tests -m extended -n 0`, run by CI after the default tier")
    config.addinivalue_line("markers", "frameworks: ours inside mindcv, mindone (and their controls), each in the "
                                       "venv of its MindSpore: `bash scripts/frameworks_tier.sh`, run by CI last")
    config.addinivalue_line("markers", "versions: the tier CI runs on each older supported MindSpore release "
                                       "(`python -m pytest tests/cpu -m versions`)")


@pytest.fixture(autouse=True)
def ms_context(request):
    """Puts MindSpore on the suite's device and restores the execution mode after each test."""
    device = getattr(request.node.module, "DEVICE_TARGET", "CPU")
    if ms.get_context("device_target") != device:
        try:
            ms.set_device(device)
        except RuntimeError as error:
            pytest.skip(f"run the {device} suite in its own pytest process: MindSpore cannot switch to "
                        f"{device} after its runtime started on {ms.get_context('device_target')} ({error})")
    mode = ms.get_context("mode")
    yield device
    ms.set_context(mode=mode)
