"""The layers' export paths: one traced graph is right at every size.

A trace at an even size records no Python decision that depends on the
size, so running it at odd sizes gives what the eager layer gives.
"""
import io

import pytest
import torch

import tips_mmseg  # noqa: F401
from tips_mmseg.models.layers import APS, LPS, TIPS, BlurPool
from tips_mmseg.models.layers import polyphase
from tips_mmseg.models.layers.polyphase import (ODD_PADDING_MODES,
                                                pad_to_even,
                                                pad_to_even_graph)

SIZES = [(1, 1), (1, 4), (3, 1), (2, 2), (5, 4), (4, 7), (7, 9), (8, 8)]


class PadToEven(torch.nn.Module):

    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        return pad_to_even(x, self.mode)


def reference_pad(x, mode):
    """Loop-by-loop odd padding, from the definition of each mode."""
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h + h % 2, w + w % 2)
    ph, pw = h % 2, w % 2
    for i in range(h + ph):
        for j in range(w + pw):
            if mode == 'reflect-top-left':
                si, sj = i - ph, j - pw
                if min(h, w) > 1:
                    si, sj = abs(si), abs(sj)
                else:  # replicate
                    si, sj = max(si, 0), max(sj, 0)
                out[..., i, j] = x[..., si, sj]
            elif mode == 'circular-bottom-right':
                out[..., i, j] = x[..., i % h, j % w]
            elif i < h and j < w:  # zero-bottom-right
                out[..., i, j] = x[..., i, j]
    return out


@pytest.mark.parametrize('mode', ODD_PADDING_MODES)
def test_graph_padding_equals_eager_and_definition(mode):
    for h, w in SIZES:
        x = torch.randn(2, 3, h, w)
        want = reference_pad(x, mode)
        assert torch.equal(pad_to_even(x, mode), want), (h, w)
        assert torch.equal(pad_to_even_graph(x, mode), want), (h, w)


@pytest.mark.parametrize('mode', ODD_PADDING_MODES)
def test_padding_traced_at_even_size_is_right_at_odd_sizes(mode):
    traced = torch.jit.trace(PadToEven(mode), torch.randn(1, 2, 6, 6))
    for h, w in SIZES:
        x = torch.randn(1, 2, h, w)
        assert torch.equal(traced(x), reference_pad(x, mode)), (h, w)


def layers():
    yield 'BlurPool', BlurPool(4, filter_size=3)
    yield 'BlurPool-4', BlurPool(4, filter_size=4)
    for pad_mode in ('replicate', 'circular', 'zeros'):
        yield f'BlurPool-5-{pad_mode}', BlurPool(4, filter_size=5,
                                                 pad_mode=pad_mode)
    for mode in ODD_PADDING_MODES:
        yield f'APS-{mode}', APS(4, odd_padding=mode)
        yield f'LPS-{mode}', LPS(4, hidden_channels=4, odd_padding=mode)
    yield 'APS-filter3', APS(4, filter_size=3)
    yield 'LPS-compact-filter4', LPS(4, hidden_channels=4, scorer='compact',
                                     filter_size=4)
    yield 'TIPS', TIPS(4)
    yield 'TIPS-release-circular', TIPS(
        4, tau_pairing='release', odd_padding='circular-bottom-right')


LAYERS = dict(layers())


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_layer_exported_once_runs_at_every_size(name):
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    layer = LAYERS[name].eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    buffer = io.BytesIO()
    axes = {0: 'n', 2: 'h', 3: 'w'}
    torch.onnx.export(layer, (torch.randn(2, 4, 8, 8), ), buffer,
                      input_names=['x'], output_names=['y'],
                      dynamic_axes=dict(x=axes, y=axes), opset_version=17,
                      dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(),
                                   providers=['CPUExecutionProvider'])
    for h, w in [(8, 8), (7, 9), (5, 6), (3, 3), (2, 5)]:
        x = torch.randn(2, 4, h, w)
        with torch.no_grad():
            want = layer(x)
        got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        assert got.shape == want.shape, (h, w)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5,
                                   msg=f'{name} at {h}x{w}')


def test_tips_eval_forward_skips_the_autograd_function(monkeypatch):
    """The custom Function (which exporters cannot trace) runs only when a
    gradient is wanted; both paths give the same values."""
    tips = TIPS(4)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        plain = tips.eval()(x)

    def refuse(*args):
        raise AssertionError('_MixPhases used')

    with monkeypatch.context() as m:
        m.setattr(polyphase._MixPhases, 'apply', refuse)
        with torch.no_grad():
            assert torch.equal(tips(x), plain)
        with pytest.raises(AssertionError, match='_MixPhases used'):
            tips(x.requires_grad_())
    assert torch.equal(tips(x).detach(), plain)
