import _tips_mmseg_bootstrap  # noqa: F401  (mmcv-lite compatibility first)
from . import (analysis, apis, datasets, engine, evaluation,  # noqa: F401
               models, utils)
from .version import __version__  # noqa: F401
from .configs import config_path  # noqa: F401
