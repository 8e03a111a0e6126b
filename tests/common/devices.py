"""Device selection for the thin per-device suites.

CPU is always there: if probing it fails, the CPU suites fail to collect (never skip). A GPU or
Ascend suite skips with the reason when its device is absent, unless the environment variable
``MINDSPORE_RADAM_REQUIRE_DEVICES`` names it (comma-separated, e.g. ``GPU`` in a GPU CI job): then a
missing device fails the run instead of letting it pass with every test skipped.
"""
import os

import mindspore as ms
import pytest

REQUIRE_ENV = "MINDSPORE_RADAM_REQUIRE_DEVICES"


def probe(device_target):
    """(available, reason) for `device_target`; reason says why not."""
    try:
        if bool(ms.hal.is_available(device_target)):
            return True, ""
        return False, (f"no {device_target} device: mindspore.hal.is_available('{device_target}') is False "
                       f"with this MindSpore build ({ms.__version__})")
    except Exception as error:  # noqa: BLE001 - reported below, never swallowed for a required device
        return False, f"no {device_target} device: probing it raised {error!r}"


def required(device_target):
    wanted = {name.strip().lower() for name in os.environ.get(REQUIRE_ENV, "").split(",") if name.strip()}
    return device_target == "CPU" or device_target.lower() in wanted


def require(device_target):
    """A module-level mark: the suite runs on `device_target`, or skips with the reason; a required
    device (CPU, or one named in MINDSPORE_RADAM_REQUIRE_DEVICES) that is missing is an error."""
    available, reason = probe(device_target)
    if not available and required(device_target):
        raise RuntimeError(f"{reason}; this suite requires it (CPU always; others when {REQUIRE_ENV} names "
                           f"them), so it fails rather than skipping every test")
    return pytest.mark.skipif(not available, reason=reason)


def shared_tests():
    """Every ``test_*`` function of the shared suites (``tests/common/suite*.py``), by name, for a device
    module's globals: a new suite module is picked up by every device folder without an edit there.

    Raises:
        RuntimeError: two suite modules define a test of the same name (one would hide the other).
    """
    import importlib  # pylint: disable=import-outside-toplevel
    import pathlib  # pylint: disable=import-outside-toplevel
    tests, origin = {}, {}
    for path in sorted(pathlib.Path(__file__).parent.glob("suite*.py")):
        module = importlib.import_module(f"tests.common.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value) and getattr(value, "__module__", None) == module.__name__:
                if name in tests:
                    raise RuntimeError(f"{name} is defined in both {origin[name]} and {module.__name__}")
                tests[name], origin[name] = value, module.__name__
    return tests
