"""Label maps that do not fit the model or their image, refused by name.

Without these checks a label value outside ``num_classes`` (other than the
ignore index) ends training with ``IndexError: Target 7 is out of bounds``
and no file name (in evaluation IoUMetric silently drops those pixels), and a
label map of another size than its image trains silently (it is cropped and
flipped together with an image it does not match).

* :class:`CheckSegLabels` - a pipeline transform, placed after
  ``LoadAnnotations``, that raises ``ValueError`` naming the label file, its
  image and the fix, when the file is read.
* :func:`add_label_checks` - inserts it into every pipeline of a config
  (``tools/train.py`` and ``tools/test.py`` do this for every config).
* :func:`check_num_classes` - the model's class count against the datasets'
  (before training).
"""
import copy
from typing import Iterator, List, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


class ConfigCheckError(ValueError):
    """A config whose parts contradict each other (found before running)."""


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Refuse a label map with values outside the classes, or of another size
    than its image, naming the file.

    Place it right after ``LoadAnnotations`` (label values are checked after
    its ``reduce_zero_label`` / ``label_map``; sizes against the image as
    read, ``ori_shape``, so a ``Resize`` before ``LoadAnnotations`` is fine)::

        dict(type='LoadAnnotations'),
        dict(type='CheckSegLabels', num_classes=21),

    Args:
        num_classes (int): Classes of the model; valid labels are
            ``0 .. num_classes - 1``.
        ignore_index (int): The label that marks pixels to ignore (mmseg's
            decode heads and IoUMetric use 255). Defaults to 255.
        check_size (bool): Also require the label map to have the size of
            its image. Defaults to True.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 check_size: bool = True):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'CheckSegLabels needs num_classes >= 1 (the model\'s '
                f'decode_head.num_classes), got {num_classes!r}.')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    def transform(self, results: dict) -> dict:
        gt = results.get('gt_seg_map')
        if gt is None:
            return results
        label_file = results.get('seg_map_path', '<label map>')
        image_file = results.get('img_path', '<image>')
        image_shape = results.get('ori_shape') or (
            results['img'].shape[:2] if 'img' in results else None)
        if self.check_size and image_shape is not None and tuple(
                gt.shape[:2]) != tuple(image_shape[:2]):
            raise ValueError(
                f'Label map {label_file} is {gt.shape[0]}x{gt.shape[1]} '
                f'(HxW) but its image {image_file} is {image_shape[0]}x'
                f'{image_shape[1]}: a label map must have the size of its '
                'image. Check that it belongs to this image (data_prefix.'
                'seg_map_path, seg_map_suffix in the config), or resize it '
                'with nearest-neighbour interpolation.')
        valid = (gt >= 0) & (gt < self.num_classes)
        bad = ~valid & (gt != self.ignore_index)
        if bad.any():
            values = np.unique(gt[bad])
            shown = ', '.join(str(v) for v in values[:10]) + (
                ', ...' if len(values) > 10 else '')
            raise ValueError(
                f'Label map {label_file} (image {image_file}) has label '
                f'values [{shown}] in {int(bad.sum())} pixels, outside the '
                f'{self.num_classes} classes 0..{self.num_classes - 1} and '
                f'not the ignore index {self.ignore_index}. Fix the file '
                f'(e.g. set those pixels to {self.ignore_index}), or, if the '
                'dataset really has more classes, set num_classes of the '
                "model's decode_head and auxiliary_head (and the dataset's "
                'metainfo classes) to match.')
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f'check_size={self.check_size})')


def _heads(model_cfg) -> Iterator[Tuple[str, dict]]:
    for key in ('decode_head', 'auxiliary_head'):
        heads = model_cfg.get(key) if model_cfg else None
        if isinstance(heads, dict):
            yield f'model.{key}', heads
        elif isinstance(heads, (list, tuple)):
            for i, head in enumerate(heads):
                if isinstance(head, dict):
                    yield f'model.{key}.{i}', head


