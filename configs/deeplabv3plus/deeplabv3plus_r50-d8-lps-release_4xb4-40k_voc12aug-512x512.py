_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512.py',
    '../_base_/models/lps-release.py'
]
model = _base_.lps_model
custom_hooks = _base_.lps_hooks
