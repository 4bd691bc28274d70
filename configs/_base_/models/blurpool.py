# BlurPool (3-tap binomial low-pass, then subsampling) in every stride-2 step
# of a ResNetV1c, as the TIPS comparison runs it. A config merges it with
# `model = _base_.blurpool_model`.
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
blurpool_model = dict(
    backbone=dict(
        type='ShiftInvariantResNetV1c',
        downsample_cfg=dict(type='BlurPool', filter_size=3)))
