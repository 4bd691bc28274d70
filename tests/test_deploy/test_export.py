"""ONNX export of every toy config: onnxruntime agrees with PyTorch at even
and odd sizes from one dynamic graph; a graph that would not is refused."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

pytest.importorskip('onnxruntime')

from tips_mmseg.apis import export_rewriters  # noqa: E402
from tips_mmseg.apis.builders import build_segmentor  # noqa: E402
from tips_mmseg.apis.export import (DynamicExportError,  # noqa: E402
                                    ONNXSegmentor, compare_with_torch,
                                    export_onnx)
from tests.helpers import REPO_ROOT as ROOT, load_tool  # noqa: E402

VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')
SIZES = ((64, 64), (80, 96), (63, 65))
TOY = osp.join(ROOT, 'configs', 'toy')
#: Every config under configs/toy/ (not the _base_ files), by file stem.
TOY_CONFIGS = tuple(
    sorted(osp.splitext(osp.basename(p))[0]
           for p in glob.glob(osp.join(TOY, '*.py'))
           if not osp.basename(p).startswith('_')))

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


def tiny_options(name):
    """--cfg-options shrinking toy config ``name`` (the DeepLabV3+ ones;
    the SegFormer ones are small as they are)."""
    return dict(TINY) if name.startswith('deeplabv3plus') else {}


def toy_file(name):
    return osp.join(TOY, f'{name}.py')


def toy_config(variant, tiny=True):
    """A DeepLabV3+ toy config (tiny widths by default)."""
    cfg = Config.fromfile(
        toy_file(f'deeplabv3plus_r18-d8-{variant}_toy-64x64'))
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


@pytest.fixture(scope='module', params=TOY_CONFIGS)
def exported(request, tmp_path_factory):
    """(config name, PyTorch model loaded from a checkpoint, dynamic .onnx)
    - exported once per session through tools/export_onnx.py."""
    main = load_tool('export_onnx').main
    name = request.param
    work = tmp_path_factory.mktemp(f'onnx_{name}')
    cfg = Config.fromfile(toy_file(name))
    cfg.merge_from_dict(tiny_options(name))
    torch.manual_seed(0)
    ckpt = save_checkpoint(randomize(build_segmentor(cfg)),
                           str(work / 'model.pth'))
    out = str(work / f'{name}.onnx')
    options = [f'{k}={v}' for k, v in tiny_options(name).items()]
    result = main([toy_file(name), ckpt, '--out', out, '--dynamic'] +
                  (['--cfg-options', *options] if options else []))
    assert result['rel'] < 1e-3
    return name, cfg, build_segmentor(cfg, ckpt), out


def test_every_toy_config_is_exported():
    """The export suite follows configs/toy/ (both families)."""
    assert {'segformer_mit-b0-vanilla_toy-64x64',
            'segformer_mit-b0-tips_toy-64x64'} <= set(TOY_CONFIGS)
    assert {f'deeplabv3plus_r18-d8-{v}_toy-64x64'
            for v in VARIANTS} <= set(TOY_CONFIGS)


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_onnxruntime_matches_pytorch(exported, size):
    name, _, model, onnx_file = exported
    inputs = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(
        size[0] * 1000 + size[1]))
    result = compare_with_torch(model, onnx_file, inputs)
    assert result['shape'] == (2, 5) + size
    assert result['rel'] <= 1e-3, (name, size, result)
    assert result['argmax_agreement'] >= 0.999, (name, size, result)


def test_checkpoint_weights_are_in_the_graph(exported):
    """The graph carries the checkpoint's weights, not a fresh init."""
    _, cfg, model, onnx_file = exported
    fresh = build_segmentor(cfg)
    inputs = torch.randn(1, 3, 64, 64)
    ours = ONNXSegmentor(onnx_file, model).encode_decode(inputs)
    with torch.no_grad():
        theirs = fresh.encode_decode(inputs, [dict(img_shape=(64, 64))])
    assert (ours - theirs).abs().max() > 1e-2


