# APS as truly_shift_invariant_cnns builds it (docs/fidelity.md): a 3-tap
# low-pass before the choice, circular padding (convs and odd maps at the
# bottom/right), the stem's max kept at stride 1 before its APS.
_base_ = ['./aps.py']
aps_model = dict(
    backbone=dict(
        downsample_cfg=dict(filter_size=3, odd_padding='circular-bottom-right'),
        keep_stem_max=True,
        circular_padding=True))
