"""Placement, shapes, state-dict compatibility and exact circular
invariance of the shift-invariant ResNets."""
import pytest
import torch
from mmseg.models.backbones import ResNet, ResNetV1c

import tips_mmseg  # noqa: F401
from tips_mmseg.models import (APS, LPS, TIPS, BlurPool, PolyphaseFollower,
                               ShiftInvariantResNet, ShiftInvariantResNetV1c,
                               TIPSResNetV1c)

BN = dict(type='BN', requires_grad=True)
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)
D16 = dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
           contract_dilation=True)
LAYERS = dict(TIPS=TIPS, APS=APS, LPS=LPS, BlurPool=BlurPool)


def count(model, cls):
    return sum(type(m) is cls for m in model.modules())


@pytest.mark.parametrize('down', ['TIPS', 'BlurPool', 'APS', 'LPS'])
@pytest.mark.parametrize('depth', [18, 50])
def test_downsampler_count_and_placement(down, depth):
    model = ShiftInvariantResNetV1c(depth=depth, downsample_cfg=down,
                                    norm_cfg=BN)
    # stem conv + max-pool + one per strided stage (2, 3, 4).
    main, shortcut = 2 + 3, 3
    cls = LAYERS[down]
    if down in ('APS', 'LPS'):  # shortcuts follow the main branch
        assert count(model, cls) == main
        assert count(model, PolyphaseFollower) == shortcut
    else:
        assert count(model, cls) == main + shortcut
        assert count(model, PolyphaseFollower) == 0
    assert model.stem[0].stride == (1, 1)
    assert isinstance(model.maxpool, cls)
    strided = [m for m in model.modules()
               if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert strided == []
    assert list(model.main_downsamplers()) == [
        'stem_down', 'maxpool', 'layer2.0.down', 'layer3.0.down',
        'layer4.0.down'
    ]


@pytest.mark.parametrize('down', ['TIPS', 'APS'])
def test_dilated_stages_untouched(down):
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    norm_cfg=BN, **D8)
    assert model.layer3[0].down is None and model.layer4[0].down is None
    assert model.layer3[0].conv1.dilation == (1, 1)  # contracted
    assert model.layer4[1].conv1.dilation == (4, 4)
    assert len(model.main_downsamplers()) == 3


@pytest.mark.parametrize('down', [None, 'TIPS', 'BlurPool', 'APS', 'LPS'])
@pytest.mark.parametrize('arch', [D8, D16, {}], ids=['d8', 'd16', 'd32'])
@pytest.mark.parametrize('size', [(64, 64), (37, 50)])
def test_output_shapes_match_vanilla(down, arch, size):
    vanilla = ResNetV1c(depth=18, norm_cfg=BN, **arch)
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    norm_cfg=BN, **arch)
    x = torch.randn(2, 3, *size)
    assert [o.shape for o in model(x)] == [o.shape for o in vanilla(x)]


@pytest.mark.parametrize('style', ['pytorch', 'caffe'])
def test_bottleneck_styles_and_plain_stem(style):
    vanilla = ResNet(depth=50, style=style, norm_cfg=BN)
    model = ShiftInvariantResNet(depth=50, style=style, norm_cfg=BN,
                                 downsample_cfg='BlurPool')
    block = model.layer2[0]
    assert block.down_after_conv1 == (style == 'caffe')
    assert (block.conv1 if style == 'caffe' else block.conv2).stride == (1, 1)
    x = torch.randn(1, 3, 45, 45)
    assert [o.shape for o in model(x)] == [o.shape for o in vanilla(x)]


def test_vanilla_is_resnetv1c():
    torch.manual_seed(1)
    vanilla = ResNetV1c(depth=18, norm_cfg=BN, **D8)
    vanilla.eval()  # mmseg's ResNet.train() returns None
    model = ShiftInvariantResNetV1c(depth=18, norm_cfg=BN, **D8).eval()
    model.load_state_dict(vanilla.state_dict())
    x = torch.randn(1, 3, 48, 48)
    for a, b in zip(model(x), vanilla(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('depth', [18, 50, 101])
def test_resnetv1c_state_dict_loads(depth):
    vanilla = ResNetV1c(depth=depth, norm_cfg=BN, **D8).state_dict()
    model = TIPSResNetV1c(depth=depth, norm_cfg=BN, **D8)
    result = model.load_state_dict(vanilla, strict=False)
    assert result.unexpected_keys == []
    new = {k for k in model.state_dict() if k not in vanilla}
    assert set(result.missing_keys) == new
    assert new and all(
        k.startswith(('stem_down.', 'maxpool.')) or '.down.' in k
        or '.shortcut_down.' in k for k in new)
    # every original parameter was loaded
    for k, v in vanilla.items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_tips_default_and_frozen_stem():
    model = TIPSResNetV1c(depth=18, norm_cfg=BN, frozen_stages=1)
    assert isinstance(model.stem_down, TIPS)
    assert not any(p.requires_grad for p in model.stem_down.parameters())
    assert not any(p.requires_grad for p in model.maxpool.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())


def test_unknown_downsampler_is_a_clear_error():
    with pytest.raises(KeyError, match='Unknown downsampling layer'):
        ShiftInvariantResNetV1c(depth=18, downsample_cfg='MaxPool')


def roll(x, dh, dw):
    return torch.roll(x, (dh, dw), dims=(-2, -1))


@pytest.mark.parametrize('down', ['APS', 'LPS'])
def test_circular_model_exactly_invariant_in_pooled_features(down):
    """Circular padding + APS/LPS (eval): a circular shift of the input
    moves every feature map by a circular shift (on its own grid), so the
    global average of the last stage does not change, for ANY shift."""
    torch.manual_seed(0)
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    circular_padding=True, norm_cfg=BN,
                                    **D8).eval()
    vanilla = ShiftInvariantResNetV1c(depth=18, circular_padding=True,
                                      norm_cfg=BN, **D8).eval()
    x = torch.randn(2, 3, 64, 64)

    def pooled(net, inp):
        with torch.no_grad():
            return net(inp)[-1].mean(dim=(2, 3))

    ref, ref_vanilla = pooled(model, x), pooled(vanilla, x)
    worst_vanilla = 0.
    for dh, dw in [(1, 0), (0, 1), (1, 1), (3, 5), (-7, 2)]:
        shifted = roll(x, dh, dw)
        torch.testing.assert_close(pooled(model, shifted), ref,
                                   rtol=1e-4, atol=1e-5)
        worst_vanilla = max(worst_vanilla, (pooled(vanilla, shifted) -
                                            ref_vanilla).abs().max().item())
    # the property is not trivial: the strided vanilla net changes
    assert worst_vanilla > 1e-3


def test_shortcut_follows_main_branch_choice():
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg='APS',
                                    norm_cfg=BN).eval()
    model(torch.randn(2, 3, 32, 32))
    block = model.layer2[0]
    torch.testing.assert_close(block.shortcut_down.last_weights,
                               block.down.last_weights)


def test_lps_eval_is_one_hot_and_train_is_soft():
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg='LPS',
                                    norm_cfg=BN)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    model(x)
    w = model.layer2[0].down.last_weights
    assert ((w > 0) & (w < 1)).any()
    model.eval()
    model(x)
    w = model.layer2[0].down.last_weights
    assert set(w.unique().tolist()) <= {0., 1.}
