"""Run one of mmseg's own tools with tips_mmseg imported first.

mmseg's tools read the config only after importing mmseg, so a plugin that
must be in place before that (mmcv-lite support) and every tips_mmseg module
is imported here; the CLI is mmseg's own, unchanged. Known cryptic errors
are re-raised with their cause and fix, and ``--amp`` without a GPU is
refused up front (tips_mmseg.utils.friendly_errors).
"""
import os.path as osp
import runpy
import sys


def mmseg_tool_path(name: str) -> str:
    """Path of mmseg's ``tools/<name>`` (wheel: mmseg/.mim/tools)."""
    import mmseg
    pkg = osp.dirname(mmseg.__file__)
    for candidate in (osp.join(pkg, '.mim', 'tools', name),
                      osp.join(osp.dirname(pkg), 'tools', name)):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'mmseg\'s tools/{name} was not found next to {pkg}; install '
        'mmsegmentation from PyPI (its wheel ships mmseg/.mim/tools) or from '
        'a full source checkout.')


def run(name: str):
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    if repo not in sys.path:
        sys.path.insert(0, repo)  # a checkout works without installing
    import tips_mmseg  # noqa: F401  (registers models, hooks; mmcv-lite)
    from tips_mmseg.utils import check_amp_available, explain_errors
    if '--amp' in sys.argv[1:]:
        try:
            check_amp_available()
        except RuntimeError as err:
            sys.exit(f'error: {err}')
    path = mmseg_tool_path(name)
    sys.argv[0] = path
    with explain_errors():
        runpy.run_path(path, run_name='__main__')
