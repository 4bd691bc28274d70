_base_ = [
    '../_base_/deeplabv3plus/deeplabv3plus_r18-d8_4xb4-20k_voc12aug-512x512.py',
    '../_base_/models/aps.py'
]
model = _base_.aps_model
