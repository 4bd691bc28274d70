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


# --- IoUMetric's treatment of labels that are not classes ------------------
def test_iou_areas_equal_iou_metric_with_out_of_range_values():
    from mmseg.evaluation.metrics import IoUMetric

    from tips_mmseg.evaluation.shift_metrics import iou_areas
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (40, 40), generator=gen)  # 3, 4: no class
    label = torch.tensor([0, 1, 2, 7, 255])[torch.randint(
        0, 5, (40, 40), generator=gen)]
    ours = iou_areas(pred, label, 3, 255)
    theirs = IoUMetric.intersect_and_union(pred, label, 3, 255)
    for a, b in zip(ours, theirs):
        assert a.tolist() == b.long().tolist()
    # by hand on one row: label 7 drops from the label area, its
    # prediction (1) still counts in the predicted area and the union
    inter, union, area_pred, area_label = iou_areas(
        torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 7, 1, 255]]), 3, 255)
    assert area_label.tolist() == [1, 1, 0]
    assert area_pred.tolist() == [1, 2, 0]
    assert inter.tolist() == [1, 1, 0] and union.tolist() == [1, 2, 0]


def test_fidelity_and_classes_skip_labels_beyond_num_classes():
    pred = torch.tensor([[0, 1, 2, 2]])
    gt = torch.tensor([[0, 7, 2, 2]])
    scores = score_shifts(pred, [pred], [(0, 0)], 'standard', gt, 255, 3)
    # 3 labelled pixels, all consistent and correct (label 7 not scored,
    # as in IoUMetric's aAcc)
    assert scores['fidelity'].tolist() == [1.0]
    assert scores['class_counts'].tolist() == [[1, 0, 2], [1, 0, 2]]
    assert scores['areas'][1].tolist() == [1, 1, 2]  # union keeps pred 1


# --- boundary band ---------------------------------------------------------
def test_boundary_band_by_hand():
    from tips_mmseg.evaluation.shift_metrics import boundary_band
    row = torch.tensor([[0, 0, 0, 1, 1, 1]])
    assert boundary_band(row, 1).int().tolist() == [[0, 0, 1, 1, 0, 0]]
    assert boundary_band(row, 2).int().tolist() == [[0, 1, 1, 1, 1, 0]]
    # the ignore index (and a label beyond num_classes) is no class
    void = torch.tensor([[0, 0, 255, 1, 1]])
    assert boundary_band(void, 1).int().tolist() == [[0, 0, 1, 0, 0]]
    assert boundary_band(void, 2).int().tolist() == [[0, 1, 1, 1, 0]]
    beyond = torch.tensor([[0, 0, 7, 7, 0]])
    assert not boundary_band(beyond, 2, num_classes=3).any()
    # 2-D: a diagonal neighbour counts (square window)
    square = torch.zeros(4, 4, dtype=torch.long)
    square[2:, 2:] = 1
    # within 1 px (square window) of a 0/1 pair: rows and columns 1..3,
    # except (3, 3), whose 3x3 window holds only ones
    assert boundary_band(square, 1).int().tolist() == [
        [0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 0]]


def test_boundary_consistency_counts_only_the_band():
    pred = torch.tensor([[0, 0, 0, 1, 1, 1]])
    shifted = torch.tensor([[9, 0, 0, 0, 1, 0]])  # shift (0, 1)
    gt = pred.clone()
    band = torch.tensor([[False, False, True, True, False, False]])
    scores = score_shifts(pred, [shifted], [(0, 1)], 'standard', gt, 255, 2,
                          band)
    # overlap: y_d[1:] = [0, 0, 0, 1, 0] vs y[:5] = [0, 0, 0, 1, 1]
    assert scores['consistency'].tolist() == [0.8]
    # band sources 2, 3 -> y_d(3) = 0 == y(2), y_d(4) = 1 == y(3)
    assert scores['boundary'].tolist() == [1.0]
    none = score_shifts(pred, [shifted], [(0, 1)], 'standard', gt, 255, 2,
                        torch.zeros_like(band))
    assert math.isnan(none['boundary'][0])


# --- crop and sub-pixel scoring --------------------------------------------
def test_crop_scores_compare_the_common_area():
    from tips_mmseg.evaluation.shift_metrics import score_crops
    ref = torch.tensor([[0, 1, 2], [3, 4, 5]])
    new = torch.tensor([[7, 0, 1], [7, 3, 9]])  # B = A moved right by 1
    assert score_crops([ref], [new], [(0, 1)]).tolist() == [0.75]
    assert score_crops([ref, ref], [ref, new],
                       [(0, 0), (1, 0)]).tolist() == [1.0, 0.0]


def test_subpixel_scores_the_interior():
    from tips_mmseg.evaluation.shift_metrics import score_subpixel
    pred = torch.zeros(6, 6, dtype=torch.long)
    back = torch.ones(6, 6, dtype=torch.long)
    # (0.5, -0.2): ceil + 1 = 2 rows and 2 columns off each side
    back[2:4, 2:4] = 0
    back[3, 3] = 1
    assert score_subpixel(pred, [back], [(0.5, -0.2)]).tolist() == [0.75]
    # (0, 0): 1 px border, interior 4x4 with 3 agreeing pixels
    assert score_subpixel(pred, [back], [(0.0, 0.0)]).tolist() == [3 / 16]


def test_reduction_of_new_modes_and_class_reports():
    from tips_mmseg.evaluation.shift_metrics import (class_consistency,
                                                     single_class_warning)
    records = [_record(0, [1.0, 0.5]), _record(1, [0.8, 0.6])]
    for r, b in zip(records, ([np.nan, np.nan], [0.5, 0.25])):
        r.update(boundary=np.array(b), crop=np.array([0.5, 1.0]),
                 subpixel=np.array([1.0, 0.0]),
                 class_counts=np.array([[3, 0], [4, 0]]),
                 pred_counts=np.array([99, 1]))
    metrics = compute_shift_metrics(records)
    assert metrics['mASSC_boundary'] == pytest.approx(37.5)  # image 0: none
    assert metrics['mASSC_crop'] == pytest.approx(75.0)
    assert metrics['mASSC_subpixel'] == pytest.approx(50.0)
    per_class = class_consistency(records, ['road', 'car'])
    assert per_class['road'] == pytest.approx(75.0)
    assert math.isnan(per_class['car'])
    warning = single_class_warning(records, 0.99, ['road', 'car'])
    assert "class 'road' on 99.0%" in warning
    assert single_class_warning(records, 0.995) is None
