# mmseg's config as it is, with tips-mmseg loaded (shift consistency in
# tools/test.py; mmseg's released checkpoints load).
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
