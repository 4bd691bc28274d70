_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb4-40k_voc12aug-512x512.py',
    '../_base_/models/aps-release.py'
]
model = _base_.aps_model
