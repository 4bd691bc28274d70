_base_ = ['./_base_toy.py']
model = dict(
    type='TIPSEncoderDecoder',
    tips_cfg=dict(lambda_fm=1.0, alpha=0.35, eps=0.4, undo_shift=None,
                  undo_mode='standard'),
    backbone=dict(downsample_cfg=dict(type='TIPS')))
custom_hooks = [
    dict(type='TIPSProgressHook'),
    dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)
]
