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
    from tips_mmseg.models.backbones.shift_invariant_wrapper import _convert
    conv = nn.Conv2d(3, 4, 2, stride=2)
    with pytest.raises(ValueError, match='would not keep the map size'):
        _convert('patch', conv, 'TIPS')
    assert wrapped is not None
