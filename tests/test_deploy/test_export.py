"""ONNX export of every toy variant: onnxruntime agrees with PyTorch at even
and odd sizes from one dynamic graph."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

pytest.importorskip('onnxruntime')

from tips_mmseg.apis.builders import build_segmentor  # noqa: E402
from tips_mmseg.apis.export import (ONNXSegmentor,  # noqa: E402
                                    compare_with_torch, export_onnx)
from tests.helpers import REPO_ROOT as ROOT, load_tool  # noqa: E402

VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')
SIZES = ((64, 64), (80, 96), (63, 65))

#: The toy configs at tiny widths (same structure, 8x fewer channels).
TINY = {
    'model.backbone.base_channels': 8,
    'model.backbone.stem_channels': 8,
    'model.decode_head.in_channels': 64,
    'model.decode_head.channels': 16,
    'model.decode_head.c1_in_channels': 8,
    'model.decode_head.c1_channels': 4,
    'model.auxiliary_head.in_channels': 32,
    'model.auxiliary_head.channels': 8,
}


def toy_config(variant, tiny=True):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'toy',
                 f'deeplabv3plus_r18-d8-{variant}_toy-64x64.py'))
    if tiny:
        cfg.merge_from_dict(TINY)
    return cfg


def randomize(model, seed=0):
    """Weights and BN statistics far from their init, so the logits span
    a real range and their argmax is not a tie."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if name.endswith('running_var'):
                tensor.copy_(0.5 + noise.abs())
            elif name.endswith('weight') and tensor.dim() == 1:
                tensor.copy_(1 + 0.2 * noise)
            else:
                tensor.add_(0.1 * noise)
    return model


def save_checkpoint(model, path):
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module', params=VARIANTS)
def exported(request, tmp_path_factory):
    """(variant, PyTorch model loaded from a checkpoint, dynamic .onnx) -
    exported once per session through tools/export_onnx.py."""
    main = load_tool('export_onnx').main
    variant = request.param
    work = tmp_path_factory.mktemp(f'onnx_{variant}')
    cfg = toy_config(variant)
    torch.manual_seed(0)
    ckpt = save_checkpoint(randomize(build_segmentor(cfg)),
                           str(work / 'model.pth'))
    out = str(work / f'{variant}.onnx')
    options = ' '.join(f'{k}={v}' for k, v in TINY.items()).split()
    result = main([
        osp.join(ROOT, 'configs', 'toy',
                 f'deeplabv3plus_r18-d8-{variant}_toy-64x64.py'), ckpt,
        '--out', out, '--dynamic', '--cfg-options', *options
    ])
    assert result['rel'] < 1e-3
    return variant, build_segmentor(cfg, ckpt), out


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_onnxruntime_matches_pytorch(exported, size):
    variant, model, onnx_file = exported
    inputs = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(
        size[0] * 1000 + size[1]))
    result = compare_with_torch(model, onnx_file, inputs)
    assert result['shape'] == (2, 5) + size
    assert result['rel'] <= 1e-3, (variant, size, result)
    assert result['argmax_agreement'] >= 0.999, (variant, size, result)


def test_checkpoint_weights_are_in_the_graph(exported):
    """The graph carries the checkpoint's weights, not a fresh init."""
    variant, model, onnx_file = exported
    fresh = build_segmentor(toy_config(variant))
    inputs = torch.randn(1, 3, 64, 64)
    ours = ONNXSegmentor(onnx_file, model).encode_decode(inputs)
    with torch.no_grad():
        theirs = fresh.encode_decode(inputs, [dict(img_shape=(64, 64))])
    assert (ours - theirs).abs().max() > 1e-2


@pytest.mark.parametrize('variant', VARIANTS)
def test_tool_exports_the_initialized_model_static(variant, tmp_path,
                                                   capsys):
    main = load_tool('export_onnx').main
    out = str(tmp_path / 'static.onnx')
    options = ' '.join(f'{k}={v}' for k, v in TINY.items()).split()
    result = main([
        osp.join(ROOT, 'configs', 'toy',
                 f'deeplabv3plus_r18-d8-{variant}_toy-64x64.py'), '--out',
        out, '--shape', '32', '48', '--cfg-options', *options
    ])
    assert result['shape'] == (1, 5, 32, 48)
    assert result['rel'] <= 1e-3
    assert 'onnxruntime vs PyTorch' in capsys.readouterr().out
    import onnx
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 32, 48]


def test_export_rejects_a_bad_shape(tmp_path):
    model = build_segmentor(toy_config('vanilla'))
    with pytest.raises(ValueError, match='H, W >= 1'):
        export_onnx(model, str(tmp_path / 'x.onnx'), shape=(0, 64))


def test_missing_onnx_file_is_a_clear_error(tmp_path):
    model = build_segmentor(toy_config('vanilla'))
    with pytest.raises(FileNotFoundError, match='export_onnx.py'):
        ONNXSegmentor(str(tmp_path / 'none.onnx'), model)


def test_onnx_segmentor_runs_slide_inference_like_pytorch(tmp_path):
    """Slide mode: a static graph at the crop size, slid by mmseg's own
    slide_inference, gives PyTorch's slide logits."""
    cfg = toy_config('aps')
    cfg.model.test_cfg = dict(mode='slide', crop_size=(32, 32),
                              stride=(24, 24))
    model = randomize(build_segmentor(cfg))
    onnx_file = export_onnx(model, str(tmp_path / 'crop.onnx'),
                            shape=(32, 32), dynamic=False)
    inputs = torch.randn(1, 3, 48, 64)
    metas = [dict(img_shape=(48, 64), ori_shape=(48, 64))]
    with torch.no_grad():
        want = model.inference(inputs, [dict(m) for m in metas])
    got = ONNXSegmentor(onnx_file, model).inference(inputs,
                                                    [dict(m) for m in metas])
    assert got.shape == want.shape == (1, 5, 48, 64)
    span = (want.max() - want.min()).item()
    assert (got - want).abs().max().item() <= 1e-3 * span
