# TIPS in every stride-2 step of a ResNetV1c (docs/method.md), trained by
# TIPSEncoderDecoder with the regularizers of ./tips-segmentor.py.
_base_ = ['./tips-segmentor.py']
tips_model = dict(
    backbone=dict(
        type='ShiftInvariantResNetV1c', downsample_cfg=dict(type='TIPS')))
