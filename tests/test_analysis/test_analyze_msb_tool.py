"""tools/analyze_msb.py end to end on a tiny on-disk dataset and ResNetV1c."""
import json

import numpy as np
import pytest
from PIL import Image

from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS
from tests.helpers import load_tool
from tips_mmseg.analysis import analyze_msb, format_msb_table
from tips_mmseg.visualization import plot_msb

NUM_FILES = 4

# Every strided conv / pool of ResNetV1c-18 (see test_msb_recorder.py).
RESNET18_DOWNSAMPLERS = {'backbone.stem.0', 'backbone.maxpool'} | {
    f'backbone.layer{stage}.0.{name}'
    for stage in (2, 3, 4) for name in ('conv1', 'downsample.0')
}

CONFIG = """
norm_cfg = dict(type='BN', requires_grad=True)
default_scope = 'mmseg'
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.7, 116.3, 103.5],
        std=[58.4, 57.1, 57.4], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(
        type='ResNetV1c', depth=18, base_channels=8, stem_channels=8,
        out_indices=(3, ), norm_cfg=norm_cfg),
    decode_head=dict(
        type='FCNHead', in_channels=64, in_index=0, channels=8, num_convs=1,
        concat_input=False, num_classes=2, norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
val_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BaseSegDataset', data_root={data_root!r},
        metainfo=dict(classes=('background', 'object'),
                      palette=[[0, 0, 0], [255, 255, 255]]),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        img_suffix='.jpg', seg_map_suffix='.png',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ]))
"""


@pytest.fixture
def tiny_config(tmp_path):
    """A config file whose val set is NUM_FILES 32x32 images on disk."""
    rng = np.random.default_rng(0)
    for folder in ('img', 'ann'):
        (tmp_path / 'data' / folder).mkdir(parents=True)
    for index in range(NUM_FILES):
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / 'data' / 'img' / f'{index}.jpg')
        mask = (rng.random((32, 32)) > 0.5).astype(np.uint8)
        Image.fromarray(mask).save(tmp_path / 'data' / 'ann' / f'{index}.png')
    config = tmp_path / 'tiny_msb.py'
    config.write_text(CONFIG.format(data_root=str(tmp_path / 'data')))
    return config


def test_tool_writes_json_table_and_png(tiny_config, tmp_path, capsys):
    out = tmp_path / 'result' / 'msb.json'
    load_tool('analyze_msb').main([
        str(tiny_config), '--num-images', '3', '--out', str(out),
        '--device', 'cpu'
    ])
    result = json.loads(out.read_text())
    assert set(result) >= {'layers', 'mean', 'num_images'}
    assert result['num_images'] == 3  # batches of 2: the second one is cut
    assert set(result['mean']) == {'msb_pixel', 'msb_soft', 'msb_phase'}
    names = {layer['name'] for layer in result['layers']}
    assert names == RESNET18_DOWNSAMPLERS
    for layer in result['layers']:
        assert set(layer) >= {'name', 'type', 'msb_pixel', 'msb_soft',
                              'msb_phase'}
        assert layer['type'] in ('Conv2d', 'MaxPool2d')
        assert 0 <= layer['msb_pixel'] <= 1 and 0 <= layer['msb_soft'] <= 1
        # Strided convs have a (fixed) phase, the max-pool has none.
        assert (layer['msb_phase'] is None) == (layer['type'] == 'MaxPool2d')
    maxpool = next(layer for layer in result['layers']
                   if layer['name'] == 'backbone.maxpool')
    assert maxpool['msb_pixel'] == 1.0
    png = out.with_suffix('.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    printed = capsys.readouterr().out
    assert 'backbone.layer2.0.downsample.0' in printed
    assert 'mean (by output elements)' in printed


def test_analyze_msb_function_counts_images_and_restores_mode(tiny_config):
    from mmengine.config import Config
    cfg = Config.fromfile(str(tiny_config))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.train()
    dataloader = Runner.build_dataloader(cfg.val_dataloader)
    result = analyze_msb(model, dataloader, show_progress=False)
    assert result['num_images'] == NUM_FILES
    assert model.training  # mode restored
    # The mean lies within the layers' range.
    pixels = [layer['msb_pixel'] for layer in result['layers']]
    assert min(pixels) <= result['mean']['msb_pixel'] <= max(pixels)
    table = format_msb_table(result)
    assert len(table.splitlines()) == len(result['layers']) + 4
    with pytest.raises(ValueError, match='num_images'):
        analyze_msb(model, dataloader, num_images=0)
    with pytest.raises(ValueError, match='no images'):
        analyze_msb(model, [], show_progress=False)


def test_plot_msb_draws_layers_with_missing_values(tmp_path):
    result = dict(
        layers=[
            dict(name='pool', type='MaxPool2d', msb_pixel=1.0, msb_soft=1.0,
                 msb_phase=None),
            dict(name='aps', type='APS', msb_pixel=0.4, msb_soft=0.6,
                 msb_phase=1.0),
        ],
        mean=dict(msb_pixel=0.7, msb_soft=0.8, msb_phase=1.0))
    path = plot_msb(result, str(tmp_path / 'sub' / 'bars.png'), title='t')
    assert path.endswith('bars.png')
    assert open(path, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
