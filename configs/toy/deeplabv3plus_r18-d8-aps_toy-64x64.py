_base_ = ['./_base_toy.py']
model = dict(backbone=dict(downsample_cfg=dict(type='APS')))
