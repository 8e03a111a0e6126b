"""The shared suite (tests/common) on GPU; skipped with a reason when there is no GPU device."""
from tests.common.devices import require
from tests.common.suite import *  # noqa: F401,F403 - the shared tests, collected here
from tests.common.suite_cell_contract import *  # noqa: F401,F403
from tests.common.suite_live import *  # noqa: F401,F403
from tests.common.suite_lookahead import *  # noqa: F401,F403
from tests.common.suite_loss_scaling import *  # noqa: F401,F403
from tests.common.suite_nn import *  # noqa: F401,F403
from tests.common.suite_precision import *  # noqa: F401,F403
from tests.common.suite_schedulers import *  # noqa: F401,F403
from tests.common.suite_semantics import *  # noqa: F401,F403
from tests.common.suite_switching import *  # noqa: F401,F403

DEVICE_TARGET = "GPU"
pytestmark = require(DEVICE_TARGET)
