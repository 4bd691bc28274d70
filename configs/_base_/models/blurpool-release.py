# BlurPool as antialiased-cnns' release builds it (docs/fidelity.md): 4 taps,
# the stem's max kept at stride 1 before its BlurPool (MaxBlurPool).
_base_ = ['./blurpool.py']
blurpool_model = dict(
    backbone=dict(downsample_cfg=dict(filter_size=4), keep_stem_max=True))
