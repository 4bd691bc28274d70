"""The toy dataset: seeded, lossless, every class present, thin structures."""
import json

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from tips_mmseg.datasets import (TOY_CLASSES, ToyShapesDataset,
                                 render_toy_sample, write_toy_dataset)
from tips_mmseg.datasets.toy_shapes import (THIN_WIDTHS, TOY_VERSION,
                                            read_toy_dataset_meta)


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob('*') if p.is_file())


def test_same_arguments_same_files_and_larger_sets_extend(tmp_path):
    write_toy_dataset(str(tmp_path / 'a'), 3, 2, size=32, seed=1)
    write_toy_dataset(str(tmp_path / 'b'), 3, 2, size=32, seed=1)
    write_toy_dataset(str(tmp_path / 'c'), 5, 2, size=32, seed=1)
    write_toy_dataset(str(tmp_path / 'd'), 3, 2, size=32, seed=2)
    a, b, c, d = (tmp_path / n for n in 'abcd')
    assert _files(a) == _files(b)
    for rel in _files(a):
        if rel.name != 'train.txt' and rel.name != 'meta.json':
            assert (a / rel).read_bytes() == (b / rel).read_bytes()
            # Image i of a split has its own seed: a larger set starts with
            # the smaller one's images.
            assert (a / rel).read_bytes() == (c / rel).read_bytes(), rel
    assert (a / 'images' / 'train_0000.png').read_bytes() != (
        d / 'images' / 'train_0000.png').read_bytes()
    assert (a / 'splits' / 'val.txt').read_text().split() == [
        'val_0000', 'val_0001']
    meta = read_toy_dataset_meta(str(a))
    assert meta == json.loads((a / 'meta.json').read_text())
    assert meta['version'] == TOY_VERSION and meta['num_train'] == 3
    assert meta['seed'] == 1 and meta['size'] == 32
    assert read_toy_dataset_meta(str(tmp_path / 'nowhere')) is None


def test_images_are_lossless(tmp_path):
    write_toy_dataset(str(tmp_path), 1, 1, size=32, seed=0)
    image, label = render_toy_sample(
        np.random.default_rng([0, 0, 0]), 32)  # (seed, split train, index)
    stored = cv2.imread(str(tmp_path / 'images' / 'train_0000.png'))
    stored_label = cv2.imread(str(tmp_path / 'labels' / 'train_0000.png'),
                              cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(stored, image)
    np.testing.assert_array_equal(stored_label, label)


def test_every_class_is_drawn_and_the_checker_has_a_1px_period():
    rng = np.random.default_rng(0)
    fractions = np.zeros(len(TOY_CLASSES))
    checker_seen = 0
    for _ in range(40):
        image, label = render_toy_sample(rng, 64)
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
        assert label.max() < len(TOY_CLASSES)
        fractions += np.bincount(label.ravel(), minlength=5) / label.size
        inside = label == TOY_CLASSES.index('checker')
        # Horizontal neighbours inside a checker square alternate by 120
        # grey levels (+-60 around the square's colour), minus noise.
        pairs = inside[:, 1:] & inside[:, :-1]
        if pairs.sum() > 20:
            diff = np.abs(image[:, 1:].astype(int) - image[:, :-1])[pairs]
            assert np.median(diff) > 60
            checker_seen += 1
    fractions /= 40
    # Every shape class covers a useful share of the pixels; background does
    # not swamp them.
    assert fractions[0] < 0.8
    assert (fractions[1:] > 0.03).all(), fractions
    assert checker_seen > 20


def test_thin_structures_are_thin():
    """Bars and rings are THIN_WIDTHS (4-5 px) wide, discs are not: the
    distance of a class pixel to the nearest pixel outside the class is
    small for nearly all of them (crossings of two bars are the rest)."""
    rng = np.random.default_rng(3)
    depth = {cls: [] for cls in ('disc', 'thin_bar', 'ring')}
    for _ in range(30):
        _, label = render_toy_sample(rng, 64)
        for cls in depth:
            mask = np.pad(label == TOY_CLASSES.index(cls), 1)
            dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2,
                                         5)
            depth[cls].append(dist[mask])
    p90 = {cls: np.percentile(np.concatenate(v), 90)
           for cls, v in depth.items()}
    # Half the width, plus one: the distance transform counts the pixel
    # itself.
    limit = max(THIN_WIDTHS) / 2 + 1
    assert p90['thin_bar'] <= limit and p90['ring'] <= limit, p90
    assert p90['disc'] > limit + 2, p90
    assert max(THIN_WIDTHS) < 8  # thinner than a stride-8 feature cell


def test_dataset_reads_the_layout(tmp_path):
    write_toy_dataset(str(tmp_path), 2, 1, size=32)
    init_default_scope('mmseg')
    dataset = ToyShapesDataset(
        data_root=str(tmp_path), ann_file='splits/train.txt',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations')])
    assert len(dataset) == 2
    item = dataset[1]
    assert item['img_path'].endswith('images/train_0001.png')
    assert item['img'].shape == (32, 32, 3)
    assert set(np.unique(item['gt_seg_map'])) <= set(range(5))
    assert dataset.metainfo['classes'] == TOY_CLASSES


def test_bad_arguments_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match='size >= 16'):
        write_toy_dataset(str(tmp_path), 1, 1, size=8)
    with pytest.raises(FileNotFoundError, match='make_toy_dataset.py'):
        ToyShapesDataset(data_root=str(tmp_path / 'nowhere'),
                         ann_file='splits/train.txt')
