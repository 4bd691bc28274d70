"""Polyphase layers of any stride s: s*s components, ceil(H/s) outputs.

References are written loop by loop from the definitions (component
``k = s*a + b`` is ``X[:, :, a::s, b::s]``), not with the layers' helpers.
"""
import copy
import io
import itertools

import pytest
import torch
import torch.nn.functional as F

import tips_mmseg  # noqa: F401
from tips_mmseg.models.layers import (APS, LPS, ODD_PADDING_MODES, TIPS,
                                      BlurPool, PolyphaseUnpool,
                                      build_downsample, mix_phases,
                                      pad_to_even, polyphase_merge,
                                      polyphase_split, polyphase_unpool)
from tips_mmseg.models.layers.polyphase import pad_to_even_graph

SIZES = [(1, 1), (1, 7), (5, 1), (8, 8), (6, 9), (7, 10), (12, 12)]


def make(name, stride=2, **kw):
    if name == 'TIPS':
        return TIPS(3, stride=stride, **kw)
    if name == 'APS':
        return APS(3, stride=stride, **kw)
    if name == 'LPS':
        return LPS(3, hidden_channels=4, stride=stride, **kw)
    return BlurPool(3, stride=stride, **kw)


def components(x, s):
    return [x[:, :, a::s, b::s] for a in range(s) for b in range(s)]


def randomize(layer):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    return layer


