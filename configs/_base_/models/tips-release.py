# TIPS trained as the official release's code runs (docs/fidelity.md): the
# L_undo target is not detached (its detach() result is discarded), the
# release's quadrant-to-component pairing, the gradient norm clipped at 1 in
# every step and no weight decay on the TIPS parameters (psi's depthwise conv
# and tau's per-channel scale). A config also merges
#     optim_wrapper = _base_.tips_optim_wrapper
_base_ = ['./tips.py']
tips_model = dict(
    tips_cfg=dict(undo_detach=False),
    backbone=dict(downsample_cfg=dict(tau_pairing='release')))
tips_optim_wrapper = dict(
    # mmseg's schedules set clip_grad=None: a dict replaces it (_delete_).
    clip_grad=dict(_delete_=True, max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'psi_conv': dict(decay_mult=0.),
            'logit_scale': dict(decay_mult=0.)
        }))
