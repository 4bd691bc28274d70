_base_ = ['./_base_toy.py']
model = dict(backbone=dict(downsample_cfg=dict(type='LPS')))
custom_hooks = [
    dict(type='LPSTemperatureHook', start=1.0, end=0.1, by_epoch=False),
    dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)
]
