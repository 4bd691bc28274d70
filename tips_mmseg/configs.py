"""Where tips-mmseg's configs are.

In a source checkout they are ``configs/`` beside the package; an installed
wheel carries them as ``tips_mmseg/.mim/configs`` with the model index as
``tips_mmseg/.mim/model-index.yml`` (the layout mmseg uses for its own
configs under ``mmseg/.mim``). mmengine 0.10.7 resolves ``pkg::`` base paths
only for OpenMMLab's own packages, so a user config inherits ours by path::

    from tips_mmseg import config_path
    cfg = Config.fromfile(config_path(
        'deeplabv3plus/deeplabv3plus_r50-d8-tips_4xb4-20k_voc12aug-512x512.py'))

or, in a config file, ``_base_ = ['/path/printed/by/config_path.py']``.
"""
import difflib
import glob
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
#: A file only tips-mmseg's config tree has (tells our checkout from any
#: other ``configs`` folder next to site-packages).
_MARKER = osp.join('_base_', 'models', 'tips-segmentor.py')


def _mim_dir() -> str:
    """The folder holding ``configs/`` and ``model-index.yml``: the source
    checkout's root if the package runs from one, else the wheel's
    ``tips_mmseg/.mim``."""
    checkout = osp.dirname(PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'configs', _MARKER)):
        return checkout
    mim = osp.join(PACKAGE_DIR, '.mim')
    if osp.isfile(osp.join(mim, 'configs', _MARKER)):
        return mim
    raise FileNotFoundError(
        f'tips-mmseg\'s configs are neither in {checkout}/configs (source '
        f'checkout) nor in {mim}/configs (installed wheel). Reinstall '
        'tips-mmseg (pip install tips-mmseg, or pip install -e . in a '
        'checkout).')


def configs_root() -> str:
    """Absolute path of the folder holding tips-mmseg's configs."""
    return osp.join(_mim_dir(), 'configs')


def model_index_path() -> str:
    """Absolute path of ``model-index.yml`` (what ``mim search`` reads)."""
    return osp.join(_mim_dir(), 'model-index.yml')


def config_path(name: str) -> str:
    """Absolute path of one of tips-mmseg's configs.

    Args:
        name (str): The config relative to the configs folder, e.g.
            ``'toy/deeplabv3plus_r18-d8-tips_toy-64x64.py'`` (a leading
            ``configs/`` and a missing ``.py`` are accepted), or a bare file
            name found in exactly one folder.

    Returns:
        str: The path, which ``Config.fromfile`` and mmseg's tools take.

    Raises:
        FileNotFoundError: No such config; the message names the closest
            ones.
    """
    root = configs_root()
    rel = name[len('configs/'):] if name.startswith('configs/') else name
    if not rel.endswith('.py'):
        rel += '.py'
    path = osp.join(root, rel)
    if osp.isfile(path):
        return path
    every = sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True))
    same_name = [p for p in every if osp.basename(p) == osp.basename(rel)]
    if len(same_name) == 1 and osp.dirname(rel) == '':
        return osp.join(root, same_name[0])
    close = difflib.get_close_matches(rel, every, n=3, cutoff=0.6)
    hint = (f' Closest: {", ".join(close)}.' if close else
            ' Configs are named <folder>/<file>.py, e.g. '
            'toy/deeplabv3plus_r18-d8-tips_toy-64x64.py.')
    raise FileNotFoundError(
        f'No tips-mmseg config {name!r} under {root}.{hint}')
