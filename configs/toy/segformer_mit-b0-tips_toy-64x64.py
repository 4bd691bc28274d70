_base_ = [
    './_base_segformer_toy.py', '../_base_/models/tips-segmentor.py'
]
# A TIPS layer in each of MiT's patch embeddings (stride 4, 2, 2, 2); the
# regularizers with their defaults (see docs/method.md). On this toy set
# TIPS still trails vanilla SegFormer in mIoU (docs/zoo.md has the runs).
model = dict(
    type='TIPSEncoderDecoder',
    tips_cfg=dict(
        lambda_fm=1.0,
        alpha=0.35,
        undo_start=0.21,
        undo_mode='circular',
        undo_range='input',
        undo_shift=None,
        undo_detach=True,
        fm_reduction='channels',
        undo_reduction='stages'),
    # After each patch embedding's LayerNorm: TIPS's psi and L_undo see
    # normalised tokens, whose scale the network cannot inflate (before
    # the norm L_undo grew 1.2 -> 11 and the model collapsed; docs/zoo.md).
    backbone=dict(downsample_cfg=dict(type='TIPS'),
                  patch_embed_placement='norm'))
custom_hooks = [
    dict(type='TIPSProgressHook'),
    dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)
]
