"""Cityscapes configs: one training step each (VOC: see
test_deeplabv3plus_configs.py; two files so both xdist workers get work)."""
import os.path as osp

import pytest

from test_deeplabv3plus_configs import check_config, configs_of


@pytest.mark.parametrize('path', configs_of('cityscapes'),
                         ids=osp.basename)
def test_cityscapes_config_trains_one_step(path, load_config):
    cfg = check_config(path, load_config)
    assert cfg.model.decode_head.num_classes == 19
    assert cfg.crop_size == (512, 1024)
