"""Clear errors for a missing data root or an empty split, for any dataset.

Without them mmseg says ``AssertionError: Failed to load `ann_file` ...`` for
a missing folder and ``ValueError: need at least one array to concatenate``
(from mmengine's data serialization) for an empty split.
:func:`install_dataset_checks` (run on ``import tips_mmseg``) makes mmengine's
``Runner.build_dataloader``, through which every train/val/test dataloader of
a Runner is built, check the paths of the dataset config first and name the
path and the fix.
"""
import functools
import os
import os.path as osp
from typing import Optional

_PATCHED = '_tips_mmseg_data_checks'
_FIX = ('prepare the dataset there (mmseg: docs/en/user_guides/'
        '2_dataset_prepare.md; the toy data: python tools/make_toy_dataset.py'
        ') or set the path in the config, e.g. --cfg-options '
        'train_dataloader.dataset.data_root=/path/to/data')


def _local(path) -> bool:
    return isinstance(path, str) and '://' not in path


def _join(root: Optional[str], path: str) -> str:
    return osp.join(root, path) if root and not osp.isabs(path) else path


def check_dataset_paths(dataset_cfg: dict):
    """Raise ``FileNotFoundError`` if the config names missing local paths.

    Checks ``data_root``, ``ann_file`` and ``data_prefix.img_path`` (joined
    with ``data_root`` as mmengine's BaseDataset does), and the datasets of
    wrappers (``dataset`` / ``datasets`` keys).

    Args:
        dataset_cfg (dict): A dataset config.
    """
    if not isinstance(dataset_cfg, dict):
        return
    for inner in [dataset_cfg.get('dataset')] + list(
            dataset_cfg.get('datasets') or []):
        check_dataset_paths(inner)
    name = dataset_cfg.get('type', 'dataset')
    root = dataset_cfg.get('data_root')
    if _local(root) and root and not osp.isdir(root):
        where = '' if osp.isabs(root) else f' (relative to {os.getcwd()})'
        raise FileNotFoundError(
            f'{name}: data_root {root!r} does not exist{where}; {_FIX}.')
    ann_file = dataset_cfg.get('ann_file')
    if _local(ann_file) and ann_file and not osp.isfile(
            _join(root, ann_file)):
        raise FileNotFoundError(
            f'{name}: split file {_join(root, ann_file)!r} (ann_file) does '
            f'not exist; {_FIX}.')
    img_path = (dataset_cfg.get('data_prefix') or {}).get('img_path')
    if _local(img_path) and img_path and not osp.isdir(_join(root, img_path)):
        raise FileNotFoundError(
            f'{name}: image folder {_join(root, img_path)!r} '
            f'(data_prefix.img_path) does not exist; {_FIX}.')


def empty_split_error(dataset_cfg: dict) -> ValueError:
    """The error for a dataset config that yields no samples."""
    root = dataset_cfg.get('data_root')
    ann_file = dataset_cfg.get('ann_file')
    img_path = (dataset_cfg.get('data_prefix') or {}).get('img_path', '')
    where = (f'the split file {_join(root, ann_file)!r} lists no images'
             if ann_file else
             f'no image in {_join(root, img_path)!r} has the suffix of '
             f'img_suffix={dataset_cfg.get("img_suffix", "<class default>")!r}')
    return ValueError(
        f'{dataset_cfg.get("type", "dataset")} is empty: {where}. Check '
        'data_root, ann_file, data_prefix and img_suffix in the config.')


def _checked_build_dataloader(build):

    @functools.wraps(build)
    def build_dataloader(dataloader, *args, **kwargs):
        dataset_cfg = (dataloader.get('dataset')
                       if isinstance(dataloader, dict) else None)
        if not isinstance(dataset_cfg, dict):
            return build(dataloader, *args, **kwargs)
        check_dataset_paths(dataset_cfg)
        try:
            loader = build(dataloader, *args, **kwargs)
        except ValueError as err:
            # mmengine serializes the data list with np.concatenate.
            if 'need at least one array to concatenate' in str(err):
                raise empty_split_error(dataset_cfg) from err
            raise
        if len(loader.dataset) == 0:
            raise empty_split_error(dataset_cfg)
        return loader

    setattr(build_dataloader, _PATCHED, True)
    return build_dataloader


def install_dataset_checks():
    """Check dataset paths in ``Runner.build_dataloader`` (idempotent)."""
    from mmengine.runner import Runner
    if not getattr(Runner.build_dataloader, _PATCHED, False):
        Runner.build_dataloader = staticmethod(
            _checked_build_dataloader(Runner.build_dataloader))
