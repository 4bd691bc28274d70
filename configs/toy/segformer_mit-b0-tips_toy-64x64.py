_base_ = [
    './_base_segformer_toy.py', '../_base_/models/tips-segmentor.py'
]
# A TIPS layer in each of MiT's patch embeddings (stride 4, 2, 2, 2); the
# regularizers with their defaults (see docs/method.md).
model = dict(
    type='TIPSEncoderDecoder',
    tips_cfg=dict(
        lambda_fm=1.0,
        alpha=0.35,
        undo_start=0.21,
        undo_mode='circular',
        undo_range='input',
        undo_shift=None,
        undo_detach=True,
        fm_reduction='channels',
        undo_reduction='stages'),
    backbone=dict(downsample_cfg=dict(type='TIPS')))
custom_hooks = [
    dict(type='TIPSProgressHook'),
    dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)
]
