import math

import numpy as np
import pytest
import torch

from tips_mmseg.evaluation.shift_metrics import (compute_shift_metrics,
                                                 consistency_by_shift,
                                                 shift_consistency,
                                                 shift_fidelity,
                                                 shifted_iou_areas)


def test_consistency_compares_overlap_only():
    pred = torch.tensor([[0, 1, 2], [0, 1, 2]])
    shifted = torch.tensor([[5, 0, 1], [5, 0, 9]])  # shift (0, 1), 1 error
    # overlap: columns 1..2 of shifted vs 0..1 of pred: 3 of 4 agree
    assert shift_consistency(pred, shifted, (0, 1), 'standard') == 0.75
    rolled = torch.roll(pred, (0, 1), (0, 1))
    assert shift_consistency(pred, rolled, (0, 1), 'circular') == 1.0


def test_fidelity_counts_consistent_and_correct_and_skips_ignore():
    pred = torch.tensor([[0, 1, 2, 2]])
    shifted = torch.tensor([[0, 0, 1, 2]])  # shift (0, 1), consistent
    gt = torch.tensor([[0, 1, 1, 255]])
    # overlap sources: columns 0..2; gt valid at all three; correct at 0, 1
    assert shift_fidelity(pred, shifted, gt, (0, 1), 255) == 2 / 3
    assert math.isnan(
        shift_fidelity(pred, shifted, torch.full_like(gt, 255), (0, 1), 255))


def test_iou_areas_score_the_shifted_prediction_in_the_original_frame():
    gt = torch.tensor([[0, 1, 255]])
    shifted = torch.tensor([[1, 0, 1]])  # shift (0, 1): back = [0, 1, x]
    inter, union, pred_area, label_area = shifted_iou_areas(
        shifted, gt, (0, 1), num_classes=2, ignore_index=255)
    assert inter.tolist() == [1, 1] and union.tolist() == [1, 1]


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
