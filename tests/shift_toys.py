"""Tiny real mmseg pieces for the shift-consistency tests.

A pointwise segmentor (1x1 convolutions only, no downsampling: exactly
shift-equivariant), the pixel-wise known-answer segmentor (a 1x1 head on an
identity backbone), the parity segmentor (label ``(i + j) % 2`` whatever the
input), a strided one (ResNetV1c-18, 8 base channels), a tiny on-disk
dataset in mmseg's BaseSegDataset layout, and a Runner config.
"""
import os.path as osp

import numpy as np
import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.registry import init_default_scope
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from PIL import Image
from torch import nn

import tips_mmseg  # noqa: F401  (registers ShiftConsistencyHook)

NUM_CLASSES = 3
NORM_CFG = dict(type='BN', requires_grad=True)
DATA_PREPROCESSOR = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)


@MODELS.register_module(force=True)
class ToyPointwiseBackbone(BaseModule):
    """Two 1x1 convolutions and a ReLU: no spatial context at all."""

    def __init__(self, in_channels=3, channels=8, init_cfg=None):
        super().__init__(init_cfg)
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        return [self.layers(x)]


@MODELS.register_module(force=True)
class ToyIdentityBackbone(BaseModule):
    """The input itself as the only feature map."""

    def forward(self, x):
        return [x]


@MODELS.register_module(force=True)
class ToyParityHead(BaseDecodeHead):
    """Predicts class ``(i + j) % 2`` at pixel ``(i, j)`` of its input,
    whatever the input holds: the worst case for odd shifts."""

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        n, _, h, w = x.shape
        rows = torch.arange(h, device=x.device)[:, None]
        cols = torch.arange(w, device=x.device)[None, :]
        parity = (rows + cols) % 2
        logits = x.new_zeros(n, self.num_classes, h, w)
        logits[:, 0] = (parity == 0).float()
        logits[:, 1] = (parity == 1).float()
        return logits


def pixelwise_model_cfg(test_cfg=None):
    """A 1x1 convolution (the head's classifier) on the raw input."""
    return dict(
        type='EncoderDecoder',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=dict(type='ToyIdentityBackbone'),
        decode_head=dict(head(3), channels=3, num_convs=0),
        test_cfg=test_cfg or dict(mode='whole'))


def parity_model_cfg(test_cfg=None):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=dict(type='ToyIdentityBackbone'),
        decode_head=dict(
            type='ToyParityHead', in_channels=3, channels=3,
            num_classes=NUM_CLASSES),
        test_cfg=test_cfg or dict(mode='whole'))


def head(in_channels):
    return dict(
        type='FCNHead',
        in_channels=in_channels,
        channels=8,
        num_convs=1,
        kernel_size=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=NUM_CLASSES,
        norm_cfg=NORM_CFG,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


def pointwise_model_cfg(test_cfg=None):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=dict(type='ToyPointwiseBackbone'),
        decode_head=head(8),
        test_cfg=test_cfg or dict(mode='whole'))


def strided_model_cfg(test_cfg=None):
    return dict(
        type='EncoderDecoder',
        data_preprocessor=DATA_PREPROCESSOR,
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=8,
            base_channels=8,
            num_stages=4,
            out_indices=(1, ),
            norm_cfg=NORM_CFG),
        decode_head=head(16),
        test_cfg=test_cfg or dict(mode='whole'))


def build_model(cfg):
    """Build a segmentor in eval mode whose random predictions vary.

    PyTorch's default init, BN statistics calibrated on random inputs and a
    wide classifier, so predictions are not one class everywhere (which would
    be trivially shift-consistent).
    """
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    nn.init.normal_(model.decode_head.conv_seg.weight, std=1.0)
    if isinstance(model.backbone, ToyIdentityBackbone):
        model.eval()
        return model  # nothing to calibrate
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over calibration
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model.extract_feat(torch.randn(4, 3, 32, 32))
            model.decode_head(model.extract_feat(torch.randn(4, 3, 32, 32)))
    model.eval()
    return model


def write_dataset(root, num_images=5, size=(32, 32), ignore_band=False,
                  out_of_range=False):
    """Smooth random images and blob labels (PNG) under ``root``.

    Args:
        ignore_band (bool): Mark the first 4 rows of every label 255.
        out_of_range (bool): Mark rows 4-7 of every label 7, a value that
            is neither a class (of 3) nor the ignore index.
    """
    rng = np.random.default_rng(0)
    sizes = size if isinstance(size, list) else [size] * num_images
    for i, (h, w) in enumerate(sizes):
        coarse = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3))
        img = np.kron(coarse, np.ones((4, 4, 1)))[:h, :w]
        img = (img + rng.integers(0, 40, (h, w, 3))).clip(0, 255)
        label = (img.mean(-1) // 86).astype(np.uint8)
        if ignore_band:
            label[:4] = 255
        if out_of_range:
            label[4:8] = 7
        for sub, arr in (('img', img.astype(np.uint8)), ('ann', label)):
            path = osp.join(root, sub, f'{i:03d}.png')
            osp.isdir(osp.dirname(path)) or __import__('os').makedirs(
                osp.dirname(path))
            Image.fromarray(arr).save(path)
    return root


#: PackSegInputs' default meta keys plus ``sample_idx`` (seeds the draws
#: by dataset index, as the hook did before it became wrapper + metric).
META_KEYS_WITH_INDEX = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                        'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                        'reduce_zero_label', 'sample_idx')
#: Options of ShiftConsistencyHook that belong to the metric.
METRIC_OPTIONS = ('boundary_width', 'single_class_threshold', 'ignore_index')


def dataset_cfg(root, pack_index=False):
    pack = dict(type='PackSegInputs')
    if pack_index:
        pack['meta_keys'] = META_KEYS_WITH_INDEX
    return dict(
        type='BaseSegDataset',
        data_root=str(root),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        img_suffix='.png',
        seg_map_suffix='.png',
        metainfo=dict(
            classes=('a', 'b', 'c'),
            palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0]]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'), pack
        ])


def runner_cfg(root, work_dir, model, batch_size=2, hook=None, via='hook',
               pack_index=False, **kwargs):
    """Keyword arguments of a real mmengine Runner that only tests.

    Args:
        model (nn.Module): A built segmentor (see :func:`build_model`).
        hook (dict, optional): Shift-consistency options (those of
            ShiftConsistencyHook).
        via (str): ``'hook'``: ShiftConsistencyHook in custom_hooks;
            ``'metric'``: the segmentor wrapped in ShiftTTAModel and
            ShiftConsistencyMetric beside IoUMetric, no hook.
        pack_index (bool): Pack ``sample_idx`` (draws seeded by index).
    """
    options = dict(hook or {})
    evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    custom_hooks = [dict(type='ShiftConsistencyHook', **options)]
    if via == 'metric':
        metric = dict(type='ShiftConsistencyMetric')
        for key in METRIC_OPTIONS:
            if key in options:
                metric[key] = options.pop(key)
        model = MODELS.build(
            dict(type='ShiftTTAModel', module=model, **options))
        evaluator = [evaluator, metric]
        custom_hooks = []
    cfg = dict(
        model=model,
        work_dir=str(work_dir),
        test_dataloader=dict(
            batch_size=batch_size,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dataset_cfg(root, pack_index)),
        test_evaluator=evaluator,
        test_cfg=dict(type='TestLoop'),
        custom_hooks=custom_hooks,
        default_scope='mmseg',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING')
    cfg.update(kwargs)
    return cfg
