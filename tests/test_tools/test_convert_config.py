"""tools/convert_config.py: stock mmseg configs made shift invariant.

The round trips build real mmseg models from the installed config zoo at
64 x 64 on the CPU, load the original model's state dict into the
converted one (every original key must land; only the added downsamplers'
parameters may be missing) and take one SGD step.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import tips_mmseg  # noqa: F401
from tips_mmseg.apis.convert import (ConversionError, convert_config,
                                     downsampler_state_keys, load_config,
                                     load_vanilla_state_dict, parse_options)
from tips_mmseg.apis.zoo_check import (_build, round_trip, small_model_cfg,
                                       train_step)
from tips_mmseg.models import TIPS
from tests.helpers import REPO_ROOT, load_tool

PSP = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'

# One config per kind of backbone the issue asks for.
FAMILIES = {
    'pspnet-resnet': (PSP, 4),
    'hrnet': ('mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py', 38),
    'mobilenet_v2': ('mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb2-'
                     '80k_cityscapes-512x1024.py', 3),
    'segformer-mit': ('mmseg::segformer/segformer_mit-b0_8xb1-160k_'
                      'cityscapes-1024x1024.py', 4),
    'bisenetv1': ('mmseg::bisenetv1/bisenetv1_r18-d32-in1k-pre_4xb4-160k_'
                  'cityscapes-1024x1024.py', None),
    'fastscnn': ('mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-'
                 '512x1024.py', None),
}


@pytest.mark.parametrize('family', list(FAMILIES))
def test_round_trip(family):
    source, n_converted = FAMILIES[family]
    result = round_trip(source, 'TIPS', size=64)
    assert result['status'] == 'ok', result['reason']
    assert result['segmentor'] == 'TIPSEncoderDecoder'
    if n_converted is not None:
        assert len(result['converted']) == n_converted
    assert result['converted']
    # Only TIPS's own parameters (9C psi taps + C scales per layer) are
    # not in the vanilla state dict.
    assert result['missing_keys']
    assert all(k.endswith(('psi_conv.weight', 'logit_scale.weight'))
               for k in result['missing_keys'])
    assert len(result['missing_keys']) == 2 * len(result['converted'])
    assert torch.isfinite(torch.tensor(result['loss']))


def _converted_cfg(tmp_path, source=PSP, downsample='TIPS', **kwargs):
    text, report = convert_config(source, downsample, **kwargs)
    path = tmp_path / 'converted.py'
    path.write_text(text)
    return text, report, Config.fromfile(str(path))


def _unscoped(node):
    if isinstance(node, dict):
        return {k: _unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_unscoped(v) for v in node]
    return node


def test_written_config_inherits_and_keeps_the_backbone(tmp_path):
    text, report, cfg = _converted_cfg(tmp_path)
    original = load_config(PSP)
    assert f"_base_ = ['{PSP}']" in text
    assert len(text.splitlines()) < 30  # a short child, not a copy
    assert cfg.model.type == 'TIPSEncoderDecoder'
    assert cfg.model.tips_cfg.alpha == 0.35
    assert cfg.model.pretrained is None
    wrapper = cfg.model.backbone
    assert wrapper.type == 'ShiftInvariantWrapper'
    assert wrapper.downsample_cfg == dict(type='TIPS')
    # The base's backbone by reference, with the ImageNet weights that
    # EncoderDecoder would have handed to it.
    want = dict(original.model.backbone.to_dict(),
                pretrained=original.model.pretrained)
    assert wrapper.backbone.to_dict() == want
    assert cfg.custom_imports.imports == ['tips_mmseg']
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks == ['TIPSProgressHook', 'ShiftConsistencyHook']
    # Everything else is the original's (mmengine marks what comes from
    # an ``mmseg::`` base with its scope).
    assert _unscoped(cfg.train_dataloader) == _unscoped(
        original.train_dataloader)
    assert _unscoped(cfg.model.decode_head) == _unscoped(
        original.model.decode_head)
    assert report['converted'] == ['stem.0', 'maxpool', 'layer2.0.conv1',
                                   'layer2.0.downsample.0']


@pytest.mark.parametrize('downsample,hooks', [
    ('BlurPool', ['ShiftConsistencyHook']),
    ('APS', ['ShiftConsistencyHook']),
    ('LPS', ['LPSTemperatureHook', 'ShiftConsistencyHook']),
])
def test_other_downsamplers_keep_the_segmentor(tmp_path, downsample, hooks):
    text, _, cfg = _converted_cfg(tmp_path, downsample=downsample,
                                  downsample_options=dict(
                                      odd_padding='zero-bottom-right')
                                  if downsample != 'BlurPool' else None)
    assert cfg.model.type == 'EncoderDecoder'
    assert 'tips_cfg' not in cfg.model
    assert [h['type'] for h in cfg.custom_hooks] == hooks
    assert cfg.model.backbone.downsample_cfg.type == downsample
    if downsample != 'BlurPool':
        assert cfg.model.backbone.downsample_cfg.odd_padding == \
            'zero-bottom-right'


def test_wrapper_options_pass_through_and_file_source(tmp_path):
    source = osp.join(REPO_ROOT, 'configs', 'toy',
                      'deeplabv3plus_r18-d8-vanilla_toy-64x64.py')
    with pytest.raises(ConversionError, match='already a Shift'):
        convert_config(source, 'TIPS', check_build=False)
    seg = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
    text, report, cfg = _converted_cfg(
        tmp_path, seg, 'TIPS',
        wrapper_options=dict(patch_embed_placement='conv'),
        out_dir=str(tmp_path))
    assert cfg.model.backbone.patch_embed_placement == 'conv'
    # MiT's key/value reductions (kernel = stride) are left, with why.
    assert sorted(report['skip_reasons']) == [
        f'layers.{i}.1.{j}.attn.sr' for i in range(3) for j in range(2)]
    assert all(r.startswith('non-overlapping')
               for r in report['skip_reasons'].values())


@pytest.mark.parametrize('source,message', [
    ('mmseg::_base_/datasets/cityscapes.py', 'defines no model'),
    ('mmseg::vpd/vpd_sd_4xb8-25k_nyu-480x480.py',
     "segmentor 'DepthEstimator' is not one of"),
    ('mmseg::vit/vit_deit-s16_upernet_8xb2-80k_ade20k-512x512.py',
     'non_overlapping=convert'),
    ('mmseg::pspnet/no_such_config.py', 'Cannot read'),
])
def test_refusals_say_why(source, message):
    with pytest.raises(ConversionError, match=message):
        convert_config(source, 'TIPS')


def test_bad_downsampler_and_options():
    with pytest.raises(ConversionError, match='Unknown downsampler'):
        convert_config(PSP, 'MaxPool', check_build=False)
    assert parse_options(['tau_pairing=release', 'stride=2'], 'x') == dict(
        tau_pairing='release', stride=2)
    with pytest.raises(ConversionError, match='is not KEY=VALUE'):
        parse_options(['tau_pairing'], 'downsampler')


def test_vit_converts_with_non_overlapping_convert():
    result = round_trip(
        'mmseg::vit/vit_deit-s16_upernet_8xb2-80k_ade20k-512x512.py',
        'BlurPool', size=64,
        wrapper_options=dict(non_overlapping='convert'))
    assert result['status'] == 'ok', result['reason']
    assert result['converted'] == ['patch_embed.projection']


def test_vanilla_checkpoint_loads_and_unknown_keys_refused(tmp_path):
    _, _, cfg = _converted_cfg(tmp_path, check_build=False)
    vanilla = _build(small_model_cfg(load_config(PSP)))
    converted = _build(small_model_cfg(cfg))
    state = vanilla.state_dict()
    missing = load_vanilla_state_dict(converted, state)
    assert sorted(missing) == sorted(downsampler_state_keys(converted))
    # The original weights landed where they were.
    torch.testing.assert_close(
        converted.backbone.backbone.stem[0].weight,
        vanilla.backbone.stem[0].weight)
    assert isinstance(converted.backbone.backbone.stem[0].down, TIPS)
    state['backbone.not_a_layer.weight'] = torch.zeros(1)
    with pytest.raises(RuntimeError, match='unexpected keys'):
        load_vanilla_state_dict(converted, state)
    assert train_step(converted) > 0


def test_cli_writes_and_refuses(tmp_path, capsys):
    tool = load_tool('convert_config')
    out = tmp_path / 'my.py'
    assert tool.main([PSP, '--downsample', 'APS', '--out', str(out),
                      '--option', 'odd_padding=zero-bottom-right']) == 0
    assert Config.fromfile(str(out)).model.backbone.downsample_cfg == dict(
        type='APS', odd_padding='zero-bottom-right')
    assert 'converted: 4 strided modules' in capsys.readouterr().out
    assert tool.main(['mmseg::_base_/datasets/cityscapes.py', '--out',
                      str(tmp_path / 'x.py')]) == 2
    assert 'defines no model' in capsys.readouterr().err
    assert not (tmp_path / 'x.py').exists()
