"""Clear errors for a missing data root or an empty split of mmseg datasets.

Without them mmseg says ``AssertionError: Failed to load `ann_file` ...`` for
a missing folder and ``ValueError: need at least one array to concatenate``
(from mmengine's data serialization) for an empty split.
:func:`install_dataset_checks` (opt-in: ``tips_mmseg.compat.enable()``, which
our tools call; not run on ``import tips_mmseg``) makes mmengine's
``Runner.build_dataloader``, through which every train/val/test dataloader of
a Runner is built, check the paths of the dataset config first and name the
path and the fix. Only mmseg segmentation datasets (``BaseSegDataset`` and
subclasses, also inside dataset wrappers) are checked: any other dataset,
iterable or empty, is built exactly as mmengine builds it.
"""
import functools
import os
import os.path as osp
from collections.abc import Sized
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


def _dataset_class(type_):
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    from mmengine.registry import DATASETS
    from mmseg.registry import DATASETS as SEG_DATASETS
    for registry in (SEG_DATASETS, DATASETS):
        try:
            cls = registry.get(type_)
        except Exception:  # an unknown scope, a failed import
            cls = None
        if cls is not None:
            return cls
    return None


def is_seg_dataset_cfg(dataset_cfg) -> bool:
    """Whether ``dataset_cfg`` builds an mmseg segmentation dataset
    (``BaseSegDataset`` or a subclass)."""
    if not isinstance(dataset_cfg, dict):
        return False
    from mmseg.datasets import BaseSegDataset
    cls = _dataset_class(dataset_cfg.get('type'))
    return isinstance(cls, type) and issubclass(cls, BaseSegDataset)


def _has_seg_dataset(dataset_cfg) -> bool:
    """``dataset_cfg`` is, or wraps, an mmseg segmentation dataset."""
    if not isinstance(dataset_cfg, dict):
        return False
    inner = [dataset_cfg.get('dataset')] + list(
        dataset_cfg.get('datasets') or [])
    return is_seg_dataset_cfg(dataset_cfg) or any(
        _has_seg_dataset(d) for d in inner)


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
    if not is_seg_dataset_cfg(dataset_cfg):
        return
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
        if not _has_seg_dataset(dataset_cfg):
            return build(dataloader, *args, **kwargs)
        check_dataset_paths(dataset_cfg)
        try:
            loader = build(dataloader, *args, **kwargs)
        except ValueError as err:
            # mmengine serializes the data list with np.concatenate.
            if 'need at least one array to concatenate' in str(err):
                raise empty_split_error(dataset_cfg) from err
            raise
        dataset = loader.dataset
        if isinstance(dataset, Sized) and len(dataset) == 0:
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
