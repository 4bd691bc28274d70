_base_ = [
    '../_base_/deeplabv3plus/deeplabv3plus_r18-d8_4xb2-40k_cityscapes-512x1024.py',
    '../_base_/models/aps.py'
]
model = _base_.aps_model
