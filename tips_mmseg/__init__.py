import _tips_mmseg_bootstrap  # noqa: F401  (mmcv-lite compatibility first)
from .version import __version__  # noqa: F401
from . import engine, evaluation  # noqa: F401,E402  (registers the hook)
