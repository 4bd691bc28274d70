_base_ = [
    './_base_segformer_toy.py', '../_base_/models/tips-segmentor.py'
]
# A TIPS layer in each of MiT's patch embeddings (stride 4, 2, 2, 2), after
# the embedding's LayerNorm, so that psi and L_undo see normalised tokens
# (before the norm L_undo grew 1.2 -> 11 and the model collapsed); the
# regularizers at their defaults (../_base_/models/tips-segmentor.py). On
# this toy set TIPS still trails vanilla SegFormer in mIoU (docs/zoo.md).
model = dict(
    _base_.tips_model,
    backbone=dict(
        downsample_cfg=dict(type='TIPS'), patch_embed_placement='norm'))
custom_hooks = _base_.tips_hooks + _base_.custom_hooks