@pytest.mark.parametrize('name', TOY_CONFIGS)
def test_tool_exports_the_initialized_model_static(name, tmp_path, capsys):
    main = load_tool('export_onnx').main
    out = str(tmp_path / 'static.onnx')
    options = [f'{k}={v}' for k, v in tiny_options(name).items()]
    result = main([toy_file(name), '--out', out, '--shape', '32', '48'] +
                  (['--cfg-options', *options] if options else []))
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


class ReshapesToTracedSize(nn.Module):
    """Flattens and unflattens with the size as Python ints: the graph
    holds the traced size in a Reshape."""

    def forward(self, x):
        h, w = int(x.shape[2]), int(x.shape[3])
        return x.flatten(2).reshape(x.shape[0], x.shape[1], h, w)


class ScalesByTracedWidth(nn.Module):
    """Scales by the width as a Python float: the graph runs at any size
    but keeps the traced width's scale."""

    def forward(self, x):
        return x * float(x.shape[-1])


def with_module_before_layer1(module):
    """The tiny vanilla DeepLabV3+ with ``module`` run before the
    backbone's layer1 (so it is named ``backbone.layer1.0``)."""
    model = randomize(build_segmentor(toy_config('vanilla'))).eval()
    model.backbone.layer1 = nn.Sequential(module, model.backbone.layer1)
    return model


def test_a_graph_failing_at_another_size_is_refused(tmp_path):
    model = with_module_before_layer1(ReshapesToTracedSize())
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'an older export')
    with pytest.raises(DynamicExportError) as info:
        export_onnx(model, str(out), shape=(64, 64), dynamic=True)
    message = str(info.value)
    assert "module 'backbone.layer1.0'" in message
    assert 'ReshapesToTracedSize' in message
    assert 'fails in onnxruntime at 2x81x97' in message
    assert 'without --dynamic' in message
    # Nothing written: the older file is as it was, no temporary is left.
    assert out.read_bytes() == b'an older export'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.onnx']
    # The same model exports static (the graph is right at its size).
    export_onnx(model, str(out), shape=(64, 64), dynamic=False)
    result = compare_with_torch(model, str(out), torch.randn(1, 3, 64, 64))
    assert result['rel'] <= 1e-3


def test_a_graph_wrong_at_another_size_is_refused(tmp_path):
    model = with_module_before_layer1(ScalesByTracedWidth())
    out = tmp_path / 'model.onnx'
    with pytest.raises(DynamicExportError) as info:
        export_onnx(model, str(out), shape=(64, 64), dynamic=True)
    message = str(info.value)
    assert 'runs but disagrees with PyTorch' in message
    # The culprit, from the trace's warning: module, class and line.
    assert 'backbone.layer1.0 (ScalesByTracedWidth)' in message
    assert f'{osp.basename(__file__)}:' in message
    assert 'Python float' in message
    assert not out.exists()


def test_the_check_can_be_skipped(tmp_path):
    """check_dynamic=False writes the graph as traced (for models that do
    not take a second size); it is then wrong elsewhere, as refused above."""
    model = with_module_before_layer1(ScalesByTracedWidth())
    out = str(tmp_path / 'model.onnx')
    export_onnx(model, out, shape=(64, 64), dynamic=True,
                check_dynamic=False)
    assert compare_with_torch(model, out, torch.randn(
        1, 3, 64, 64))['rel'] <= 1e-3
    assert compare_with_torch(model, out, torch.randn(
        1, 3, 80, 96))['rel'] > 1e-3


def test_segformer_without_its_rewrite_is_refused_by_the_tool(
        tmp_path, capsys, monkeypatch):
    """MiT's attention (torch's MultiheadAttention) traced as torch writes
    it keeps the traced sequence length: the tool refuses the model, names
    the module and writes no file."""
    monkeypatch.delitem(export_rewriters.REWRITES, nn.MultiheadAttention)
    out = tmp_path / 'segformer.onnx'
    main = load_tool('export_onnx').main
    assert main([toy_file('segformer_mit-b0-vanilla_toy-64x64'), '--out',
                 str(out), '--shape', '64', '64', '--dynamic']) is False
    err = capsys.readouterr().err
    assert err.startswith('error: --dynamic export refused')
    assert ("module 'backbone.layers.0.1.0.attn.attn' "
            '(torch.nn.modules.activation.MultiheadAttention)') in err
    assert not out.exists()
