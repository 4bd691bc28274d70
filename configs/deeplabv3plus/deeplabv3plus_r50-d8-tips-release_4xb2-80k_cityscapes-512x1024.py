_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/models/tips-release.py'
]
model = _base_.tips_model
custom_hooks = _base_.tips_hooks
optim_wrapper = _base_.tips_optim_wrapper