@pytest.mark.parametrize('stride', [2, 3, 4])
@pytest.mark.parametrize('name', ['TIPS', 'APS', 'LPS', 'BlurPool'])
def test_output_is_ceil_h_over_s(name, stride):
    modes = ['reflect'] if name == 'BlurPool' else ODD_PADDING_MODES
    for mode, training, (h, w) in itertools.product(modes, (True, False),
                                                     SIZES):
        kw = (dict(pad_mode=mode) if name == 'BlurPool' else
              dict(odd_padding=mode))
        layer = make(name, stride, **kw).train(training)
        y = layer(torch.randn(2, 3, h, w))
        assert y.shape == (2, 3, -(-h // stride), -(-w // stride)), (
            name, mode, h, w)
        assert torch.isfinite(y).all()
        if name != 'BlurPool':
            assert layer.last_weights.shape[-1] == stride * stride


@pytest.mark.parametrize('name', ['TIPS', 'APS', 'LPS', 'BlurPool'])
def test_stride_2_is_the_default_bit_for_bit(name):
    modes = ['reflect', 'zeros', 'circular'] if name == 'BlurPool' else \
        ODD_PADDING_MODES
    for mode in modes:
        kw = (dict(pad_mode=mode) if name == 'BlurPool' else
              dict(odd_padding=mode))
        default = randomize(make(name, **kw))
        explicit = make(name, stride=2, **kw)
        explicit.load_state_dict(default.state_dict())
        for training, (h, w) in itertools.product((True, False), SIZES):
            x = torch.randn(2, 3, h, w)
            torch.manual_seed(1)  # the same Gumbel noise for LPS
            want = default.train(training)(x)
            torch.manual_seed(1)
            assert torch.equal(explicit.train(training)(x), want), (mode, h,
                                                                    w)


@pytest.mark.parametrize('stride', [3, 4])
def test_split_merge_and_padding_at_stride_s(stride):
    x = torch.randn(2, 3, 2 * stride, 3 * stride)
    parts = polyphase_split(x, stride)
    assert parts.shape == (2, 3, stride * stride, 2, 3)
    for k, comp in enumerate(components(x, stride)):
        assert torch.equal(parts[:, :, k], comp)
    assert torch.equal(polyphase_merge(parts, stride), x)
    for mode, (h, w) in itertools.product(ODD_PADDING_MODES, SIZES):
        y = torch.randn(1, 2, h, w)
        padded = pad_to_even(y, mode, stride)
        assert padded.shape[-2] % stride == 0 == padded.shape[-1] % stride
        assert padded.shape[-2] - h < stride > padded.shape[-1] - w
        # The export graph pads with the same values.
        assert torch.equal(pad_to_even_graph(y, mode, stride), padded)
        kept = (padded[..., -h:, -w:] if mode == 'reflect-top-left' else
                padded[..., :h, :w])
        assert torch.equal(kept, y)  # the map itself is never moved


def test_mix_phases_gradient_at_stride_3():
    x = torch.randn(1, 2, 6, 3, dtype=torch.double, requires_grad=True)
    weights = torch.rand(1, 2, 9, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: mix_phases(a, b, 3),
                                    (x, weights))


def coarse_rolls(y):
    h, w = y.shape[-2:]
    return [torch.roll(y, (i, j), (-2, -1)) for i in range(h)
            for j in range(w)]


def aps_reference(x, s):
    comps = components(x, s)
    out = []
    for n in range(x.shape[0]):
        norms = [comp[n].pow(2).sum() for comp in comps]
        out.append(comps[max(range(len(comps)), key=lambda k: norms[k])][n])
    return torch.stack(out)


def lps_reference(layer, x, s):
    comps = components(x, s)
    out = []
    for n in range(x.shape[0]):
        scores = []
        for comp in comps:
            hidden = F.relu(
                F.conv2d(F.pad(comp[n:n + 1], (1, 1, 1, 1), mode='circular'),
                         layer.scorer.conv1.weight, layer.scorer.conv1.bias))
            scores.append(
                F.conv2d(F.pad(hidden, (1, 1, 1, 1), mode='circular'),
                         layer.scorer.conv2.weight,
                         layer.scorer.conv2.bias).mean())
        out.append(comps[max(range(len(comps)), key=lambda k: scores[k])][n])
    return torch.stack(out)


@pytest.mark.parametrize('name', ['APS', 'LPS'])
def test_exact_circular_shift_invariance_at_stride_4(name):
    torch.manual_seed(0)
    layer = randomize(make(name, stride=4)).eval()
    x = torch.randn(2, 3, 12, 16)
    with torch.no_grad():
        y = layer(x)
        ref = (aps_reference(x, 4) if name == 'APS' else
               lps_reference(layer, x, 4))
        assert torch.equal(y, ref)
        for dh, dw in [(1, 0), (0, 3), (2, 5), (7, -6), (4, 4)]:
            y_shift = layer(torch.roll(x, (dh, dw), (-2, -1)))
            # Equal to the unshifted output up to a shift on the coarse
            # grid, for each sample.
            for n in range(2):
                assert any(
                    torch.equal(y_shift[n], r)
                    for r in coarse_rolls(y[n])), (dh, dw, n)


def tips_reference(layer, x, s, release=False):
    c = x.shape[1]
    psi = F.relu(F.conv2d(x, layer.psi_conv.weight, padding=1, groups=c))
    qh, qw = psi.shape[-2] // s, psi.shape[-1] // s
    scale = layer.logit_scale.weight.view(c)
    comps = components(x, s)
    out = torch.zeros_like(comps[0])
    taus = torch.zeros(x.shape[0], c, s * s)
    for n in range(x.shape[0]):
        for ch in range(c):
            logits = torch.zeros(s * s)
            for a in range(s):
                for b in range(s):
                    mean = psi[n, ch, a * qh:(a + 1) * qh,
                               b * qw:(b + 1) * qw].mean()
                    k = s * b + a if release else s * a + b
                    logits[k] = scale[ch] * mean
            tau = torch.softmax(logits, 0)
            taus[n, ch] = tau
            for k in range(s * s):
                out[n, ch] += tau[k] * comps[k][n, ch]
    return out, taus


@pytest.mark.parametrize('pairing', ['aligned', 'release'])
def test_tips_at_stride_4(pairing):
    layer = randomize(TIPS(3, stride=4, tau_pairing=pairing)).eval()
    assert sum(p.numel() for p in layer.parameters()) == 10 * 3
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        y = layer(x)
    tau = layer.last_tau
    assert tau.shape == (2, 3, 16)
    torch.testing.assert_close(tau.sum(-1), torch.ones(2, 3))
    stacked = torch.stack(components(x, 4))
    eps = 1e-5
    assert (y >= stacked.min(0).values - eps).all()
    assert (y <= stacked.max(0).values + eps).all()
    want, want_tau = tips_reference(layer, x, 4, pairing == 'release')
    torch.testing.assert_close(tau, want_tau, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)


def test_tips_release_pairing_transposes_the_quadrants_at_stride_3():
    aligned = randomize(TIPS(2, stride=3))
    release = copy.deepcopy(aligned)
    release.tau_pairing = 'release'
    x = torch.randn(1, 2, 9, 9)
    aligned.eval()(x)
    release.eval()(x)
    t_a = aligned.last_tau.view(1, 2, 3, 3)
    t_r = release.last_tau.view(1, 2, 3, 3)
    # Equal up to rounding: the softmax sums its terms in another order.
    torch.testing.assert_close(t_r, t_a.transpose(-2, -1), rtol=1e-6,
                               atol=1e-7)
    assert not torch.allclose(t_r, t_a, rtol=1e-3)


def test_blurpool_stride_s_is_blur_then_subsample():
    layer = BlurPool(3, filter_size=3, pad_mode='zeros', stride=3)
    x = torch.randn(1, 3, 10, 7)
    blurred = BlurPool(3, filter_size=3, pad_mode='zeros', stride=1)(x)
    assert torch.equal(layer(x), blurred[:, :, ::3, ::3])


@pytest.mark.parametrize('mode', ODD_PADDING_MODES)
def test_unpool_at_stride_4_puts_values_back_into_the_component(mode):
    layer = APS(3, stride=4, odd_padding=mode).eval()
    x = torch.randn(2, 3, 8, 12)
    y = layer(x)
    up = PolyphaseUnpool(layer)(y)
    assert up.shape == x.shape
    for n, k in enumerate(layer.last_weights[:, 0].argmax(-1).tolist()):
        a, b = divmod(k, 4)
        mask = torch.zeros(8, 12, dtype=torch.bool)
        mask[a::4, b::4] = True
        assert torch.equal(up[n, :, a::4, b::4], y[n])
        assert torch.equal(up[n][:, ~mask], torch.zeros_like(up[n][:, ~mask]))
    # Odd sizes: the padding is cropped on the side the layer padded.
    x = torch.randn(1, 3, 7, 5)
    y = layer(x)
    up = polyphase_unpool(y, layer.last_weights, (7, 5), mode, stride=4)
    full = polyphase_unpool(y, layer.last_weights, stride=4)
    assert up.shape == (1, 3, 7, 5) and full.shape == (1, 3, 8, 8)
    assert torch.equal(
        up, full[..., 1:, 3:] if mode == 'reflect-top-left' else
        full[..., :7, :5])


def test_build_downsample_passes_the_stride():
    for name in ('TIPS', 'APS', 'LPS', 'BlurPool'):
        layer = build_downsample(name, 4, stride=4)
        assert layer.stride == 4
        assert layer(torch.randn(1, 4, 9, 9)).shape == (1, 4, 3, 3)
    assert build_downsample('APS', 4).stride == 2
    with pytest.raises(ValueError, match='drop stride from the cfg'):
        build_downsample(dict(type='TIPS', stride=2), 4, stride=4)


@pytest.mark.parametrize('bad', [0, -2, 1.5, '2', True, None])
def test_bad_stride_is_refused(bad):
    for build in (lambda: TIPS(3, stride=bad), lambda: APS(3, stride=bad),
                  lambda: LPS(3, stride=bad),
                  lambda: BlurPool(3, stride=bad),
                  lambda: build_downsample('TIPS', 3, stride=bad),
                  lambda: polyphase_split(torch.zeros(1, 1, 4, 4), bad)):
        if bad is None and 'build_downsample' in build.__code__.co_names:
            continue  # None there means "the cfg's stride"
        with pytest.raises(ValueError, match='stride must be an int >= 1'):
            build()


def test_unpool_refuses_weights_of_another_stride():
    with pytest.raises(ValueError, match='pass the stride'):
        polyphase_unpool(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 4),
                         stride=4)


@pytest.mark.parametrize('stride', [3, 4])
def test_layers_of_stride_s_export_to_onnx(stride):
    ort = pytest.importorskip('onnxruntime')
    for layer in (TIPS(4, stride=stride), APS(4, stride=stride),
                  LPS(4, hidden_channels=4, stride=stride,
                      odd_padding='zero-bottom-right'),
                  BlurPool(4, stride=stride)):
        layer = randomize(layer).eval()
        buffer = io.BytesIO()
        axes = {0: 'n', 2: 'h', 3: 'w'}
        torch.onnx.export(layer, (torch.randn(2, 4, 12, 12), ), buffer,
                          input_names=['x'], output_names=['y'],
                          dynamic_axes=dict(x=axes, y=axes),
                          opset_version=17, dynamo=False)
        session = ort.InferenceSession(buffer.getvalue(),
                                       providers=['CPUExecutionProvider'])
        for h, w in [(12, 12), (7, 9), (5, 6), (2, 5)]:
            x = torch.randn(2, 4, h, w)
            with torch.no_grad():
                want = layer(x)
            got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
            assert got.shape == want.shape, (type(layer).__name__, h, w)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