def model_num_classes(cfg) -> Optional[int]:
    """``num_classes`` of the config's decode head (the first one)."""
    for _, head in _heads(cfg.get('model')):
        if isinstance(head.get('num_classes'), int):
            return head['num_classes']
    return None


def model_ignore_index(cfg) -> int:
    """The ignore index of the decode head (mmseg's default 255)."""
    for _, head in _heads(cfg.get('model')):
        return head.get('ignore_index', 255)
    return 255


def _dataset_cfgs(cfg) -> Iterator[Tuple[str, dict]]:
    """(name, dataset config) of every split, wrappers opened."""

    def walk(name, dataset):
        if not isinstance(dataset, dict):
            return
        inner = dataset.get('dataset')
        many = dataset.get('datasets')
        if isinstance(inner, dict):
            yield from walk(f'{name}.dataset', inner)
        elif isinstance(many, (list, tuple)):
            for i, d in enumerate(many):
                yield from walk(f'{name}.datasets.{i}', d)
        else:
            yield name, dataset

    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            yield from walk(f'{split}_dataloader.dataset',
                            loader.get('dataset'))


def dataset_classes(dataset_cfg: dict) -> Optional[List[str]]:
    """The classes a dataset config gives (its ``metainfo`` or its class's
    ``METAINFO``), or None if unknown."""
    from .data_checks import _dataset_class
    metainfo = dataset_cfg.get('metainfo') or {}
    if metainfo.get('classes') is not None:
        return list(metainfo['classes'])
    cls = _dataset_class(dataset_cfg.get('type'))
    classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
    return list(classes) if classes is not None else None


def check_num_classes(cfg):
    """Raise :class:`ConfigCheckError` if a head's ``num_classes`` differs
    from the number of classes of a dataset in the config.

    Args:
        cfg (Config | dict): An mmseg config.
    """
    heads = [(where, head['num_classes'])
             for where, head in _heads(cfg.get('model'))
             if isinstance(head.get('num_classes'), int)]
    for name, dataset in _dataset_cfgs(cfg):
        classes = dataset_classes(dataset)
        if classes is None:
            continue
        for where, num in heads:
            if num != len(classes):
                fix = ' '.join(f'{w}.num_classes={len(classes)}'
                               for w, _ in heads)
                raise ConfigCheckError(
                    f'{where}.num_classes={num} but {name} '
                    f'({dataset.get("type")}) has {len(classes)} classes '
                    f'{classes[:6]}{"..." if len(classes) > 6 else ""}: the '
                    'model must predict one score per dataset class. Set '
                    f'them equal, e.g. --cfg-options {fix} (or give the '
                    'dataset metainfo=dict(classes=...)).')


def _is_load_annotations(step) -> bool:
    return isinstance(step, dict) and str(step.get('type', '')).split(
        '.')[-1] == 'LoadAnnotations'


def with_label_checks(pipeline: list, num_classes: int,
                      ignore_index: int = 255) -> list:
    """``pipeline`` with :class:`CheckSegLabels` after ``LoadAnnotations``
    (unchanged if it has one already, or loads no labels)."""
    if any(isinstance(s, dict) and str(s.get('type', '')).split('.')[-1]
           == 'CheckSegLabels' for s in pipeline):
        return list(pipeline)
    out = []
    for step in pipeline:
        out.append(step)
        if _is_load_annotations(step):
            out.append(dict(type='CheckSegLabels', num_classes=num_classes,
                            ignore_index=ignore_index))
    return out


def add_label_checks(cfg) -> bool:
    """Insert :class:`CheckSegLabels` into every dataset pipeline of
    ``cfg`` (in place), with the decode head's ``num_classes`` and
    ``ignore_index``.

    Returns:
        bool: Whether the model's class count was known (else nothing done).
    """
    num_classes = model_num_classes(cfg)
    if num_classes is None:
        return False
    ignore_index = model_ignore_index(cfg)
    for _, dataset in _dataset_cfgs(cfg):
        if isinstance(dataset.get('pipeline'), list):
            dataset['pipeline'] = with_label_checks(
                copy.deepcopy(dataset['pipeline']), num_classes, ignore_index)
    return True
