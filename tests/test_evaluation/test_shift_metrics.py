import math

import numpy as np
import pytest
import torch

from tips_mmseg.evaluation.shift_metrics import (compute_shift_metrics,
                                                 consistency_by_shift,
                                                 score_shifts)


def test_consistency_compares_overlap_only():
    pred = torch.tensor([[0, 1, 2], [0, 1, 2]])
    shifted = torch.tensor([[5, 0, 1], [5, 0, 9]])  # shift (0, 1), 1 error
    rolled = torch.roll(pred, (0, 1), (0, 1))
    # overlap: columns 1..2 of shifted vs 0..1 of pred: 3 of 4 agree
    scores = score_shifts(pred, [shifted, rolled], [(0, 1), (0, 1)],
                          'standard')
    assert scores['consistency'].tolist() == [0.75, 1.0]
    assert set(scores) == {'consistency'}  # no gt: nothing else
    circular = score_shifts(pred, [rolled], [(0, 1)], 'circular')
    assert circular['consistency'].tolist() == [1.0]


def test_fidelity_and_iou_skip_ignored_pixels():
    pred = torch.tensor([[0, 1, 2, 2]])
    shifted = torch.tensor([[0, 0, 1, 2]])  # shift (0, 1), consistent
    gt = torch.tensor([[0, 1, 1, 255]])
    scores = score_shifts(pred, [shifted, shifted], [(0, 1), (0, 3)],
                          'standard', gt, 255, num_classes=3)
    # (0, 1): sources columns 0..2, all valid, correct at 0 and 1
    assert scores['fidelity'][0] == pytest.approx(2 / 3)
    # (0, 3): source column 0 only; y_d(0, 3) = 2 != y(0, 0) = 0
    assert scores['fidelity'][1] == 0.0
    inter, union, area_pred, area_label = (a.tolist()
                                           for a in scores['areas'])
    # brought back: (0, 1) gives [0, 1, 2] on gt [0, 1, 1]; (0, 3): [2] on [0]
    assert area_label == [2, 2, 0] and area_pred == [1, 1, 2]
    assert inter == [1, 1, 0] and union == [2, 2, 2]
    all_ignored = score_shifts(pred, [shifted], [(0, 1)], 'standard',
                               torch.full_like(gt, 255), 255, 3)
    assert math.isnan(all_ignored['fidelity'][0])


def _record(index, standard, shifts=((0, 1), (1, 0))):
    areas = [torch.tensor([1., 1.])] * 4
    return dict(
        index=index,
        shifts=list(shifts),
        standard=np.array(standard),
        circular=np.array(standard) / 2,
        fidelity=np.array([0.5, np.nan]),
        areas=areas)


def test_reduction_to_reported_keys():
    metrics = compute_shift_metrics(
        [_record(0, [1.0, 0.5]), _record(1, [0.8, 0.6])])
    assert metrics['mASSC'] == pytest.approx(72.5)
    assert metrics['mASSC_circular'] == pytest.approx(36.25)
    assert metrics['mASSC_worst'] == pytest.approx(55.0)
    assert metrics['shift_fidelity'] == pytest.approx(50.0)
    assert metrics['shift_mIoU'] == pytest.approx(100.0)
    assert metrics['mASSC_std'] == pytest.approx(17.5)  # per-shift 90 / 55
    by_shift = consistency_by_shift(
        [_record(0, [1.0, 0.5]), _record(1, [0.8, 0.6])])
    assert by_shift == {(0, 1): pytest.approx(90.0), (1, 0): pytest.approx(55.0)}
