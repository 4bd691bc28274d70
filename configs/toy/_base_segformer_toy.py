# SegFormer on the toy shapes (data, schedule and hooks of _base_toy.py):
# mmseg's MiT-B0 (four overlapping patch embeddings, 7x7 stride 4 then 3x3
# stride 2) with a narrow all-MLP head, from scratch. The backbone sits in
# ShiftInvariantWrapper; the variants set its downsample_cfg (None: vanilla).
_base_ = ['./_base_toy.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ShiftInvariantWrapper',
        backbone=dict(
            type='MixVisionTransformer',
            in_channels=3,
            embed_dims=32,
            num_stages=4,
            num_layers=[2, 2, 2, 2],
            num_heads=[1, 2, 5, 8],
            patch_sizes=[7, 3, 3, 3],
            sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3),
            mlp_ratio=4,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.1)),
    decode_head=dict(
        _delete_=True,
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=5,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='WeightedCrossEntropyLoss', loss_weight=1.0,
            class_weight=[0.5, 1.0, 2.0, 2.0, 1.0])),
    auxiliary_head=None)
# Transformers from scratch want a smaller step than the CNN recipe's.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
