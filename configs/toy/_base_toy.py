# CPU-sized DeepLabV3+ R18-D8 on the toy shapes (tools/make_toy_dataset.py
# writes data/toy: 384 train / 64 val lossless 64x64 PNG images, 5 classes).
# The recipe is sized for `make demo`: five variants trained from scratch in
# a few minutes on 2 CPU cores.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/default_runtime.py'
]
# The plugin (custom_imports) comes with the downsampler fragment a config
# adds (../_base_/models/*.py).

crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
# ResNet-18 at a quarter of its widths (16-128 channels instead of 64-512):
# ~4x cheaper where the cost is (the dilated 8x8 stages), ample for five
# shape classes, so the budget buys iterations instead of width.
base_channels = 16
# Bars and rings cover few pixels: weigh them up (and background down) so
# that they are learned within the short schedule. (Our loss: mmseg 1.2.2's
# CrossEntropyLoss with class_weight fails on ignored pixels.)
class_weight = [0.5, 1.0, 2.0, 2.0, 1.0]
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ShiftInvariantResNetV1c',  # downsample_cfg None: vanilla
        depth=18,
        stem_channels=base_channels,
        base_channels=base_channels,
        norm_cfg=norm_cfg),
    decode_head=dict(
        c1_in_channels=base_channels,  # stride-4 features: the fine detail
        c1_channels=24,
        in_channels=base_channels * 8,
        channels=64,
        dilations=(1, 2, 4, 6),  # ASPP rates for an 8x8 feature map
        num_classes=5,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True, type='WeightedCrossEntropyLoss', loss_weight=1.0,
            class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=base_channels * 4, channels=32, num_classes=5,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True, type='WeightedCrossEntropyLoss', loss_weight=0.4,
            class_weight=class_weight)))

dataset_type = 'ToyShapesDataset'
data_root = 'data/toy'
# CheckSegLabels: a label value outside the 5 classes (other than 255) or a
# label map of another size than its image stops the run naming the file,
# also under mmseg's own tools/train.py.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=5),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegLabels', num_classes=5),
    dict(type='PackSegInputs')
]
_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='images', seg_map_path='labels'),
    img_suffix='.png',
    seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **_dataset, ann_file='splits/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    train_dataloader,
    batch_size=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **_dataset, ann_file='splits/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# AdamW with a short warm-up, then poly decay: from scratch on 2 CPU cores
# the whole budget is a few hundred iterations.
optimizer = dict(type='AdamW', lr=4e-3, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
max_iters = 400
warmup_iters = 20
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=warmup_iters,
         by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=warmup_iters,
         end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters // 2, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # Resume/load our checkpoints on torch >= 2.6 (weights_only) without
    # trusting a file, resume past a damaged newest one, write atomically
    # (docs/compatibility.md). A default hook, so custom_hooks of the
    # variants leave it in place.
    checkpoint_safety=dict(type='CheckpointSafetyHook'))
randomness = dict(seed=0)
# Shift consistency beside mIoU in every val/test run; shifts up to 4 px
# (1/16 of the side, as 32 px at 512 px) cover every phase of the stride-8
# features (docs/evaluation.md).
custom_hooks = [dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)]
