"""Every config under configs/ builds and takes one real training step.

Configs that differ only in schedule (20k/40k, 40k/80k) build the same
model: each is loaded and its model compared, the step runs once per model.
VOC and Cityscapes live in two test files so the two xdist workers share
the work (--dist loadfile).
"""
import copy
import glob
import os.path as osp

import pytest

from conftest import model_cfg_for_test, one_train_step  # noqa: I100
from tips_mmseg.models.segmentors import DEFAULT_TIPS_CFG

ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                'configs')
ALL = sorted(glob.glob(osp.join(ROOT, '**', '*.py'), recursive=True))
#: The configs one trains (not the fragments under configs/_base_/ nor a
#: folder's own _base_*.py).
CONFIGS = [c for c in ALL if not osp.basename(c).startswith('_')
           and '_base_' not in osp.relpath(c, ROOT).split(osp.sep)]
_STEPPED = {}


def configs_of(dataset):
    """The DeepLabV3+ configs of a dataset (SegFormer and toy configs have
    their own test files)."""
    return [c for c in CONFIGS if dataset in osp.basename(c)
            and osp.basename(osp.dirname(c)) == 'deeplabv3plus']


def check_config(path, load_config):
    cfg = load_config(path)
    assert cfg.custom_imports['imports'] == ['tips_mmseg']
    model_cfg = model_cfg_for_test(cfg)
    name = osp.basename(path)
    if '-tips-release' in name and not name.startswith('deeplabv3plus_r18'):
        # Deeper release models differ from the 'tips' ones only in the two
        # options checked here; the R18 ones take their own step (release
        # pairing, undetached target end to end), these share the 'tips'
        # config's step, which keeps the suite fast.
        tips_path = path.replace('-tips-release', '-tips')
        tips_model = model_cfg_for_test(load_config(tips_path))
        release_model = copy.deepcopy(tips_model)
        release_model['tips_cfg']['undo_detach'] = False
        release_model['backbone']['downsample_cfg']['tau_pairing'] = 'release'
        assert model_cfg == release_model, name
        model_cfg = tips_model
    key = repr(model_cfg)
    if key not in _STEPPED:
        _STEPPED[key] = one_train_step(model_cfg)[1]
    log_vars = _STEPPED[key]
    is_tips = '-tips' in name
    assert ('loss_fm' in log_vars) == is_tips, (name, sorted(log_vars))
    assert ('loss_undo' in log_vars) == is_tips, (name, sorted(log_vars))
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert ('TIPSProgressHook' in hooks) == is_tips
    assert ('LPSTemperatureHook' in hooks) == ('-lps' in name)
    if is_tips:
        check_tips_protocol(cfg, release='-tips-release' in name)
    for variant, check in BASELINE_RELEASE_PROTOCOLS.items():
        if f'-{variant}-release_' in name:
            check(cfg)
    return cfg


def check_blurpool_release(cfg):
    """antialiased-cnns: 4-tap filter, max kept at stride 1 in the stem."""
    backbone = cfg.model.backbone
    assert backbone.downsample_cfg == dict(type='BlurPool', filter_size=4)
    assert backbone.keep_stem_max


def check_aps_release(cfg):
    """truly_shift_invariant_cnns: low-pass before the choice, circular
    padding (convs and odd maps, bottom/right), MaxPool(2, s1) + APS."""
    backbone = cfg.model.backbone
    assert backbone.downsample_cfg == dict(
        type='APS', filter_size=3, odd_padding='circular-bottom-right')
    assert backbone.keep_stem_max and backbone.circular_padding


def check_lps_release(cfg):
    """learnable_polyphase_sampling ('lpf3'): its logits net with hidden
    width by stage, low-pass except in the first stem layer, zero padding
    at the bottom/right, its segmentation temperature schedule."""
    backbone = cfg.model.backbone
    assert backbone.downsample_cfg == dict(
        type='LPS', scorer='lps', hidden_channels=(64, 128, 256, 512),
        filter_size=3, odd_padding='zero-bottom-right')
    assert backbone.keep_stem_max
    assert backbone.stem_down_cfg == dict(filter_size=1)
    hooks = [h for h in cfg.custom_hooks if h.type == 'LPSTemperatureHook']
    assert [h.get('preset') for h in hooks] == ['lps-seg']


BASELINE_RELEASE_PROTOCOLS = dict(blurpool=check_blurpool_release,
                                  aps=check_aps_release, lps=check_lps_release)


def check_tips_protocol(cfg, release):
    """'tips' configs write out our defaults; 'tips-release' ones train as
    the release's code runs: target not detached, the release's quadrant
    pairing, gradient norm clipped at 1, no weight decay on TIPS's
    parameters (test_config_overrides.py builds that optimizer)."""
    want = dict(DEFAULT_TIPS_CFG, undo_detach=not release)
    assert cfg.model.tips_cfg.to_dict() == want
    assert cfg.model.tips_cfg.undo_mode == 'circular'
    down = cfg.model.backbone.downsample_cfg
    assert down.get('tau_pairing', 'aligned') == (
        'release' if release else 'aligned')
    optim_wrapper = cfg.get('optim_wrapper', {})
    clip = optim_wrapper.get('clip_grad')
    assert clip == (dict(max_norm=1.0, norm_type=2) if release else None)
    custom_keys = optim_wrapper.get('paramwise_cfg', {}).get('custom_keys')
    tips_keys = {k: v for k, v in (custom_keys or {}).items()
                 if k in ('psi_conv', 'logit_scale')}
    assert tips_keys == (dict(psi_conv=dict(decay_mult=0.),
                              logit_scale=dict(decay_mult=0.))
                         if release else {})


def test_config_families_complete():
    names = [osp.basename(c) for c in configs_of('deeplabv3plus_r')]
    for depth in (18, 50, 101):
        for variant in ('vanilla', 'blurpool', 'aps', 'lps', 'tips',
                        'tips-release', 'blurpool-release', 'aps-release',
                        'lps-release'):
            for tail in ('20k_voc12aug', '40k_voc12aug',
                         '40k_cityscapes', '80k_cityscapes'):
                assert any(f'r{depth}-d8-{variant}_' in n and tail in n
                           for n in names), (depth, variant, tail)
        for variant in ('aps-circ-unpool', 'lps-circ-unpool'):
            assert any(f'r{depth}-d8-{variant}_' in n and 'voc12aug' in n
                       for n in names)


def test_every_config_has_its_test():
    # deeplabv3plus: VOC and Cityscapes tests here; segformer and toy: their
    # own test files. A new folder needs a test file of its own.
    folders = {osp.basename(osp.dirname(c)) for c in CONFIGS}
    assert folders == {'deeplabv3plus', 'segformer', 'toy'}
    deeplab = [c for c in CONFIGS
               if osp.basename(osp.dirname(c)) == 'deeplabv3plus']
    assert sorted(configs_of('voc12aug') + configs_of('cityscapes')) == \
        sorted(deeplab)


@pytest.mark.parametrize('path', configs_of('voc12aug'),
                         ids=osp.basename)
def test_voc_config_trains_one_step(path, load_config):
    cfg = check_config(path, load_config)
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.crop_size == (512, 512)
