"""Device selection for the thin per-device suites."""
import mindspore as ms
import pytest


def require(device_target):
    """A module-level mark that skips a suite, with the reason, when its device is absent."""
    try:
        available = bool(ms.hal.is_available(device_target))
        reason = (f"no {device_target} device: mindspore.hal.is_available('{device_target}') is False "
                  f"with this MindSpore build ({ms.__version__})")
    except Exception as error:  # noqa: BLE001 - any failure to probe means the device is not usable
        available = False
        reason = f"no {device_target} device: probing it raised {error!r}"
    return pytest.mark.skipif(not available, reason=reason)
