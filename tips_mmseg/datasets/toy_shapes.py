"""A tiny synthetic dataset where aliasing matters (see make_toy_dataset)."""
import os
import os.path as osp

import cv2
import numpy as np

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

TOY_CLASSES = ('background', 'disc', 'thin_bar', 'ring', 'checker')
TOY_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0],
               [60, 180, 75]]


def _fine_texture(rng, size, period):
    """Stripes/checkers of a 1-2 px period, the content a stride-2 op aliases."""
    yy, xx = np.mgrid[:size, :size]
    angle = rng.uniform(0, np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.cos(2 * np.pi / period *
                  (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    return wave


def render_toy_sample(rng: np.random.Generator, size: int = 64):
    """Draw one image and its label map.

    Args:
        rng (np.random.Generator): Source of randomness (seeded by the caller).
        size (int): Height and width. Defaults to 64.

    Returns:
        tuple[np.ndarray, np.ndarray]: (size, size, 3) uint8 BGR image and
        (size, size) uint8 label map with values in ``range(5)``.
    """
    base = rng.uniform(60, 190, 3)
    image = np.empty((size, size, 3), np.float32)
    image[:] = base + 25 * _fine_texture(rng, size, rng.uniform(2.2, 4))[
        ..., None]
    label = np.zeros((size, size), np.uint8)
    num_shapes = rng.integers(2, 5)
    for _ in range(num_shapes):
        cls = int(rng.integers(1, len(TOY_CLASSES)))
        mask = np.zeros((size, size), np.uint8)
        cx, cy = rng.integers(8, size - 8, 2)
        radius = int(rng.integers(5, size // 4))
        if cls == 1:  # solid disc
            cv2.circle(mask, (int(cx), int(cy)), radius, 1, -1)
        elif cls == 2:  # 1-2 px wide bar: vanishes or survives by phase
            angle = rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * size / 2, np.sin(angle) * size / 2
            cv2.line(mask, (int(cx - dx), int(cy - dy)),
                     (int(cx + dx), int(cy + dy)), 1,
                     int(rng.integers(1, 3)))
        elif cls == 3:  # thin ring
            cv2.circle(mask, (int(cx), int(cy)), radius, 1,
                       int(rng.integers(1, 3)))
        else:  # square filled with a 1 px checkerboard
            half = radius
            cv2.rectangle(mask, (int(cx - half), int(cy - half)),
                          (int(cx + half), int(cy + half)), 1, -1)
        region = mask.astype(bool)
        colour = rng.uniform(0, 255, 3)
        if cls == 4:
            yy, xx = np.mgrid[:size, :size]
            checker = ((yy + xx) % 2)[..., None] * 2 - 1
            image[region] = (colour + 60 * checker)[region]
        else:
            image[region] = colour
        label[region] = cls
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_toy_dataset(out_dir: str,
                      num_train: int = 64,
                      num_val: int = 16,
                      size: int = 64,
                      seed: int = 0) -> dict:
    """Write the toy dataset in PASCAL VOC layout.

    ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` and
    ``ImageSets/Segmentation/{train,val}.txt`` under ``out_dir``. The same
    arguments always give the same files.

    Args:
        out_dir (str): Root folder (created).
        num_train (int): Training images. Defaults to 64.
        num_val (int): Validation images. Defaults to 16.
        size (int): Image side. Defaults to 64.
        seed (int): Seed of everything. Defaults to 0.

    Returns:
        dict: Number of images per split.
    """
    if num_train < 1 or num_val < 1 or size < 16:
        raise ValueError('need num_train >= 1, num_val >= 1 and size >= 16, '
                         f'got {num_train}, {num_val}, {size}.')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = {}
    for split, number in (('train', num_train), ('val', num_val)):
        names = [f'{split}_{i:04d}' for i in range(number)]
        for name in names:
            image, label = render_toy_sample(rng, size)
            cv2.imwrite(
                osp.join(out_dir, 'JPEGImages', name + '.jpg'), image,
                [cv2.IMWRITE_JPEG_QUALITY, 98])
            cv2.imwrite(
                osp.join(out_dir, 'SegmentationClass', name + '.png'), label)
        with open(osp.join(out_dir, 'ImageSets', 'Segmentation',
                           split + '.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
        counts[split] = number
    return counts


@DATASETS.register_module()
class ToyShapesDataset(BaseSegDataset):
    """Synthetic shapes with thin structures and fine texture, VOC layout.

    Write it with ``python tools/make_toy_dataset.py`` (to ``data/toy``).

    Args:
        ann_file (str): Split file, e.g. 'ImageSets/Segmentation/train.txt'.
        **kwargs: As for :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)

    def __init__(self, ann_file: str = '', **kwargs):
        kwargs.setdefault('img_suffix', '.jpg')
        kwargs.setdefault('seg_map_suffix', '.png')
        data_root = kwargs.get('data_root') or ''
        if not kwargs.get('lazy_init') and not osp.isdir(data_root or '.'):
            raise FileNotFoundError(
                f'Toy dataset root {data_root!r} does not exist; write it '
                f'with `python tools/make_toy_dataset.py --out {data_root}`.')
        super().__init__(ann_file=ann_file, **kwargs)
