import os
import pathlib

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


# The device folders, collected only where their device is present or required
# (MINDSPORE_RADAM_REQUIRE_DEVICES, tests/common/devices.py): a CPU run shows CPU items only.
DEVICE_FOLDERS = {"gpu": "GPU", "ascend": "Ascend"}


def _absent_device(path):
    """The device of a device folder (tests/gpu, tests/ascend) that can't run here and isn't required, else None."""
    device = DEVICE_FOLDERS.get(path.name) if path.parent == pathlib.Path(__file__).parent else None
    if device is None:
        return None
    from tests.common import devices  # pylint: disable=import-outside-toplevel
    return None if devices.probe(device)[0] or devices.required(device) else device


def pytest_ignore_collect(collection_path, config):  # pylint: disable=unused-argument
    return True if _absent_device(collection_path) else None


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # pylint: disable=unused-argument
    from tests.common import devices  # pylint: disable=import-outside-toplevel
    for folder, device in DEVICE_FOLDERS.items():
        if _absent_device(pathlib.Path(__file__).parent / folder):
            terminalreporter.write_line(f"tests/{folder} not collected: {devices.probe(device)[1]} (set "
                                        f"{devices.REQUIRE_ENV}={device} where the device is, to require it)")


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
