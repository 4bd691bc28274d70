# mmseg has no R18-D8 config for this recipe: its R50-D8 one with the R18
# model of ../models/deeplabv3plus_r18-d8.py (mmseg's own R18 changes).
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    '../models/deeplabv3plus_r18-d8.py'
]
model = _base_.r18_model
