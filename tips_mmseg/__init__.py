import _tips_mmseg_bootstrap  # noqa: F401  (mmcv-lite compatibility first)
from . import engine, models, utils  # noqa: F401
from .version import __version__  # noqa: F401
