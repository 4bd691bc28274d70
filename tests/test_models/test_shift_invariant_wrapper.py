"""ShiftInvariantWrapper converts any mmseg CNN backbone; shapes match."""
import copy

import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

import tips_mmseg  # noqa: F401
from tips_mmseg.models import TIPS, BlurPool

BN = dict(type='BN', requires_grad=True)
BACKBONES = {
    'resnet18': dict(type='ResNet', depth=18, norm_cfg=BN),
    'resnetv1c50-d8': dict(type='ResNetV1c', depth=50, norm_cfg=BN,
                           strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
    'mobilenetv2-d8': dict(type='MobileNetV2', norm_cfg=BN,
                           strides=(1, 2, 2, 1, 1, 1, 1),
                           dilations=(1, 1, 1, 2, 2, 4, 4),
                           out_indices=(1, 2, 4, 6)),
}
CONVERTED = {'resnet18': 8, 'resnetv1c50-d8': 4, 'mobilenetv2-d8': 3}


@pytest.mark.parametrize('down', ['TIPS', 'BlurPool', 'APS', 'LPS'])
@pytest.mark.parametrize('name', list(BACKBONES))
def test_shapes_match_original(name, down):
    cfg = BACKBONES[name]
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg=down))
    original = MODELS.build(cfg)
    assert len(wrapped.converted) == CONVERTED[name]
    assert not [m for m in wrapped.modules()
                if isinstance(m, (nn.Conv2d, nn.MaxPool2d))
                and getattr(m, 'stride', 1) not in (1, (1, 1))]
    x = torch.randn(2, 3, 45, 64)
    assert [o.shape for o in wrapped(x)] == [o.shape for o in original(x)]


def test_names_kept_and_maxpool_channels_found():
    cfg = BACKBONES['resnet18']
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg))
    original = MODELS.build(cfg).state_dict()
    result = wrapped.backbone.load_state_dict(original, strict=False)
    assert result.unexpected_keys == []
    assert all('.down.' in k or k.startswith('maxpool.down')
               for k in result.missing_keys)
    assert isinstance(wrapped.backbone.maxpool.down, TIPS)
    assert wrapped.backbone.maxpool.down.channels == 64


def test_deepcopy_and_no_conversion():
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper',
                                backbone=BACKBONES['resnet18'],
                                downsample_cfg='BlurPool'))
    twin = copy.deepcopy(wrapped)
    assert isinstance(twin.backbone.conv1.down, BlurPool)
    assert twin.backbone.conv1.down is not wrapped.backbone.conv1.down
    x = torch.randn(1, 3, 32, 32)
    wrapped.eval(), twin.eval()
    torch.testing.assert_close(twin(x)[-1], wrapped(x)[-1])
    plain = MODELS.build(dict(type='ShiftInvariantWrapper',
                              backbone=BACKBONES['resnet18'],
                              downsample_cfg=None))
    assert plain.converted == []


def test_unconvertible_layer_is_a_clear_error():
    cfg = dict(type='ResNet', depth=18, norm_cfg=BN)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg=None))
    from tips_mmseg.models.backbones.shift_invariant_wrapper import (
        NON_OVERLAPPING, _convert)
    conv = nn.Conv2d(3, 4, 4, stride=2)  # overlapping, but no padding
    with pytest.raises(ValueError, match='would not keep the map size'):
        _convert('odd', conv)
    with pytest.raises(ValueError, match='square strides only'):
        _convert('rect', nn.Conv2d(3, 4, 3, stride=(2, 1), padding=1))
    # kernel = stride, no padding (a ViT-style patch embedding): left as
    # it is, and said so (the wrapper lists it in `skipped`).
    assert _convert('patch', nn.Conv2d(3, 4, 2, stride=2)) == NON_OVERLAPPING
    assert wrapped is not None


# A tiny SegFormer encoder (MiT): overlapping patch embeddings 7x7 stride 4,
# then 3x3 stride 2; attention reduces keys/values with kernel = stride convs.
MIT = dict(type='MixVisionTransformer', in_channels=3, embed_dims=8,
           num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
           patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
           out_indices=(0, 1, 2, 3), mlp_ratio=1)


@pytest.mark.parametrize('size', [(64, 64), (61, 70)])
def test_mit_gets_tips_in_each_patch_embedding_with_shapes_kept(size):
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=MIT,
                                downsample_cfg=dict(type='TIPS')))
    embeds = [f'layers.{i}.0.projection' for i in range(4)]
    assert wrapped.converted == embeds
    strides = [wrapped.backbone.get_submodule(n).down.stride for n in embeds]
    assert strides == [4, 2, 2, 2]
    assert all(isinstance(wrapped.backbone.get_submodule(n).down, TIPS)
               for n in embeds)
    assert wrapped.skipped == [f'layers.{i}.1.0.attn.sr' for i in range(3)]
    original = MODELS.build(MIT)
    x = torch.randn(2, 3, *size)
    wrapped.eval(), original.eval()
    with torch.no_grad():
        got, want = wrapped(x), original(x)
    assert [o.shape for o in got] == [o.shape for o in want]
    # Every original parameter name is kept (pretrained MiT weights load).
    names = set(wrapped.backbone.state_dict())
    assert set(original.state_dict()) <= names


def test_hrnet_strided_convs_converted_shapes_kept():
    extra = dict(
        stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                    num_blocks=(1, ), num_channels=(8, )),
        stage2=dict(num_modules=1, num_branches=2, block='BASIC',
                    num_blocks=(1, 1), num_channels=(4, 8)),
        stage3=dict(num_modules=1, num_branches=3, block='BASIC',
                    num_blocks=(1, 1, 1), num_channels=(4, 8, 16)),
        stage4=dict(num_modules=1, num_branches=4, block='BASIC',
                    num_blocks=(1, 1, 1, 1), num_channels=(4, 8, 16, 32)))
    cfg = dict(type='HRNet', extra=extra, norm_cfg=BN)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg=dict(type='BlurPool')))
    assert wrapped.converted and not wrapped.skipped
    original = MODELS.build(cfg)
    x = torch.randn(2, 3, 64, 64)
    wrapped.eval(), original.eval()
    with torch.no_grad():
        got, want = wrapped(x), original(x)
    assert [o.shape for o in got] == [o.shape for o in want]


def test_timm_backbone_shapes_kept():
    pytest.importorskip('timm', reason='timm is an optional extra')
    cfg = dict(type='TIMMBackbone', model_name='resnet18', pretrained=False,
               features_only=True, out_indices=(1, 2, 3, 4))
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg=dict(type='APS')))
    assert wrapped.converted
    original = MODELS.build(cfg)
    x = torch.randn(2, 3, 64, 64)
    wrapped.eval(), original.eval()
    with torch.no_grad():
        assert [o.shape for o in wrapped(x)] == [
            o.shape for o in original(x)]
