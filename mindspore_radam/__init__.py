"""mindspore-radam: an exact, validated, fast RAdam optimizer for MindSpore."""
from mindspore_radam import lr_scheduler, nn
from mindspore_radam.compat import load_builtin_checkpoint
from mindspore_radam.live import keep_loads_in_place
from mindspore_radam.lookahead import Lookahead
from mindspore_radam.radam import RAdam
from mindspore_radam.schedule import SCALAR_NAMES, radam_scalars

__version__ = "0.1.0"
__all__ = ["RAdam", "Lookahead", "lr_scheduler", "nn", "load_builtin_checkpoint", "keep_loads_in_place",
           "radam_scalars", "SCALAR_NAMES", "__version__"]
