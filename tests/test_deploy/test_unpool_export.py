"""The circular-padding APS DeepLabV3+ with unpooling, deployed: onnxruntime
keeps its exact circular equivariance at even and odd sizes."""
import pytest
import torch
from mmseg.registry import MODELS

pytest.importorskip('onnxruntime')

import tips_mmseg  # noqa: F401,E402
from tips_mmseg.apis.export import (ONNXSegmentor,  # noqa: E402
                                    compare_with_torch, export_onnx)
from .test_export import randomize  # noqa: E402

BN = dict(type='BN', requires_grad=True)


def unpool_model_cfg(down='APS'):
    """As configs/deeplabv3plus/*-aps-circ-unpool_* (R18-D8), tiny widths."""
    return dict(
        type='TIPSEncoderDecoder',
        data_preprocessor=dict(type='mmseg.SegDataPreProcessor'),
        backbone=dict(type='ShiftInvariantResNetV1c', depth=18,
                      stem_channels=8, base_channels=8,
                      downsample_cfg=dict(type=down), circular_padding=True,
                      norm_cfg=BN),
        decode_head=dict(type='UnpoolDepthwiseSeparableASPPHead',
                         circular_padding=True, in_channels=64, in_index=3,
                         channels=16, dilations=(1, 2, 4, 6),
                         c1_in_channels=8, c1_channels=4, num_classes=3,
                         norm_cfg=BN, dropout_ratio=0.1,
                         loss_decode=dict(type='CrossEntropyLoss')))


@pytest.fixture(scope='module', params=['APS', 'LPS'])
def unpool_exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = randomize(MODELS.build(unpool_model_cfg(request.param))).eval()
    out = str(tmp_path_factory.mktemp('unpool') / 'unpool.onnx')
    export_onnx(model, out, shape=(64, 64), dynamic=True)
    return model, out


@pytest.mark.parametrize('size', [(64, 64), (80, 96), (63, 65)],
                         ids=lambda s: f'{s[0]}x{s[1]}')
def test_unpool_head_onnx_matches_pytorch(unpool_exported, size):
    model, onnx_file = unpool_exported
    result = compare_with_torch(model, onnx_file, torch.randn(2, 3, *size))
    assert result['shape'] == (2, 3) + size
    assert result['rel'] <= 1e-3, result
    assert result['argmax_agreement'] >= 0.999, result


@pytest.mark.parametrize('size', [(64, 64), (64, 96)])
def test_deployed_unpool_model_is_circularly_equivariant(unpool_exported,
                                                         size):
    model, onnx_file = unpool_exported
    runner = ONNXSegmentor(onnx_file, model)
    x = torch.randn(1, 3, *size)
    ref = runner.encode_decode(x)
    for shift in [(1, 0), (0, 3), (5, -7)]:
        out = runner.encode_decode(torch.roll(x, shift, dims=(2, 3)))
        torch.testing.assert_close(
            out, torch.roll(ref, shift, dims=(2, 3)), rtol=1e-4, atol=1e-4)
        assert torch.equal(out.argmax(1),
                           torch.roll(ref, shift, dims=(2, 3)).argmax(1))
