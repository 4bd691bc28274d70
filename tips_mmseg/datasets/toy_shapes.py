"""A small synthetic dataset where aliasing matters (see make_toy_dataset).

Images are written as PNG (lossless): the 1-2 px textures the set exists
for would be smeared by JPEG.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

TOY_CLASSES = ('background', 'disc', 'thin_bar', 'ring', 'checker')
TOY_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0],
               [60, 180, 75]]
#: Bumped whenever the same arguments would draw different images; tools
#: rewrite a data root whose ``meta.json`` names another version.
TOY_VERSION = 3
#: Layout under the data root (relative paths, as the toy configs use them).
TOY_LAYOUT = dict(img_path='images', seg_map_path='labels',
                  split='splits/{}.txt')
#: Line width (px) of the bars and rings: thin next to the output stride (8),
#: so whether a stride-2 step keeps them depends on their phase, yet wide
#: enough for the stride-4 decoder features to outline them.
THIN_WIDTHS = (4, 5)
#: Radius range (px at 64 px, scaled with the side) of discs, rings and the
#: half side of checker squares. (Measured with freely placed, overlapping
#: shapes: vanilla mIoU 67 after 400 iterations, discs and partly hidden
#: rings confused; one shape per grid cell: 84.)
RADIUS_RANGE = (6, 12)


def _fine_texture(rng, size, period):
    """Stripes of a 2-4 px period at a random angle and phase."""
    yy, xx = np.mgrid[:size, :size]
    angle = rng.uniform(0, np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    return np.cos(2 * np.pi / period *
                  (np.cos(angle) * xx + np.sin(angle) * yy) + phase)


def _contrasting_colour(rng, base, min_distance=80.):
    """A colour at least ``min_distance`` (L2 in BGR) from ``base``."""
    for _ in range(100):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - base) >= min_distance:
            return colour
    return 255. - base  # pragma: no cover (100 misses in a row)


def render_toy_sample(rng: np.random.Generator, size: int = 64):
    """Draw one image and its label map.

    The background carries stripes of a 2-4 px period; on top lie four
    shapes, one of each class, one per cell of a 2x2 grid (random order and
    jitter), each of its own colour (contrasting with the background): solid
    discs, 4-5 px wide bars, 4-5 px wide rings, and
    squares filled with a 1 px checkerboard (period 2, the Nyquist limit:
    a stride-2 sampler sees it as flat, and which flat value depends on the
    phase). Shapes may reach into a neighbour's cell; later ones cover
    earlier ones.

    Args:
        rng (np.random.Generator): Source of randomness (seeded by the caller).
        size (int): Height and width. Defaults to 64.

    Returns:
        tuple[np.ndarray, np.ndarray]: (size, size, 3) uint8 BGR image and
        (size, size) uint8 label map with values in ``range(5)``.
    """
    scale = size / 64.
    base = rng.uniform(60, 190, 3)
    image = np.empty((size, size, 3), np.float32)
    image[:] = base + 25 * _fine_texture(rng, size, rng.uniform(2.2, 4))[
        ..., None]
    label = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2)[..., None] * 2. - 1.
    # Every class once per image, each in its own cell of a 2x2 grid (in a
    # random order), so shapes rarely hide each other and every class is
    # seen whole: balanced classes, and the thin ones are never rare.
    classes = [int(c) for c in rng.permutation(np.arange(1, len(TOY_CLASSES)))]
    cell = size // 2
    low, high = (max(2, round(r * scale)) for r in RADIUS_RANGE)
    for index, cls in enumerate(classes):
        mask = np.zeros((size, size), np.uint8)
        radius = int(rng.integers(low, high + 1))
        # Centre jittered inside the cell; shapes may reach over its edge.
        slack = max(1, cell // 2 - radius // 2)
        cx = (index % 2) * cell + cell // 2 + int(rng.integers(-slack, slack + 1) // 2)
        cy = (index // 2) * cell + cell // 2 + int(rng.integers(-slack, slack + 1) // 2)
        width = int(rng.choice(THIN_WIDTHS))
        if cls == 1:  # solid disc
            cv2.circle(mask, (cx, cy), radius, 1, -1)
        elif cls == 2:  # a bar across the cell
            angle = rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * cell * 0.6, np.sin(angle) * cell * 0.6
            cv2.line(mask, (int(cx - dx), int(cy - dy)),
                     (int(cx + dx), int(cy + dy)), 1, width)
        elif cls == 3:  # ring
            cv2.circle(mask, (cx, cy), max(radius, width + 2), 1, width)
        else:  # square filled with a 1 px checkerboard
            cv2.rectangle(mask, (cx - radius, cy - radius),
                          (cx + radius, cy + radius), 1, -1)
        region = mask.astype(bool)
        colour = _contrasting_colour(rng, base)
        if cls == 4:
            image[region] = (colour + 60 * checker)[region]
        else:
            image[region] = colour
        label[region] = cls
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def toy_dataset_meta(num_train: int, num_val: int, size: int,
                     seed: int) -> dict:
    """What ``meta.json`` of a toy data root records (version + arguments)."""
    return dict(version=TOY_VERSION, num_train=num_train, num_val=num_val,
                size=size, seed=seed, classes=list(TOY_CLASSES))


def read_toy_dataset_meta(out_dir: str):
    """The ``meta.json`` of a toy data root, or None if there is none."""
    path = osp.join(out_dir, 'meta.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_toy_dataset(out_dir: str,
                      num_train: int = 384,
                      num_val: int = 64,
                      size: int = 64,
                      seed: int = 0) -> dict:
    """Write the toy dataset.

    Layout under ``out_dir``: ``images/*.png`` (BGR, lossless),
    ``labels/*.png`` (class indices), ``splits/{train,val}.txt`` and
    ``meta.json`` (generator version and these arguments). Image ``i`` of a
    split is drawn from its own seed ``(seed, split, i)``, so the same
    arguments always give the same files and a larger set starts with the
    images of a smaller one.

    Args:
        out_dir (str): Root folder (created).
        num_train (int): Training images. Defaults to 384.
        num_val (int): Validation images. Defaults to 64.
        size (int): Image side. Defaults to 64.
        seed (int): Seed of everything. Defaults to 0.

    Returns:
        dict: Number of images per split.
    """
    if num_train < 1 or num_val < 1 or size < 16:
        raise ValueError('need num_train >= 1, num_val >= 1 and size >= 16, '
                         f'got {num_train}, {num_val}, {size}.')
    img_dir = osp.join(out_dir, TOY_LAYOUT['img_path'])
    seg_dir = osp.join(out_dir, TOY_LAYOUT['seg_map_path'])
    for folder in (img_dir, seg_dir,
                   osp.dirname(osp.join(out_dir, TOY_LAYOUT['split']))):
        os.makedirs(folder, exist_ok=True)
    counts = {}
    for split_id, (split, number) in enumerate(
            (('train', num_train), ('val', num_val))):
        names = [f'{split}_{i:04d}' for i in range(number)]
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, split_id, i])
            image, label = render_toy_sample(rng, size)
            cv2.imwrite(osp.join(img_dir, name + '.png'), image)
            cv2.imwrite(osp.join(seg_dir, name + '.png'), label)
        with open(osp.join(out_dir, TOY_LAYOUT['split'].format(split)),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
        counts[split] = number
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(toy_dataset_meta(num_train, num_val, size, seed), f,
                  indent=1)
    return counts


@DATASETS.register_module()
class ToyShapesDataset(BaseSegDataset):
    """Synthetic shapes with thin structures and fine texture.

    Write it with ``python tools/make_toy_dataset.py`` (to ``data/toy``):
    ``images/*.png``, ``labels/*.png``, ``splits/{train,val}.txt``.

    Args:
        ann_file (str): Split file, e.g. 'splits/train.txt'.
        **kwargs: As for :class:`mmseg.datasets.BaseSegDataset`; image and
            label suffixes default to '.png', ``data_prefix`` to the layout
            above.
    """
    METAINFO = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)

    def __init__(self, ann_file: str = '', **kwargs):
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        kwargs.setdefault(
            'data_prefix',
            dict(img_path=TOY_LAYOUT['img_path'],
                 seg_map_path=TOY_LAYOUT['seg_map_path']))
        data_root = kwargs.get('data_root') or ''
        if not kwargs.get('lazy_init') and not osp.isdir(data_root or '.'):
            raise FileNotFoundError(
                f'Toy dataset root {data_root!r} does not exist; write it '
                f'with `python tools/make_toy_dataset.py --out {data_root}`.')
        super().__init__(ann_file=ann_file, **kwargs)
