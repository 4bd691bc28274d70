"""MSB definitions (METHOD.md section 2): single layers, mmseg's ResNet."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.models.backbones import ResNetV1c, ResNetV1d
from tips_mmseg.analysis import MSBRecorder, mean_msb, stride_one_response
from tips_mmseg.models.layers import APS, LPS, TIPS, BlurPool


def record(layer: nn.Module, x: torch.Tensor) -> dict:
    """The one layer entry of a model made of ``layer`` alone."""
    model = nn.Sequential(layer)
    with MSBRecorder(model) as recorder, torch.no_grad():
        model(x)
    (entry, ) = recorder.results()
    return entry


def naive_window_msb(x: np.ndarray, y: np.ndarray, window) -> tuple:
    """msb_pixel, msb_soft by plain loops over the non-flat windows;
    ``window(n, c, i, j)`` gives the window values (padding excluded) of
    output (n, c, i, j)."""
    hits, soft = [], []
    for n, c, i, j in itertools.product(*map(range, y.shape)):
        values = window(n, c, i, j)
        top, bottom = values.max(), values.min()
        if abs(top - bottom) <= 1e-6 * abs(top):
            continue  # flat window
        hits.append(abs(y[n, c, i, j] - top) <= 1e-6 * abs(top))
        soft.append(min(max((y[n, c, i, j] - bottom) / (top - bottom), 0), 1))
    return float(np.mean(hits)), float(np.mean(soft))


@pytest.mark.parametrize('pool', [
    nn.MaxPool2d(2),
    nn.MaxPool2d(3, stride=2, padding=1),
    nn.MaxPool2d(3, stride=2, padding=1, dilation=2),
    nn.MaxPool2d(2, ceil_mode=True),
])
@pytest.mark.parametrize('size', [(8, 8), (9, 7)])
def test_max_pool_is_fully_max_biased(pool, size):
    # Negative values everywhere: zero padding would beat them, -inf does not.
    x = -torch.rand(2, 3, *size) - 0.1
    entry = record(pool, x)
    assert entry['msb_pixel'] == 1.0
    assert entry['msb_soft'] == 1.0
    assert entry['msb_phase'] is None
    assert entry['output_elements'] == pool(x).numel()


def test_aps_phase_bias_is_exactly_one():
    entry = record(APS(4), torch.randn(3, 4, 10, 12))
    assert entry['msb_phase'] == 1.0


def test_average_pool_is_unbiased():
    entry = record(nn.AvgPool2d(2), torch.randn(4, 8, 32, 32))
    assert entry['msb_pixel'] < 1e-3
    assert entry['msb_soft'] == pytest.approx(0.5, abs=0.02)
    assert entry['msb_phase'] is None


def test_tips_with_uniform_tau_has_phase_bias_one_quarter():
    tips = TIPS(4)
    nn.init.zeros_(tips.logit_scale.weight)  # all logits 0 -> tau = 1/4
    entry = record(tips, torch.randn(2, 4, 12, 12))
    assert entry['msb_phase'] == pytest.approx(0.25, abs=1e-6)
    # A uniform mix is the 2x2 average: never the max of a random window.
    assert entry['msb_pixel'] == 0.0


def test_strided_conv_hand_computed():
    # A 1x1 identity conv with stride 2: the stride-1 response is x itself,
    # the output keeps the top-left of every 2x2 window.
    conv = nn.Conv2d(1, 1, 1, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.tensor([[1., 2., 5., 0.],
                      [3., 4., 1., 1.],
                      [0., 0., 9., 8.],
                      [0., 0., 7., 6.]]).view(1, 1, 4, 4)
    # Windows: [1,2,3,4] keeps 1 (min); [5,0,1,1] keeps 5 (max);
    # [0,0,0,0] is flat (left out of both); [9,8,7,6] keeps 9.
    # Component norms^2: (0,0) 1+25+0+81=107 > (0,1) 68 > (1,0) 59 > (1,1) 53.
    entry = record(conv, x)
    assert entry['msb_pixel'] == pytest.approx(2 / 3)
    assert entry['msb_soft'] == pytest.approx(2 / 3)
    assert entry['msb_phase'] == 1.0
    assert entry['flat_fraction'] == pytest.approx(1 / 4)


def test_strided_conv_phase_is_zero_when_another_component_dominates():
    conv = nn.Conv2d(1, 1, 1, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, 4, 4)
    x[..., 1::2, 1::2] = 1  # component (1, 1) holds all the energy
    entry = record(conv, x)
    assert entry['msb_phase'] == 0.0
    assert entry['msb_pixel'] == 0.0
    assert entry['msb_soft'] == 0.0


@pytest.mark.parametrize('conv', [
    nn.Conv2d(2, 3, 3, stride=2, padding=1),
    nn.Conv2d(2, 3, 3, stride=2, padding=2, dilation=2),
    nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode='reflect'),
    nn.Conv2d(2, 4, 1, stride=2, groups=2),
])
def test_stride_one_response_aligns_with_strided_output(conv):
    x = torch.randn(2, 2, 9, 11)
    with torch.no_grad():
        response = stride_one_response(conv, x)
        torch.testing.assert_close(response[..., ::2, ::2], conv(x))


def test_strided_conv_odd_response_matches_naive_windows():
    conv = nn.Conv2d(2, 2, 3, stride=2, padding=1)
    x = torch.randn(2, 2, 7, 5)
    entry = record(conv, x)
    with torch.no_grad():
        r = stride_one_response(conv, x).numpy()
    y = r[..., ::2, ::2]
    pixel, soft = naive_window_msb(
        r, y, lambda n, c, i, j: r[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2])
    assert entry['msb_pixel'] == pytest.approx(pixel)
    assert entry['msb_soft'] == pytest.approx(soft)


@pytest.mark.parametrize('layer_type', [APS, TIPS])
def test_polyphase_odd_input_uses_the_layers_top_left_padding(layer_type):
    layer = layer_type(3)
    x = torch.randn(2, 3, 7, 9)
    entry = record(layer, x)
    with torch.no_grad():
        y = layer(x).numpy()
    # The layer pads one row/column on top/left by reflection.
    padded = F.pad(x, (1, 0, 1, 0), mode='reflect').numpy()
    pixel, soft = naive_window_msb(
        padded, y,
        lambda n, c, i, j: padded[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2])
    assert entry['msb_pixel'] == pytest.approx(pixel)
    assert entry['msb_soft'] == pytest.approx(soft)
    assert entry['output_elements'] == 2 * 3 * 4 * 5


def test_blurpool_uses_two_by_two_input_windows():
    layer = BlurPool(2)
    x = torch.randn(1, 2, 7, 6)
    entry = record(layer, x)
    y = layer(x).numpy()
    xn = x.numpy()
    pixel, soft = naive_window_msb(
        xn, y, lambda n, c, i, j: xn[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2])
    assert entry['msb_pixel'] == pytest.approx(pixel)
    assert entry['msb_soft'] == pytest.approx(soft)
    assert entry['msb_phase'] is None


def test_avg_pool_with_padding_ignores_padding_in_windows():
    pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    x = torch.rand(1, 1, 5, 5) + 1  # all > 1: zero padding would be the min
    entry = record(pool, x)
    y = pool(x).numpy()
    xn = x.numpy()
    pixel, soft = naive_window_msb(
        xn, y, lambda n, c, i, j: xn[n, c, max(2 * i - 1, 0):2 * i + 2,
                                     max(2 * j - 1, 0):2 * j + 2])
    assert entry['msb_pixel'] == pytest.approx(pixel)
    assert entry['msb_soft'] == pytest.approx(soft)


# One model per kind, odd input: every kind goes through the recorder.
ONE_LAYER_CASES = {
    'Conv2d': (lambda: nn.Conv2d(3, 3, 3, stride=2, padding=1), True),
    'MaxPool2d': (lambda: nn.MaxPool2d(3, stride=2, padding=1), False),
    'AvgPool2d': (lambda: nn.AvgPool2d(2, ceil_mode=True), False),
    'BlurPool': (lambda: BlurPool(3), False),
    'APS': (lambda: APS(3), True),
    'LPS': (lambda: LPS(3, hidden_channels=4).eval(), True),
    'TIPS': (lambda: TIPS(3), True),
}


@pytest.mark.parametrize('type_name', sorted(ONE_LAYER_CASES))
def test_one_layer_model_end_to_end(type_name):
    make_layer, has_phase = ONE_LAYER_CASES[type_name]
    model = nn.Sequential(nn.Identity(), make_layer())
    x = torch.randn(2, 3, 11, 9)
    recorder = MSBRecorder(model)
    with recorder, torch.no_grad():
        out = model(x)
    summary = recorder.summary()
    (entry, ) = summary['layers']
    assert entry['name'] == '1' and entry['type'] == type_name
    assert out.shape[-2:] == (6, 5)
    assert entry['output_elements'] == out.numel()
    for key in ('msb_pixel', 'msb_soft'):
        assert 0 <= entry[key] <= 1
    assert (entry['msb_phase'] is not None) == has_phase
    assert summary['mean']['msb_pixel'] == entry['msb_pixel']
    # Hooks are gone after the with block.
    with torch.no_grad():
        model(x)
    assert recorder.results()[0]['output_elements'] == out.numel()


def test_lps_in_training_mode_phase_is_its_soft_weight():
    lps = LPS(3, hidden_channels=4).train()
    x = torch.randn(2, 3, 8, 8)
    entry = record(lps, x)
    components = F.pixel_unshuffle(x, 2).view(2, 3, 4, 4, 4)
    largest = components.pow(2).sum(dim=(1, 3, 4)).argmax(dim=1)
    expected = lps.last_weights[:, 0].gather(1, largest[:, None]).mean()
    assert entry['msb_phase'] == pytest.approx(float(expected), rel=1e-5)
    assert 0 < entry['msb_phase'] < 1


def test_recorder_accumulates_and_resets():
    model = nn.Sequential(nn.MaxPool2d(2))
    recorder = MSBRecorder(model)
    with recorder, torch.no_grad():
        model(torch.randn(1, 2, 8, 8))
        model(torch.randn(1, 2, 8, 8))
    assert recorder.results()[0]['output_elements'] == 2 * 2 * 4 * 4
    recorder.reset()
    assert recorder.results()[0]['output_elements'] == 0
    assert recorder.results()[0]['msb_pixel'] is None


def test_flat_windows_do_not_count_as_max_sampling():
    # After a ReLU many 2x2 windows are all zero: an average pool keeps
    # their "max" but is not biased towards it.
    x = torch.randn(2, 4, 16, 16)
    x[..., :8, :] = 0  # the top half is flat
    entry = record(nn.AvgPool2d(2), x)
    assert entry['flat_fraction'] == pytest.approx(0.5)
    assert entry['msb_pixel'] < 1e-3
    assert record(nn.MaxPool2d(2), x)['msb_pixel'] == 1.0
    assert record(nn.AvgPool2d(2), torch.zeros(1, 1, 4, 4))['msb_pixel'] \
        is None


def test_model_without_downsampling_is_a_clear_error():
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(3, stride=1, padding=1))
    with pytest.raises(ValueError, match='no downsampling operator'):
        MSBRecorder(model)


def test_mean_is_weighted_by_output_elements_and_skips_none():
    layers = [
        dict(msb_pixel=1.0, msb_soft=1.0, msb_phase=None,
             output_elements=300),
        dict(msb_pixel=0.0, msb_soft=0.5, msb_phase=0.25,
             output_elements=100),
    ]
    mean = mean_msb(layers)
    assert mean['msb_pixel'] == pytest.approx(0.75)
    assert mean['msb_soft'] == pytest.approx(0.875)
    assert mean['msb_phase'] == pytest.approx(0.25)
    assert mean_msb(layers[:1])['msb_phase'] is None


# ResNet-18 (BasicBlock strides conv1): stem conv, max-pool, and in stages
# 2-4 the first block's conv1 and its shortcut (strided 1x1 conv, or AvgPool
# with avg_down).
RESNET18_DOWNSAMPLERS = {'stem.0', 'maxpool'} | {
    f'layer{stage}.0.{name}'
    for stage in (2, 3, 4) for name in ('conv1', 'downsample.0')
}


@pytest.mark.parametrize('backbone_type,avg_down',
                         [(ResNetV1c, False), (ResNetV1d, True)])
def test_every_resnet_downsampler_is_recorded(backbone_type, avg_down):
    backbone = backbone_type(
        depth=18, base_channels=8, stem_channels=8,
        norm_cfg=dict(type='BN', requires_grad=True))
    backbone.eval()  # mmseg's ResNet.train() does not return the module
    recorder = MSBRecorder(backbone)
    assert set(recorder.layers) == RESNET18_DOWNSAMPLERS
    with recorder, torch.no_grad():
        backbone(torch.randn(1, 3, 33, 33))
    by_name = {entry['name']: entry for entry in recorder.results()}
    assert by_name['maxpool']['msb_pixel'] == 1.0
    shortcut = by_name['layer2.0.downsample.0']
    assert shortcut['type'] == ('AvgPool2d' if avg_down else 'Conv2d')
    assert all(entry['output_elements'] > 0 for entry in by_name.values())
    assert all(math.isfinite(entry['msb_soft']) for entry in by_name.values())


class EveryOtherPixel(nn.Module):
    """A plain stride-2 subsampler, as a custom backbone might define."""

    def forward(self, x):
        return x[..., ::2, ::2]


def test_subsample_types_are_measured_like_an_identity_strided_conv():
    x = torch.randn(2, 3, 9, 8)
    identity_conv = nn.Conv2d(3, 3, 1, stride=2, groups=3, bias=False)
    nn.init.ones_(identity_conv.weight)
    model = nn.Sequential(EveryOtherPixel())
    with pytest.raises(ValueError, match='subsample_types'):
        MSBRecorder(model)
    with MSBRecorder(model, subsample_types=[EveryOtherPixel]) as recorder:
        model(x)
    (entry, ) = recorder.results()
    expected = record(identity_conv, x)
    assert entry['type'] == 'EveryOtherPixel'
    for key in ('msb_pixel', 'msb_soft', 'msb_phase'):
        assert entry[key] == pytest.approx(expected[key])


# Stride 4 (MiT's first patch embedding): s x s windows, s*s components.


def test_aps_stride_four_phase_bias_is_exactly_one():
    entry = record(APS(3, stride=4), torch.randn(2, 3, 16, 12))
    assert entry['msb_phase'] == 1.0
    assert entry['output_elements'] == 2 * 3 * 4 * 3


def test_tips_stride_four_uniform_tau_has_phase_bias_one_sixteenth():
    tips = TIPS(4, stride=4)
    nn.init.zeros_(tips.logit_scale.weight)  # all logits 0 -> tau = 1/16
    entry = record(tips, torch.randn(2, 4, 16, 16))
    assert entry['msb_phase'] == pytest.approx(1 / 16, abs=1e-6)
    assert entry['msb_pixel'] == 0.0


@pytest.mark.parametrize('size', [(16, 16), (14, 11)])
def test_stride_four_layers_match_naive_windows(size):
    x = torch.randn(2, 2, *size)
    xn = x.numpy()
    conv = nn.Conv2d(2, 2, 7, stride=4, padding=3)
    with torch.no_grad():
        r = stride_one_response(conv, x).numpy()
    for layer, source, y in (
            (conv, r, r[..., ::4, ::4]),
            (BlurPool(2, stride=4), xn, None)):
        entry = record(layer, x)
        if y is None:
            with torch.no_grad():
                y = layer(x).numpy()
        pixel, soft = naive_window_msb(
            source, y,
            lambda n, c, i, j, s=source: s[n, c, 4 * i:4 * i + 4,
                                           4 * j:4 * j + 4])
        assert entry['msb_pixel'] == pytest.approx(pixel)
        assert entry['msb_soft'] == pytest.approx(soft)


def test_stride_four_conv_phase_is_one_when_its_component_dominates():
    conv = nn.Conv2d(1, 1, 1, stride=4, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.rand(1, 1, 8, 8) * 0.1
    x[..., ::4, ::4] += 1  # component (0, 0), the one the conv keeps
    assert record(conv, x)['msb_phase'] == 1.0
    x = torch.rand(1, 1, 8, 8) * 0.1
    x[..., 1::4, 2::4] += 1
    assert record(conv, x)['msb_phase'] == 0.0
