# LPS as learnable_polyphase_sampling builds it ('lpf3', docs/fidelity.md):
# its logits net with a hidden width per stage, a 3-tap low-pass except in
# the stem's first downsampler, odd maps padded with zeros at the
# bottom/right, the stem's max kept at stride 1, and its segmentation
# temperature preset (epoch-based: on 20k-40k iteration schedules it stops
# near 0.5; see docs/fidelity.md).
_base_ = ['./lps.py']
lps_model = dict(
    backbone=dict(
        downsample_cfg=dict(
            scorer='lps',
            hidden_channels=(64, 128, 256, 512),
            filter_size=3,
            odd_padding='zero-bottom-right'),
        keep_stem_max=True,
        stem_down_cfg=dict(filter_size=1)))
lps_hooks = [dict(type='LPSTemperatureHook', preset='lps-seg')]
