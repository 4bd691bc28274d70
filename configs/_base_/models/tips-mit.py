# TIPS in each of MiT's four overlapping patch embeddings (stride 4, 2, 2, 2),
# after the embedding's norm, through ShiftInvariantWrapper, trained by
# TIPSEncoderDecoder with the regularizers of ./tips-segmentor.py. The attention's key/value reductions
# (kernel = stride) stay strided. A config wraps its base config's MiT:
#     model = dict(_base_.tips_model, backbone=dict(
#         _base_.tips_model.backbone, backbone={{_base_.model.backbone}}))
# (mmseg's SegFormer configs set no custom_hooks: this one sets them.)
_base_ = ['./tips-segmentor.py']
tips_model = dict(
    backbone=dict(
        _delete_=True,
        type='ShiftInvariantWrapper',
        downsample_cfg=dict(type='TIPS'),
        # after each patch embedding's LayerNorm (docs/zoo.md)
        patch_embed_placement='norm'))
custom_hooks = _base_.tips_hooks
