"""Known answers of every protocol, through mmseg's own test loop, with the
segmentor wrapped in ShiftTTAModel and ShiftConsistencyMetric beside
IoUMetric (no hook).

* A pixel-wise segmentor (a 1x1 classifier on an identity backbone) sees
  each pixel alone: every integer protocol (standard, circular, crop and
  the boundary band) scores exactly 100.
* A segmentor that predicts the pixel parity ``(i + j) % 2`` whatever the
  input scores 0 for odd shifts (``dh + dw`` odd) and 100 for even ones.
* Sub-pixel shifts resample the image, so even the pixel-wise model is not
  exactly consistent: on these 32x32 test images with 5 shifts drawn per
  image from (-1, 1)^2 (seed 0, seeded by file name) it scores 99.05%
  (98.99% with the draws seeded by dataset index, ``sample_idx`` packed).
"""
import logging

import pytest
from mmengine.runner import Runner

from tests.shift_toys import (build_model, parity_model_cfg,
                              pixelwise_model_cfg, runner_cfg, write_dataset)
from tips_mmseg.evaluation import ALL_SHIFT_METRIC_KEYS, EVAL_MODES

INTEGER_KEYS = ('mASSC', 'mASSC_circular', 'mASSC_worst', 'mASSC_boundary',
                'mASSC_crop')


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('known')
    write_dataset(root / 'data')
    return root


def run_test(root, model, name, hook, **kwargs):
    return Runner(**runner_cfg(
        root / 'data', root / name, model, 2, hook, via='metric',
        experiment_name=name, **kwargs)).test()


@pytest.mark.parametrize('test_cfg', [
    None, dict(mode='slide', crop_size=(12, 12), stride=(8, 8))
], ids=['whole', 'slide'])
def test_pixelwise_segmentor_scores_100_in_every_integer_protocol(
        dataset, test_cfg):
    model = build_model(pixelwise_model_cfg(test_cfg))
    metrics = run_test(dataset, model, 'pixelwise',
                       dict(max_shift=8, modes=EVAL_MODES))
    assert set(ALL_SHIFT_METRIC_KEYS) <= set(metrics)
    for key in INTEGER_KEYS:
        assert metrics[key] == 100.0, key
    assert metrics['mIoU'] < 50  # random weights: not a trivial model
    # resampling is not exact, but a pixel-wise model stays close: 99.05
    assert 97.0 < metrics['mASSC_subpixel'] < 100.0


@pytest.mark.parametrize('pack_index,stated', [(False, 99.05),
                                               (True, 98.99)])
def test_pixelwise_subpixel_number_is_the_stated_one(dataset, pack_index,
                                                     stated):
    model = build_model(pixelwise_model_cfg())
    metrics = run_test(dataset, model, 'pixelwise_sub',
                       dict(modes=('subpixel', )), pack_index=pack_index)
    assert metrics['mASSC_subpixel'] == pytest.approx(stated, abs=0.005)
    assert set(metrics) == {'aAcc', 'mIoU', 'mAcc', 'mASSC_subpixel'}


@pytest.mark.parametrize('shifts,expected', [
    ([(0, 1)], 0.0), ([(1, 0), (3, -2), (0, -5)], 0.0),
    ([(1, 1)], 100.0), ([(2, 0), (-3, 1), (4, -6)], 100.0)
])
def test_parity_segmentor_fails_odd_shifts_only(dataset, shifts, expected):
    model = build_model(parity_model_cfg())
    metrics = run_test(dataset, model, 'parity',
                       dict(shifts=shifts, modes=('standard', 'crop',
                                                  'circular')))
    for key in INTEGER_KEYS:  # 32 px is even: rolls keep the parity too
        assert metrics[key] == expected, key


def test_parity_mixed_shifts_average_and_worst(dataset):
    model = build_model(parity_model_cfg())
    metrics = run_test(dataset, model, 'parity_mix',
                       dict(shifts=[(0, 1), (1, 1), (2, 3), (2, 2)],
                            modes=('standard', 'crop')))
    assert metrics['mASSC'] == metrics['mASSC_crop'] == 50.0
    assert metrics['mASSC_worst'] == 0.0
    assert metrics['mASSC_std'] == 50.0


def test_single_class_model_is_warned_about(dataset):
    model = build_model(pixelwise_model_cfg())
    model.decode_head.conv_seg.weight.data.zero_()
    model.decode_head.conv_seg.bias.data[:] = 0
    model.decode_head.conv_seg.bias.data[2] = 1  # class 'c' everywhere
    runner = Runner(**runner_cfg(dataset / 'data', dataset / 'single', model,
                                 2, dict(max_shift=4), via='metric'))
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    runner.logger.addHandler(handler)
    try:
        metrics = runner.test()
    finally:
        runner.logger.removeHandler(handler)
    assert metrics['mASSC'] == 100.0
    warned = [m for m in messages if 'trivially' in m]
    assert len(warned) == 1 and "class 'c' on 100.0%" in warned[0]
