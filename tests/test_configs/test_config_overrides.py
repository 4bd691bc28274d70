"""A config that inherits ours can override any field by dict merge, and
the release TIPS configs' optimizer spares TIPS's parameters from weight
decay."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from conftest import model_cfg_for_test  # noqa: I100
from test_deeplabv3plus_configs import ROOT
from tips_mmseg.models.layers import TIPS
from mmseg.registry import MODELS

VOC_R18 = osp.join(ROOT, 'deeplabv3plus',
                   'deeplabv3plus_r18-d8-{}_4xb4-20k_voc12aug-512x512.py')
TOY = osp.join(ROOT, 'toy', 'deeplabv3plus_r18-d8-{}_toy-64x64.py')


def child(tmp_path, base: str, body: str) -> Config:
    """Load a config that inherits ``base`` and adds ``body``."""
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = [{base!r}]\n{body}\n')
    return Config.fromfile(str(path))


@pytest.mark.parametrize('variant', ['vanilla', 'aps'])
def test_a_child_sets_the_downsampler_of_a_vanilla_or_other_config(
        variant, tmp_path):
    cfg = child(tmp_path, VOC_R18.format(variant),
                "model = dict(backbone=dict(downsample_cfg=dict("
                "type='BlurPool', filter_size=5)))")
    assert cfg.model.backbone.downsample_cfg == dict(type='BlurPool',
                                                     filter_size=5)
    # Everything else stays the parent's.
    parent = Config.fromfile(VOC_R18.format(variant))
    cfg.model.backbone.pop('downsample_cfg')
    parent.model.backbone.pop('downsample_cfg', None)
    assert cfg.model == parent.model
    assert cfg.train_dataloader == parent.train_dataloader


def test_a_child_of_the_toy_vanilla_config_builds_tips(tmp_path):
    cfg = child(tmp_path, TOY.format('vanilla'),
                "model = dict(backbone=dict(downsample_cfg=dict(type='TIPS')))")
    vanilla = MODELS.build(model_cfg_for_test(Config.fromfile(
        TOY.format('vanilla'))))
    tips = MODELS.build(model_cfg_for_test(cfg))
    assert not any(isinstance(m, TIPS) for m in vanilla.modules())
    assert sum(isinstance(m, TIPS) for m in tips.modules()) > 0


def test_a_child_wraps_the_toy_vanilla_segformer_in_tips(tmp_path):
    path = TOY.replace('deeplabv3plus_r18-d8', 'segformer_mit-b0')
    cfg = child(tmp_path, path.format('vanilla'),
                "model = dict(backbone=dict(_delete_=True, "
                "type='ShiftInvariantWrapper', downsample_cfg=dict(type='TIPS'),"
                " backbone={{_base_.model.backbone}}))")
    model = MODELS.build(model_cfg_for_test(cfg))
    strides = [m.stride for m in model.modules() if isinstance(m, TIPS)]
    assert strides == [4, 2, 2, 2]  # MiT's four patch embeddings


def test_a_child_overrides_tips_cfg_keys_and_removes_the_downsampler(
        tmp_path):
    cfg = child(tmp_path, VOC_R18.format('tips'),
                'model = dict(tips_cfg=dict(alpha=0.5), '
                'backbone=dict(downsample_cfg=None))')
    parent = Config.fromfile(VOC_R18.format('tips'))
    assert cfg.model.tips_cfg == dict(parent.model.tips_cfg, alpha=0.5)
    assert cfg.model.backbone.downsample_cfg is None
    assert cfg.custom_hooks == parent.custom_hooks


def test_a_child_overrides_the_release_optimizer(tmp_path):
    cfg = child(tmp_path, VOC_R18.format('tips-release'),
                "optim_wrapper = dict(clip_grad=None, paramwise_cfg=dict("
                "custom_keys={'psi_conv': dict(decay_mult=1.)}))")
    assert cfg.optim_wrapper.clip_grad is None
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert keys == dict(psi_conv=dict(decay_mult=1.),
                        logit_scale=dict(decay_mult=0.))


def weight_decay_by_parameter(cfg: Config):
    """Build the config's model (CPU-sized) and its optimizer through
    mmengine's optim wrapper constructor; name -> weight decay."""
    model = MODELS.build(model_cfg_for_test(cfg))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert len(decay) == len(names)
    return model, wrapper, decay


def test_release_tips_trains_tips_parameters_without_weight_decay():
    cfg = Config.fromfile(VOC_R18.format('tips-release'))
    mmseg_decay = cfg.optim_wrapper.optimizer.weight_decay
    assert mmseg_decay == 5e-4  # mmseg's VOC schedule
    model, wrapper, decay = weight_decay_by_parameter(cfg)
    tips = {n for n in decay if 'psi_conv' in n or 'logit_scale' in n}
    # psi's conv and tau's scale of every TIPS layer (D8: stem, max-pool,
    # layer2's main branch and shortcut).
    layers = [m for m in model.modules() if isinstance(m, TIPS)]
    assert len(layers) == 4
    assert len(tips) == 2 * len(layers)
    assert all(decay[n] == 0 for n in tips)
    assert all(decay[n] == mmseg_decay for n in set(decay) - tips)
    assert wrapper.clip_grad_kwargs == dict(max_norm=1.0, norm_type=2)


def test_our_tips_configs_keep_mmseg_weight_decay_everywhere():
    cfg = Config.fromfile(VOC_R18.format('tips'))
    _, _, decay = weight_decay_by_parameter(cfg)
    assert any('psi_conv' in n for n in decay)
    assert set(decay.values()) == {5e-4}
