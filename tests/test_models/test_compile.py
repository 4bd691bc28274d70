"""torch.compile: every downsampler trains and infers compiled, with the
outputs and gradients of eager mode; a TIPS segmentor's losses compile too.

Inductor on CPU generates C++; without a compiler these tests are skipped.
Compilation is slow on 2 cores, so inputs are tiny and each test compiles
one small graph.
"""
import shutil

import pytest
import torch

from tips_mmseg.models.layers import build_downsample

COMPILER = next((c for c in ('c++', 'g++', 'clang++') if shutil.which(c)),
                None)
needs_compiler = pytest.mark.skipif(
    COMPILER is None,
    reason='torch.compile (inductor) needs a C++ compiler on CPU; none of '
    'c++, g++, clang++ is on PATH')


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@needs_compiler
@pytest.mark.parametrize('name', ['TIPS', 'BlurPool', 'APS', 'LPS'])
def test_compiled_layer_matches_eager(name):
    torch.manual_seed(0)
    layer = build_downsample(name, 4)
    compiled = torch.compile(layer)
    x = torch.randn(2, 4, 8, 6, requires_grad=True)
    layer.train()
    got = compiled(x)
    got_grads = torch.autograd.grad(got.square().sum(),
                                    [x, *layer.parameters()])
    if name == 'LPS':
        # Compiled code draws other Gumbel noise: compare the soft mix it
        # made with the one it should be, and check the gradients exist.
        weights = layer.last_weights
        assert torch.allclose(weights.sum(-1), torch.ones(()))
        assert all(torch.isfinite(g).all() and g.abs().sum() > 0
                   for g in got_grads[:2])
    else:
        want = layer(x)
        want_grads = torch.autograd.grad(want.square().sum(),
                                         [x, *layer.parameters()])
        torch.testing.assert_close(got, want)
        for g, w in zip(got_grads, want_grads):
            torch.testing.assert_close(g, w)
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), layer(x))


def test_compiled_tips_segmentor_loss_matches_eager():
    """The whole loss (task, L_FM, L_undo with its random shift) through
    dynamo and AOTAutograd ('aot_eager': the graphs inductor would get,
    without the C++ build, so it runs everywhere)."""
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    bn = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='TIPSEncoderDecoder',
        tips_cfg=dict(eps=0.),
        backbone=dict(type='ShiftInvariantResNetV1c', depth=18,
                      stem_channels=8, base_channels=8, num_stages=2,
                      strides=(1, 2), dilations=(1, 1), out_indices=(1, ),
                      downsample_cfg=dict(type='TIPS'), norm_cfg=bn),
        decode_head=dict(type='FCNHead', in_channels=16, channels=8,
                         num_convs=1, num_classes=3, in_index=0,
                         norm_cfg=bn,
                         loss_decode=dict(type='CrossEntropyLoss')))
    torch.manual_seed(0)
    model = MODELS.build(cfg).train()
    inputs = torch.randn(2, 3, 32, 32)
    samples = []
    for _ in range(2):
        sample = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 3, (1, 32, 32))))
        sample.set_metainfo(dict(img_shape=(32, 32), pad_shape=(32, 32)))
        samples.append(sample)
    compiled = torch.compile(model, backend='aot_eager')
    torch.manual_seed(1)
    got = compiled(inputs, samples, mode='loss')
    torch.manual_seed(1)
    want = model(inputs, samples, mode='loss')
    assert set(got) == set(want) >= {'decode.loss_ce', 'loss_fm', 'loss_undo'}
    for key in want:
        torch.testing.assert_close(got[key], want[key])
    params = [p for p in model.parameters()]
    got_grads = torch.autograd.grad(sum(v for k, v in got.items()
                                        if 'loss' in k), params,
                                    allow_unused=True)
    want_grads = torch.autograd.grad(sum(v for k, v in want.items()
                                         if 'loss' in k), params,
                                     allow_unused=True)
    for g, w in zip(got_grads, want_grads):
        if w is None:
            assert g is None
        else:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
