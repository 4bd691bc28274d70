"""Circular-padding APS/LPS DeepLabV3+ with unpooling: exactly equivariant
to circular shifts of the input (eval)."""
import pytest
import torch
from mmseg.registry import MODELS

import tips_mmseg  # noqa: F401

BN = dict(type='BN', requires_grad=True)


def model_cfg(down, head='UnpoolDepthwiseSeparableASPPHead', circular=True):
    return dict(
        type='TIPSEncoderDecoder',
        backbone=dict(type='ShiftInvariantResNetV1c', depth=18,
                      downsample_cfg=down, circular_padding=circular,
                      norm_cfg=BN, strides=(1, 2, 1, 1),
                      dilations=(1, 1, 2, 4), contract_dilation=True),
        decode_head=dict(type=head, in_channels=512, in_index=3,
                         channels=16, dilations=(1, 12, 24, 36),
                         c1_in_channels=64, c1_channels=8, num_classes=3,
                         norm_cfg=BN, dropout_ratio=0.,
                         loss_decode=dict(type='CrossEntropyLoss')))


@pytest.mark.parametrize('down', ['APS', 'LPS'])
def test_circular_equivariance_of_logits(down):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(down)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.encode_decode(x, [dict(img_shape=(64, 64))])
        assert ref.shape[-2:] == (64, 64)
        for dh, dw in [(1, 0), (0, 3), (5, -7)]:
            shifted = torch.roll(x, (dh, dw), dims=(2, 3))
            out = model.encode_decode(shifted, [dict(img_shape=(64, 64))])
            torch.testing.assert_close(
                out, torch.roll(ref, (dh, dw), dims=(2, 3)),
                rtol=1e-4, atol=1e-4)


def test_bilinear_head_is_not_equivariant():
    """The property above is not trivial: bilinear upsampling breaks it."""
    torch.manual_seed(0)
    model = MODELS.build(
        model_cfg('APS', head='DepthwiseSeparableASPPHead')).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.encode_decode(x, [dict(img_shape=(64, 64))])
        out = model.encode_decode(torch.roll(x, (1, 0), dims=(2, 3)),
                                  [dict(img_shape=(64, 64))])
    assert (out - torch.roll(ref, (1, 0), dims=(2, 3))).abs().max() > 1e-3


def test_unpool_head_needs_polyphase_backbone():
    with pytest.raises(TypeError, match='APS/LPS'):
        MODELS.build(model_cfg('BlurPool'))


def test_trains_with_soft_lps_weights_at_odd_size():
    model = MODELS.build(model_cfg('LPS')).train()
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 3, (1, 45, 51))))
        s.set_metainfo(dict(img_shape=(45, 51)))
        samples.append(s)
    losses = model.loss(torch.randn(2, 3, 45, 51), samples)
    assert torch.isfinite(losses['decode.loss_ce'])


@pytest.mark.parametrize('mode', ['circular-bottom-right', 'zero-bottom-right'])
def test_paper_protocol_backbone_unpools_odd_maps_on_the_padded_side(mode):
    """APS/LPS's bottom/right odd padding and a filtered, MaxBlur stem on an
    odd input: every layer pads as configured and the head, cropping the
    side each layer padded (values checked in test_baseline_fidelity),
    returns logits of the input's size."""
    torch.manual_seed(0)
    cfg = model_cfg(dict(type='APS', filter_size=3, odd_padding=mode))
    cfg['backbone'].update(keep_stem_max=True)
    model = MODELS.build(cfg).eval()
    seen = []
    stem = model.backbone.stem_down
    stem.register_forward_hook(lambda m, i, o: seen.append(m.odd_padding))
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        out = model.encode_decode(x, [dict(img_shape=(37, 45))])
    assert out.shape[-2:] == (37, 45)
    assert seen == [mode]
    assert all(d.odd_padding == mode
               for d in model.backbone.main_downsamplers().values())


@pytest.mark.parametrize('stride', [2, 3, 4])
def test_unpool_bilinear_fills_the_kept_phase_bilinearly(stride):
    from tips_mmseg.models.decode_heads.unpool_sep_aspp_head import (
        bilinear_tent, unpool_bilinear)
    from tips_mmseg.models.layers.polyphase import component_offsets
    if stride == 2:
        torch.testing.assert_close(bilinear_tent(2), torch.tensor(
            [[.25, .5, .25], [.5, 1., .5], [.25, .5, .25]]))
    # A plane a*i + b*j sampled on component (a0, b0): inside the map (away
    # from the circular wrap) the fill is the plane itself, and the kept
    # samples come back unchanged.
    h = w = 6 * stride
    k = stride * stride - 2
    a0, b0 = component_offsets(stride)[k]
    rows = torch.arange(h, dtype=torch.float64)[:, None]
    cols = torch.arange(w, dtype=torch.float64)[None, :]
    plane = (0.5 * rows + 0.25 * cols)[None, None]
    y = plane[..., a0::stride, b0::stride]
    weights = torch.nn.functional.one_hot(torch.tensor([k]),
                                          stride * stride)[:, None].double()
    out = unpool_bilinear(y, weights, (h, w), stride=stride)
    torch.testing.assert_close(out[..., a0::stride, b0::stride], y)
    inner = (slice(None), slice(None), slice(a0, h - stride),
             slice(b0, w - stride))
    torch.testing.assert_close(out[inner], plane[inner])


def test_lps_unpooling_trains_the_scorer_unless_detached():
    """LPS-U as the release: the unpooling gets the soft sample with its
    graph, so the head's loss reaches the stem's scorer also through it."""
    from tests.test_models.test_regularized_segmentor import batch
    grads = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = MODELS.build(model_cfg(
            dict(type='LPS', detach_shared=detach))).train()
        torch.manual_seed(1)  # same data and Gumbel noise in both runs
        losses = model.loss(*batch(size=32))
        model.parse_losses(losses)[0].backward()
        grads[detach] = model.backbone.stem_down.scorer.conv1.weight.grad
    # Both train it through the main path; the graph adds the unpooling's.
    assert grads[True].abs().sum() > 0
    assert not torch.allclose(grads[False], grads[True])
