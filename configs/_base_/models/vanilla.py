# Plain strided subsampling in a ShiftInvariantResNetV1c: the same network
# as mmseg's ResNetV1c (same parameter names, mmseg's ImageNet weights load).
# No downsample_cfg is written: the backbone's default (None) applies, so a
# config inheriting this one can set any, e.g.
#     model = dict(backbone=dict(downsample_cfg=dict(type='BlurPool')))
# A config merges it with `model = _base_.vanilla_model`.
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
vanilla_model = dict(backbone=dict(type='ShiftInvariantResNetV1c'))
