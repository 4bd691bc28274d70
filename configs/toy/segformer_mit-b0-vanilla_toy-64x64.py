_base_ = ['./_base_segformer_toy.py']
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
# The MiT of _base_segformer_toy.py unwrapped: mmseg's network as it is. A
# child config overrides any of its fields, or wraps it again:
#     model = dict(backbone=dict(_delete_=True, type='ShiftInvariantWrapper',
#         downsample_cfg=dict(type='TIPS'), backbone={{_base_.model.backbone}}))
model = dict(backbone=dict(_delete_=True, **_base_.model.backbone.backbone))
