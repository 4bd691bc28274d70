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
    from tips_mmseg.models.backbones.shift_invariant_wrapper import (
        NON_OVERLAPPING, _convert)
    with pytest.raises(ValueError, match='square strides only'):
        _convert('rect', nn.Conv2d(3, 4, 3, stride=(2, 1), padding=1))
    with pytest.raises(ValueError, match="padding 'same' is not numeric"):
        conv = nn.Conv2d(3, 4, 3, padding='same')
        conv.stride = (2, 2)
        _convert('same', conv)
    # kernel = stride, no padding (a ViT-style patch embedding): left as
    # it is by default, converted on request.
    assert _convert('patch', nn.Conv2d(3, 4, 2, stride=2)) == NON_OVERLAPPING
    assert _convert('patch', nn.Conv2d(3, 4, 2, stride=2),
                    'convert') == (4, 2)


@pytest.mark.parametrize('kernel,padding,size', [
    (4, 0, 9), (4, 0, 10), (3, 0, 7), (2, 0, 8), (3, 2, 7), (5, 1, 12)])
def test_any_padding_keeps_size_and_phase_zero(kernel, padding, size):
    """At stride 1 a conv gives L = H + 2p - (k - 1) rows; a stride-s
    downsampler gives ceil(L / s), the strided conv's size, and phase 0 of
    the stride-1 output is the strided conv's output, for any padding."""
    from tips_mmseg.models.backbones.shift_invariant_wrapper import _convert
    strided = nn.Conv2d(2, 3, kernel, stride=2, padding=padding)
    x = torch.randn(1, 2, size, size + 1)
    want = strided(x)
    assert _convert('c', strided, 'convert') == (3, 2)
    full = strided(x)
    assert strided.stride == (1, 1)
    torch.testing.assert_close(full[..., ::2, ::2], want)


class PhaseZero(nn.Module):
    """Plain subsampling: a converted backbone then equals the original."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[..., ::self.stride, ::self.stride]


def _phase_zero(wrapped):
    for m in list(wrapped.modules()):
        if hasattr(m, 'down') and isinstance(m.down, nn.Module):
            m.down = PhaseZero(m.down.stride)


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
    embeds = [f'layers.{i}.0' for i in range(4)]
    assert wrapped.converted == [f'{n}.projection' for n in embeds]
    # The default placement: after the patch embedding's LayerNorm.
    strides = [wrapped.backbone.get_submodule(n).down.stride for n in embeds]
    assert strides == [4, 2, 2, 2]
    assert all(isinstance(wrapped.backbone.get_submodule(n).down, TIPS)
               for n in embeds)
    assert wrapped.skipped == [f'layers.{i}.1.0.attn.sr' for i in range(3)]
    assert all(r.startswith('non-overlapping')
               for r in wrapped.skip_reasons.values())
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


@pytest.mark.parametrize('placement,non_overlapping', [
    ('conv', 'keep'), ('norm', 'keep'), ('norm', 'convert')])
def test_mit_placements_equal_the_original_with_plain_subsampling(
        placement, non_overlapping):
    """A token LayerNorm commutes with picking a phase, so with plain
    subsampling every placement computes the original MiT exactly."""
    original = MODELS.build(MIT)
    wrapped = MODELS.build(dict(
        type='ShiftInvariantWrapper', backbone=MIT,
        downsample_cfg=dict(type='TIPS'),
        patch_embed_placement=placement, non_overlapping=non_overlapping))
    where = 'layers.0.0' + ('.projection' if placement == 'conv' else '')
    assert isinstance(wrapped.backbone.get_submodule(where).down, TIPS)
    if non_overlapping == 'convert':
        assert 'layers.0.1.0.attn.sr' in wrapped.converted
        assert not wrapped.skipped
    _phase_zero(wrapped)
    wrapped.backbone.load_state_dict(original.state_dict())
    x = torch.randn(2, 3, 64, 64)
    wrapped.eval(), original.eval()
    with torch.no_grad():
        for got, want in zip(wrapped(x), original(x)):
            torch.testing.assert_close(got, want)


def test_tips_after_the_norm_sees_normalised_tokens():
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=MIT,
                                downsample_cfg=dict(type='TIPS')))
    seen = []
    layer = wrapped.backbone.layers[0][0].down
    layer.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    wrapped.eval()
    with torch.no_grad():
        wrapped(torch.randn(1, 3, 32, 32) * 100)
    # LayerNorm with its initial affine: every token has mean 0, var 1.
    tokens = seen[0].flatten(2)
    torch.testing.assert_close(tokens.mean(1), torch.zeros_like(
        tokens.mean(1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(tokens.var(1, unbiased=False),
                               torch.ones_like(tokens.mean(1)),
                               atol=1e-3, rtol=0)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match='patch_embed_placement'):
        MODELS.build(dict(type='ShiftInvariantWrapper', backbone=MIT,
                          patch_embed_placement='after'))
    with pytest.raises(ValueError, match='non_overlapping'):
        MODELS.build(dict(type='ShiftInvariantWrapper', backbone=MIT,
                          non_overlapping='yes'))


def test_original_state_dict_loads_into_the_wrapper():
    cfg = BACKBONES['resnet18']
    original = MODELS.build(cfg)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg))
    result = wrapped.load_state_dict(original.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(
        '.down.' in k for k in result.missing_keys)
    torch.testing.assert_close(wrapped.backbone.conv1.weight,
                               original.conv1.weight)
    # Its own (wrapped) keys load as they are.
    twin = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg))
    twin.load_state_dict(wrapped.state_dict())
    torch.testing.assert_close(twin.backbone.conv1.down.psi_conv.weight,
                               wrapped.backbone.conv1.down.psi_conv.weight)


def test_average_pools_are_left_with_a_reason():
    cfg = dict(type='ResNetV1d', depth=18, norm_cfg=BN)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg='BlurPool'))
    assert wrapped.skipped == [f'layer{i}.0.downsample.0' for i in (2, 3, 4)]
    assert all('average pool' in wrapped.skip_reasons[n]
               for n in wrapped.skipped)


def test_pools_of_branching_backbones_are_found_before_conversion():
    """BiSeNetV1 joins a spatial and a context path: its max-pool's
    channels must come from a forward of the unconverted backbone."""
    cfg = dict(type='BiSeNetV1', backbone_cfg=dict(
        type='ResNet', depth=18, norm_cfg=BN), norm_cfg=BN)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg='APS'))
    pool = wrapped.backbone.context_path.backbone.maxpool
    assert pool.down.channels == 64
    original = MODELS.build(cfg)
    x = torch.randn(1, 3, 64, 64)
    wrapped.eval(), original.eval()
    with torch.no_grad():
        assert [o.shape for o in wrapped(x)] == [o.shape for o in original(x)]
