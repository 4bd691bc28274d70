"""configs/toy: one CPU-sized config per downsampler, each trains a step."""
import os.path as osp

import pytest

from test_deeplabv3plus_configs import ROOT, check_config

VARIANTS = ['vanilla', 'blurpool', 'aps', 'lps', 'tips']


@pytest.mark.parametrize('variant', VARIANTS)
def test_toy_config_trains_one_step(variant, load_config):
    path = osp.join(ROOT, 'toy', f'deeplabv3plus_r18-d8-{variant}_toy-64x64.py')
    cfg = check_config(path, load_config)
    assert cfg.model.decode_head.num_classes == 5
    assert cfg.train_dataloader.dataset.type == 'ToyShapesDataset'
    assert cfg.train_dataloader.dataset.data_root == 'data/toy'
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.model.backbone.type == 'ShiftInvariantResNetV1c'
