_base_ = ['./_base_segformer_toy.py']
model = dict(backbone=dict(downsample_cfg=None))
