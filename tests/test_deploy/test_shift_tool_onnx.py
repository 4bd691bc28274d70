"""tools/shift_consistency.py --onnx: the deployed model scored with the
same metrics as the PyTorch one."""
import pytest
import torch
from mmseg.registry import MODELS
from mmengine.registry import init_default_scope

pytest.importorskip('onnxruntime')

from tests.shift_toys import DATA_PREPROCESSOR, dataset_cfg, write_dataset  # noqa: E402,E501
from tips_mmseg.apis.export import export_onnx  # noqa: E402
from .test_export import randomize, save_checkpoint  # noqa: E402
from .test_unpool_export import unpool_model_cfg  # noqa: E402
from tests.helpers import load_tool  # noqa: E402


def test_shift_tool_gives_the_same_numbers_with_onnx(tmp_path, capsys):
    write_dataset(tmp_path / 'data', num_images=3)
    model_cfg = unpool_model_cfg('APS')
    model_cfg.update(data_preprocessor=DATA_PREPROCESSOR,
                     test_cfg=dict(mode='whole'))
    config = tmp_path / 'aps_circ_unpool.py'
    config.write_text(
        'custom_imports = dict(imports=["tips_mmseg"])\n'
        f'default_scope = "mmseg"\nmodel = {model_cfg!r}\n'
        f'test_dataloader = dict(batch_size=2, num_workers=0, '
        f'sampler=dict(type="DefaultSampler", shuffle=False), '
        f'dataset={dataset_cfg(tmp_path / "data")!r})\n'
        f'test_evaluator = dict(type="IoUMetric", ignore_index=255)\n')
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = randomize(MODELS.build(model_cfg)).eval()
    ckpt = save_checkpoint(model, str(tmp_path / 'model.pth'))
    onnx_file = export_onnx(model, str(tmp_path / 'model.onnx'),
                            shape=(32, 32), dynamic=True)

    tool = load_tool('shift_consistency')
    common = [str(config), ckpt, '--max-shift', '4', '--num-shifts', '3',
              '--heatmap-step', '0']
    torch_report = tool.main(common + ['--out', str(tmp_path / 'pt.json')])
    onnx_report = tool.main(common + ['--out', str(tmp_path / 'ort.json'),
                                      '--onnx', onnx_file])
    assert onnx_report['onnx'] == onnx_file
    assert onnx_report['num_images'] == torch_report['num_images'] == 3
    assert set(onnx_report['metrics']) == set(torch_report['metrics'])
    for key, value in torch_report['metrics'].items():
        assert onnx_report['metrics'][key] == pytest.approx(
            value, abs=1e-6), key
    # A circular-padding APS model with unpooling stays exactly consistent
    # under circular shifts once deployed; standard shifts are not free.
    assert onnx_report['metrics']['mASSC_circular'] == 100.0
    assert onnx_report['metrics']['mASSC'] < 100.0
