"""A TIPS toy config with SyncBN for the distributed tests."""
import os.path as osp

from tests.helpers import REPO_ROOT
from tips_mmseg.datasets import write_toy_dataset

TIPS_TOY = osp.join(REPO_ROOT, 'configs', 'toy',
                    'deeplabv3plus_r18-d8-tips_toy-64x64.py')
MAX_ITERS = 3

# The TIPS toy config with mmseg's SyncBN, on 32x32 images, a few iterations,
# evaluated with the shift hook. momentum=None (cumulative BN statistics) and
# a wide classifier init keep a 3-iteration model from predicting one class
# everywhere, so the compared metrics are not trivially equal.
TEST_CONFIG = """
_base_ = [{base!r}]
norm_cfg = dict(type='SyncBN', requires_grad=True, momentum=None)
model = dict(
    data_preprocessor=dict(size=(32, 32)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(
        norm_cfg=norm_cfg,
        init_cfg=dict(type='Normal', std=1.0, override=dict(name='conv_seg'))),
    auxiliary_head=dict(norm_cfg=norm_cfg))
_data = dict(dataset=dict(data_root={root!r}))
train_dataloader = dict(batch_size=2, **_data)
val_dataloader = dict(batch_size=2, **_data)
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='TIPSProgressHook'),
    dict(type='ShiftConsistencyHook', num_shifts=2, max_shift=4)
]
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end={iters},
         by_epoch=False)
]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval={iters}))
"""


def write_syncbn_toy_config(root, max_iters=MAX_ITERS):
    """Write tiny toy data (8 train, 4 val 32x32 images) and the config under
    ``root`` (a pathlib.Path); return the config's path."""
    write_toy_dataset(str(root / 'toy'), num_train=8, num_val=4, size=32)
    config = root / 'tips_syncbn_toy.py'
    config.write_text(TEST_CONFIG.format(
        base=TIPS_TOY, root=str(root / 'toy'), iters=max_iters))
    return config
