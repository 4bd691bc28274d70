_base_ = [
    '../_base_/deeplabv3plus/deeplabv3plus_r18-d8_4xb4-20k_voc12aug-512x512.py',
    '../_base_/models/tips-release.py'
]
model = _base_.tips_model
custom_hooks = _base_.tips_hooks
optim_wrapper = _base_.tips_optim_wrapper
