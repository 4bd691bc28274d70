# TIPSEncoderDecoder with its regularizers (L_FM, L_undo) at our defaults,
# written out (the release's training where deliberate; docs/fidelity.md),
# and the hook that tells the regularizers the training progress (L_undo
# switches on at undo_start of training). A config merges these into its own keys:
#     model = _base_.tips_model
#     custom_hooks = _base_.tips_hooks
# Override fields in `model` (e.g. model=dict(tips_cfg=dict(alpha=0.5))),
# not in `tips_model`: a config reads `tips_model` once.
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
tips_model = dict(
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
        undo_reduction='stages'))
tips_hooks = [dict(type='TIPSProgressHook')]
