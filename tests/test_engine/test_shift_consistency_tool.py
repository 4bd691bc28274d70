"""tools/shift_consistency.py on a toy config: JSON, table and heatmap PNG."""
import json

import pytest
from PIL import Image

import tests.shift_toys  # noqa: F401  (registers the toy modules)
from tests.helpers import load_tool
from tests.shift_toys import dataset_cfg, head, write_dataset


def test_tool_writes_json_and_heatmap(tmp_path, capsys):
    write_dataset(tmp_path / 'data', num_images=3)
    model = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(1, ),
                      norm_cfg=dict(type='SyncBN', requires_grad=True)),
        decode_head=head(16),
        test_cfg=dict(mode='whole'))
    config = tmp_path / 'toy.py'
    config.write_text(
        f'default_scope = "mmseg"\nmodel = {model!r}\n'
        f'test_dataloader = dict(batch_size=2, num_workers=0, '
        f'sampler=dict(type="DefaultSampler", shuffle=False), '
        f'dataset={dataset_cfg(tmp_path / "data")!r})\n'
        f'test_evaluator = dict(type="IoUMetric", ignore_index=255)\n')
    out = tmp_path / 'out' / 'shift.json'
    report = load_tool('shift_consistency').main([
        str(config), '--max-shift', '4', '--num-shifts', '2',
        '--heatmap-step', '2', '--num-images', '2', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'mASSC_circular' in printed and 'shift_mIoU' in printed
    saved = json.loads(out.read_text())
    assert saved['num_images'] == 2 == report['num_images']
    assert saved['metrics']['mASSC'] == pytest.approx(
        report['metrics']['mASSC'])
    assert saved['heatmap']['axis'] == [-4, -2, 0, 2, 4]
    grid = saved['heatmap']['grid']
    assert grid[2][2] == 100.0  # (0, 0) always agrees with itself
    png = tmp_path / 'out' / 'shift_map.png'
    assert Image.open(png).size[0] > 100


def test_tool_runs_every_protocol_with_classes_and_any_map(tmp_path,
                                                           capsys):
    write_dataset(tmp_path / 'data', num_images=2)
    model = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ToyIdentityBackbone'),
        decode_head=dict(head(3), channels=3, num_convs=0),
        test_cfg=dict(mode='whole'))
    config = tmp_path / 'pixelwise.py'
    config.write_text(
        f'default_scope = "mmseg"\n'
        f'model = {model!r}\n'
        f'test_dataloader = dict(batch_size=2, num_workers=0, '
        f'sampler=dict(type="DefaultSampler", shuffle=False), '
        f'dataset={dataset_cfg(tmp_path / "data")!r})\n'
        f'test_evaluator = dict(type="IoUMetric", ignore_index=255)\n')
    tool = load_tool('shift_consistency')
    out = tmp_path / 'all.json'
    report = tool.main([
        str(config), '--max-shift', '4', '--num-shifts', '2', '--modes',
        'standard', 'circular', 'crop', 'subpixel', '--subpixel-shifts',
        '0.5,0', '0,-0.25', '--heatmap-mode', 'crop', '--heatmap-step', '2',
        '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'mASSC_crop' in printed and 'mASSC_subpixel' in printed
    assert 'consistency per ground-truth class' in printed
    assert 'most predicted class' in printed
    saved = json.loads(out.read_text())
    # 1x1 convolutions on the raw image: every integer protocol is exact
    for key in ('mASSC', 'mASSC_circular', 'mASSC_crop', 'mASSC_boundary'):
        assert saved['metrics'][key] == 100.0, key
    assert set(saved['class_consistency']) == {'a', 'b', 'c'}
    assert saved['settings']['subpixel_shifts'] == [[0.5, 0.0], [0.0, -0.25]]
    assert saved['heatmap']['mode'] == 'crop'
    assert saved['heatmap']['grid'] == [[100.0] * 5] * 5
    assert 0 < saved['dominant_class']['share'] < 100
    sub = tool.main([
        str(config), '--modes', 'subpixel', '--heatmap-mode', 'subpixel',
        '--heatmap-max-shift', '0.5', '--out', str(tmp_path / 'sub.json')])
    assert sub['heatmap']['axis'] == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert sub['heatmap']['grid'][2][2] == 100.0  # no shift: identical
    assert (tmp_path / 'sub_map.png').exists()
