# LPS (learned polyphase choice, Gumbel-softmax in training) in every
# stride-2 step of a ResNetV1c, and its temperature annealed 1.0 -> 0.1 over
# the run. A config merges these into its own keys:
#     model = _base_.lps_model
#     custom_hooks = _base_.lps_hooks
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
lps_model = dict(
    backbone=dict(
        type='ShiftInvariantResNetV1c', downsample_cfg=dict(type='LPS')))
lps_hooks = [
    dict(type='LPSTemperatureHook', start=1.0, end=0.1, by_epoch=False)
]
