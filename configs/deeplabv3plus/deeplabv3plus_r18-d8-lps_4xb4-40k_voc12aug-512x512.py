_base_ = [
    '../_base_/deeplabv3plus/deeplabv3plus_r18-d8_4xb4-40k_voc12aug-512x512.py',
    '../_base_/models/lps.py'
]
model = _base_.lps_model
custom_hooks = _base_.lps_hooks
