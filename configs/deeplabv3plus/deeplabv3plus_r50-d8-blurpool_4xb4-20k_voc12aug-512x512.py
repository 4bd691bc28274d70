_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py',
    '../_base_/models/blurpool.py'
]
model = _base_.blurpool_model
