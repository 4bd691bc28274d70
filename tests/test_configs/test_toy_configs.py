"""configs/toy: one CPU-sized config per downsampler, each trains a step."""
import os.path as osp

import pytest

from test_deeplabv3plus_configs import ROOT, check_config
from tests.helpers import load_tool

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


@pytest.mark.parametrize('variant', ['vanilla', 'tips'])
def test_toy_segformer_config_trains_one_step(variant, load_config):
    path = osp.join(ROOT, 'toy', f'segformer_mit-b0-{variant}_toy-64x64.py')
    cfg = check_config(path, load_config)
    assert cfg.model.decode_head.type == 'SegformerHead'
    assert cfg.model.decode_head.num_classes == 5
    if variant == 'vanilla':  # mmseg's MiT as it is, unwrapped
        assert cfg.model.backbone.type == 'MixVisionTransformer'
    else:
        assert cfg.model.backbone.type == 'ShiftInvariantWrapper'
        assert cfg.model.backbone.backbone.type == 'MixVisionTransformer'
        assert cfg.model.backbone.downsample_cfg.type == 'TIPS'
    assert cfg.train_dataloader.dataset.type == 'ToyShapesDataset'


def test_toy_recipe_schedule_and_data_layout(load_config):
    from tips_mmseg.datasets.toy_shapes import TOY_LAYOUT
    cfg = load_config(osp.join(ROOT, 'toy', '_base_toy.py'))
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    warmup, poly = cfg.param_scheduler
    # The warm-up hands over to the poly decay, which ends with training.
    assert warmup.type == 'LinearLR' and warmup.begin == 0
    assert poly.type == 'PolyLR' and poly.begin == warmup.end
    assert poly.end == cfg.train_cfg.max_iters
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        dataset = loader.dataset
        assert dataset.data_prefix.img_path == TOY_LAYOUT['img_path']
        assert dataset.data_prefix.seg_map_path == TOY_LAYOUT['seg_map_path']
        assert dataset.img_suffix == '.png'  # lossless
    assert cfg.train_dataloader.dataset.ann_file == TOY_LAYOUT[
        'split'].format('train')
    assert cfg.val_dataloader.dataset.ann_file == TOY_LAYOUT['split'].format(
        'val')
    hook, = [h for h in cfg.custom_hooks
             if h['type'] == 'ShiftConsistencyHook']
    assert hook['max_shift'] < min(cfg.crop_size)


def test_demo_sizes_the_config_and_keeps_the_schedule_proportions():
    demo = load_tool('demo')
    args = demo.parse_args(['--iters', '150', '--max-shift', '3',
                            '--data-root', 'elsewhere', '--work-dir', 'wd'])
    cfg = demo.toy_config('tips', 2, args)
    base = demo.Config.fromfile(demo.TOY_CONFIG.format('tips'))
    ratio = 150 / base.train_cfg.max_iters
    warmup, poly = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == 150 and poly.end == 150
    assert warmup.end == poly.begin == round(base.param_scheduler[0].end *
                                             ratio)
    assert cfg.train_cfg.val_begin > 150  # no val run, only the test
    assert cfg.randomness.seed == 2 and cfg.work_dir == 'wd/tips_seed2'
    assert cfg.log_level == 'WARNING'  # no config dump on the console
    assert cfg.test_dataloader.dataset.data_root == 'elsewhere'
    hook, = [h for h in cfg.custom_hooks
             if h['type'] == 'ShiftConsistencyHook']
    assert hook['max_shift'] == 3
    assert [h['type'] for h in cfg.custom_hooks][0] == 'TIPSProgressHook'
    with pytest.raises(ValueError, match='Unknown variant'):
        demo.toy_config('tipz', 0, args)
