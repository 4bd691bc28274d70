_base_ = [
    'mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/tips-mit.py'
]
# The base config's MiT as it is: its ImageNet weights load into it (only
# the TIPS layers are new).
model = dict(_base_.tips_model, backbone=dict(
    _base_.tips_model.backbone, backbone={{_base_.model.backbone}}))
