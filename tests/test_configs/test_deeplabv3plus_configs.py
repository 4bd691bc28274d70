"""Every config under configs/ builds and takes one real training step.

Configs that differ only in schedule (20k/40k, 40k/80k) build the same
model: each is loaded and its model compared, the step runs once per model.
VOC and Cityscapes live in two test files so the two xdist workers share
the work (--dist loadfile).
"""
import glob
import os.path as osp

import pytest

from conftest import model_cfg_for_test, one_train_step  # noqa: I100

ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'configs')
ALL = sorted(glob.glob(osp.join(ROOT, '**', '*.py'), recursive=True))
CONFIGS = [c for c in ALL if not osp.basename(c).startswith('_')]
_STEPPED = {}


def configs_of(dataset):
    return [c for c in CONFIGS if dataset in osp.basename(c)]


def check_config(path, load_config):
    cfg = load_config(path)
    assert cfg.custom_imports['imports'] == ['tips_mmseg']
    model_cfg = model_cfg_for_test(cfg)
    key = repr(model_cfg)
    if key not in _STEPPED:
        _STEPPED[key] = one_train_step(model_cfg)[1]
    log_vars = _STEPPED[key]
    name = osp.basename(path)
    is_tips = '-tips' in name
    assert ('loss_fm' in log_vars) == is_tips, (name, sorted(log_vars))
    assert ('loss_undo' in log_vars) == is_tips, (name, sorted(log_vars))
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert ('TIPSProgressHook' in hooks) == is_tips
    assert ('LPSTemperatureHook' in hooks) == ('-lps' in name)
    return cfg


def test_config_families_complete():
    names = [osp.basename(c) for c in configs_of('deeplabv3plus_r')]
    for depth in (18, 50, 101):
        for variant in ('vanilla', 'blurpool', 'aps', 'lps', 'tips'):
            for tail in ('20k_voc12aug', '40k_voc12aug',
                         '40k_cityscapes', '80k_cityscapes'):
                assert any(f'r{depth}-d8-{variant}_' in n and tail in n
                           for n in names), (depth, variant, tail)
        for variant in ('aps-circ-unpool', 'lps-circ-unpool'):
            assert any(f'r{depth}-d8-{variant}_' in n and 'voc12aug' in n
                       for n in names)


@pytest.mark.parametrize('path', configs_of('voc12aug'),
                         ids=osp.basename)
def test_voc_config_trains_one_step(path, load_config):
    cfg = check_config(path, load_config)
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.crop_size == (512, 512)
