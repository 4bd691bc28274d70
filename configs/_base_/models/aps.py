# APS (the polyphase component of largest norm) in every stride-2 step of a
# ResNetV1c, without a low-pass, as the TIPS comparison runs it. A config
# merges it with `model = _base_.aps_model`.
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
aps_model = dict(
    backbone=dict(
        type='ShiftInvariantResNetV1c', downsample_cfg=dict(type='APS')))
