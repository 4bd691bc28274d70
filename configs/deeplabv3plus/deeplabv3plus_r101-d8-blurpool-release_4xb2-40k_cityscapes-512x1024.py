_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    '../_base_/models/blurpool-release.py'
]
model = _base_.blurpool_model
