"""A tiny real mmseg set-up for the robustness tests.

An on-disk dataset of 32x32 PNGs (a red rectangle, class 1, on a textured
background, class 0), a ResNetV1c-18 (8 channels) + FCNHead config on it,
and that model trained for a few steps so its clean mIoU is far from
trivial and an attack has something to destroy.
"""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

SIZE = 32
NUM_TRAIN, NUM_TEST = 24, 6


def _write_split(root, split, num, rng):
    for folder in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(root, folder, split), exist_ok=True)
    for i in range(num):
        img = rng.integers(0, 110, (SIZE, SIZE, 3)).astype(np.uint8)
        ann = np.zeros((SIZE, SIZE), np.uint8)
        h, w = rng.integers(10, 18, 2)
        top, left = rng.integers(0, SIZE - h), rng.integers(0, SIZE - w)
        # BGR on disk: a saturated red object, with values reaching 255 so
        # the attacks' clamp to [0, 255] is exercised.
        img[top:top + h, left:left + w] = (
            rng.integers(0, 60), rng.integers(0, 60), 255)
        ann[top:top + h, left:left + w] = 1
        ann[top, left:left + w] = 255  # an ignored border row
        cv2.imwrite(osp.join(root, 'img_dir', split, f'{split}_{i}.png'),
                    img)
        cv2.imwrite(osp.join(root, 'ann_dir', split, f'{split}_{i}.png'),
                    ann)


def toy_config(data_root):
    """Config dict of the toy set-up (model, test dataloader, evaluator)."""
    norm_cfg = dict(type='BN', requires_grad=True)

    def loader(split, batch_size, shuffle):
        return dict(
            batch_size=batch_size,
            num_workers=0,
            persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=shuffle),
            dataset=dict(
                type='BaseSegDataset',
                data_root=data_root,
                data_prefix=dict(
                    img_path=f'img_dir/{split}',
                    seg_map_path=f'ann_dir/{split}'),
                img_suffix='.png',
                seg_map_suffix='.png',
                metainfo=dict(
                    classes=('background', 'object'),
                    palette=[[0, 0, 0], [255, 0, 0]]),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs'),
                ]))

    return dict(
        default_scope='mmseg',
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
                size=(SIZE, SIZE),
                pad_val=0,
                seg_pad_val=255),
            backbone=dict(
                type='ResNetV1c',
                depth=18,
                stem_channels=8,
                base_channels=8,
                num_stages=4,
                out_indices=(3, ),
                dilations=(1, 1, 2, 4),
                strides=(1, 2, 1, 1),
                norm_cfg=norm_cfg,
                contract_dilation=True),
            decode_head=dict(
                type='FCNHead',
                in_channels=64,
                in_index=0,
                channels=16,
                num_convs=1,
                concat_input=False,
                dropout_ratio=0.0,
                num_classes=2,
                norm_cfg=norm_cfg,
                align_corners=False,
                loss_decode=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0)),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')),
        train_dataloader=loader('train', 8, True),
        test_dataloader=loader('test', 2, False),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']))


@pytest.fixture(scope='session')
def toy_data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy_seg'))
    rng = np.random.default_rng(0)
    _write_split(root, 'train', NUM_TRAIN, rng)
    _write_split(root, 'test', NUM_TEST, rng)
    return root


@pytest.fixture(scope='session')
def toy_cfg(toy_data_root):
    from mmengine.config import Config
    return Config(toy_config(toy_data_root))


@pytest.fixture(scope='session')
def trained_toy_model(toy_cfg):
    """The toy segmentor after 60 Adam steps, in eval mode, on CPU."""
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    torch.manual_seed(0)
    # PyTorch's default init (no init_weights): trains fast enough here.
    model = revert_sync_batchnorm(MODELS.build(toy_cfg.model)).train()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    loader = Runner.build_dataloader(toy_cfg.train_dataloader, seed=0)
    steps = 0
    while steps < 60:
        for data in loader:
            model.train_step(data, optim)
            steps += 1
    return model.eval()
