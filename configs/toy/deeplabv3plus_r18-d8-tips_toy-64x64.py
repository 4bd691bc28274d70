_base_ = ['./_base_toy.py']
model = dict(
    type='TIPSEncoderDecoder',
    # The defaults, written out (the release's training where deliberate:
    # circular shift, range H/4 of the network input, L_undo from 0.21 of
    # training, release aggregation over layers; see docs/fidelity.md).
    tips_cfg=dict(
        lambda_fm=1.0,
        alpha=0.35,
        eps=0.21,
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
