# mmseg's config as it is, with tips-mmseg loaded (shift consistency in
# tools/test.py; mmseg's released checkpoints load).
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py']
custom_imports = dict(imports=['tips_mmseg'], allow_failed_imports=False)
