# TIPS trained as the official release's code runs (docs/fidelity.md): the
# L_undo target is not detached (its detach() result is discarded), the
# release's quadrant-to-component pairing, the gradient norm clipped at 1 in
# every step. A config also merges
#     optim_wrapper = _base_.tips_optim_wrapper
_base_ = ['./tips.py']
tips_model = dict(
    tips_cfg=dict(undo_detach=False),
    backbone=dict(downsample_cfg=dict(tau_pairing='release')))
tips_optim_wrapper = dict(
    # mmseg's schedules set clip_grad=None: a dict replaces it (_delete_).
    clip_grad=dict(_delete_=True, max_norm=1.0, norm_type=2))
