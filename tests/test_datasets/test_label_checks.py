"""Label maps outside the classes or of another size than their image are
refused when read, naming the file; class counts are checked up front."""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from tests.helpers import TEST_DATA
from tips_mmseg.apis.builders import build_eval_dataloader
from tips_mmseg.datasets import (CheckSegLabels, ConfigCheckError,
                                 add_label_checks, check_num_classes,
                                 with_label_checks, write_toy_dataset)

TINY = osp.join(TEST_DATA, 'tiny_toy_config.py')


def sample(gt, ori_shape=None):
    ori_shape = ori_shape or gt.shape
    return dict(gt_seg_map=gt, ori_shape=ori_shape, img=np.zeros(
        (*ori_shape, 3), np.uint8), img_path='a/img_7.jpg',
        seg_map_path='a/img_7.png')


def test_valid_labels_and_the_ignore_index_pass_unchanged():
    gt = np.array([[0, 4], [255, 2]], np.uint8)
    out = CheckSegLabels(num_classes=5)(sample(gt))
    assert out['gt_seg_map'] is gt


def test_a_label_outside_the_classes_names_the_file_and_values():
    gt = np.array([[0, 7], [5, 255]], np.uint8)
    with pytest.raises(ValueError, match=r'a/img_7.png \(image a/img_7.jpg\)'
                       r' has label values \[5, 7\] in 2 pixels, outside '
                       r'the 5 classes 0..4 and not the ignore index 255'):
        CheckSegLabels(num_classes=5)(sample(gt))
    # another ignore index makes 255 an error and 7 fine with 8 classes
    with pytest.raises(ValueError, match=r'\[255\]'):
        CheckSegLabels(num_classes=8, ignore_index=0)(sample(gt))


def test_a_label_map_of_another_size_is_refused_against_the_read_image():
    gt = np.zeros((4, 6), np.uint8)
    with pytest.raises(ValueError, match=r'Label map a/img_7.png is 4x6 '
                       r'\(HxW\) but its image a/img_7.jpg is 4x5'):
        CheckSegLabels(num_classes=5)(sample(gt, ori_shape=(4, 5)))
    # the image as read counts, not a resized one
    out = sample(gt)
    out['img'] = np.zeros((8, 12, 3), np.uint8)
    CheckSegLabels(num_classes=5)(out)
    CheckSegLabels(num_classes=5, check_size=False)(
        sample(gt, ori_shape=(4, 5)))


def test_the_transform_goes_after_every_load_annotations_once():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]
    checked = with_label_checks(pipeline, 21, 255)
    assert [s['type'] for s in checked] == [
        'LoadImageFromFile', 'LoadAnnotations', 'CheckSegLabels',
        'PackSegInputs']
    assert checked[2]['num_classes'] == 21
    assert with_label_checks(checked, 21) == checked
    no_labels = [dict(type='LoadImageFromFile')]
    assert with_label_checks(no_labels, 21) == no_labels


@pytest.fixture
def bad_toy(tmp_path):
    """Toy data whose train_0001 label has a 7 and val_0002 label the wrong
    size."""
    root = tmp_path / 'toy'
    write_toy_dataset(str(root), 4, 4, size=32)
    seg = root / 'labels'
    label = cv2.imread(str(seg / 'train_0001.png'), cv2.IMREAD_UNCHANGED)
    label[3:5, 3:5] = 7
    cv2.imwrite(str(seg / 'train_0001.png'), label)
    cv2.imwrite(str(seg / 'val_0002.png'), np.zeros((16, 32), np.uint8))
    cfg = Config.fromfile(TINY)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(root)
    return cfg


def iterate(loader_cfg):
    for _ in Runner.build_dataloader(loader_cfg):
        pass


def test_bad_files_are_named_in_training_and_evaluation(bad_toy):
    init_default_scope('mmseg')
    add_label_checks(bad_toy)
    train = bad_toy.train_dataloader.copy()
    train.sampler = dict(type='DefaultSampler', shuffle=False)
    with pytest.raises(ValueError, match=r'train_0001.png .* has label '
                       r'values \[7\] in 4 pixels'):
        iterate(train)
    with pytest.raises(ValueError, match=r'val_0002.png is 16x32 \(HxW\) '
                       r'but its image .*val_0002.png is 32x32'):
        iterate(bad_toy.val_dataloader)
    # the analysis tools' loader checks by default
    with pytest.raises(ValueError, match=r'val_0002.png is 16x32'):
        for _ in build_eval_dataloader(bad_toy, 'val'):
            pass


def test_model_and_dataset_class_counts_must_agree():
    cfg = Config.fromfile(TINY)
    check_num_classes(cfg)  # 5 and 5
    cfg.model.decode_head.num_classes = 4
    with pytest.raises(ConfigCheckError, match=r'model.decode_head.'
                       r'num_classes=4 but train_dataloader.dataset '
                       r'\(ToyShapesDataset\) has 5 classes .*--cfg-options '
                       r'model.decode_head.num_classes=5'):
        check_num_classes(cfg)
    # a dataset metainfo override counts
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.metainfo = dict(
            classes=('a', 'b', 'c', 'd'))
    check_num_classes(cfg)
