"""configs/segformer: mmseg's SegFormer (MiT-B0, MiT-B2) vanilla and with
TIPS in MiT's patch embeddings; each builds and takes a training step."""
import glob
import os.path as osp

import pytest

from conftest import model_cfg_for_test  # noqa: I100
from test_deeplabv3plus_configs import ROOT, check_config
from tips_mmseg.models.layers import TIPS
from mmseg.registry import MODELS

SEGFORMER = sorted(glob.glob(osp.join(ROOT, 'segformer', '*.py')))
DATASETS = {  # name tail -> (classes, crop, mmseg schedule)
    'cityscapes-1024x1024': (19, (1024, 1024), '8xb1-160k'),
    'ade20k-512x512': (150, (512, 512), '8xb2-160k'),
}


def test_segformer_family_complete():
    names = {osp.basename(p) for p in SEGFORMER}
    want = {f'segformer_{mit}-{variant}_{sched}_{dataset}.py'
            for mit in ('mit-b0', 'mit-b2') for variant in ('vanilla', 'tips')
            for dataset, (_, _, sched) in DATASETS.items()}
    assert names == want


@pytest.mark.parametrize('path', SEGFORMER, ids=osp.basename)
def test_segformer_config_trains_one_step(path, load_config):
    cfg = check_config(path, load_config)
    name = osp.basename(path)
    dataset = next(d for d in DATASETS if name.endswith(f'{d}.py'))
    classes, crop, _ = DATASETS[dataset]
    assert cfg.model.decode_head.num_classes == classes
    assert cfg.crop_size == crop
    base = load_config(path.replace('-tips_', '-vanilla_'))
    if '-tips_' not in name:
        assert cfg.model.backbone.type == 'MixVisionTransformer'
        return
    # The TIPS config wraps the vanilla one's MiT unchanged, ImageNet
    # weights included, and keeps its head, data and schedule.
    assert cfg.model.type == 'TIPSEncoderDecoder'
    assert cfg.model.backbone.type == 'ShiftInvariantWrapper'
    assert cfg.model.backbone.backbone == base.model.backbone
    assert cfg.model.backbone.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.decode_head == base.model.decode_head
    assert cfg.train_dataloader == base.train_dataloader
    assert cfg.param_scheduler == base.param_scheduler
    model = MODELS.build(model_cfg_for_test(cfg))
    strides = [m.stride for m in model.modules() if isinstance(m, TIPS)]
    assert strides == [4, 2, 2, 2]
