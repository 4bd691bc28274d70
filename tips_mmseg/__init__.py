"""tips-mmseg: importing it registers its modules in mmseg's registries and
changes nothing else (the opt-in fixes: tips_mmseg.compat,
docs/compatibility.md)."""
try:
    from . import (analysis, apis, datasets, engine, evaluation,  # noqa: F401
                   models, registry, utils)
except ModuleNotFoundError as error:  # mmcv-lite without the start-up shim
    if error.name != 'mmcv._ext':
        raise
    raise ImportError(
        "mmseg imports mmcv.ops, whose compiled extension mmcv._ext is "
        'missing: mmcv-lite is installed without the tips-mmseg start-up '
        'shim. Install the shim (pip install ./compat/mmcv_lite_shim from a '
        'tips-mmseg checkout; `make venv` does) or full mmcv '
        '(mmcv>=2.0,<2.2 built for your torch).') from error
from .version import __version__  # noqa: F401
from .configs import config_path  # noqa: F401
