"""Per-shift scores of one image and their reduction to the reported keys.

Definitions: ``shared/spec/EVALUATION.md``. With ``y`` the prediction for the
image, ``y_d`` the one for the image shifted by ``d`` and ``O_d`` the overlap:

* consistency ``c(d)``: mean over ``O_d`` (standard) or all pixels
  (circular) of ``[y_d(p) == y(p - d)]``;
* fidelity ``f(d)``: over ``O_d`` where ``gt(p - d)`` is not ignored, mean of
  ``[y_d(p) == y(p - d) == gt(p - d)]``;
* ``shift_mIoU``: ``y_d`` brought back into the original frame (outside the
  overlap: ignored) and scored against ``gt`` with mmseg's own IoU code.
"""
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from torch import Tensor

from .shift_ops import Shift, overlap_slices

#: The keys added beside aAcc / mIoU / mAcc, all in percent.
SHIFT_METRIC_KEYS = ('mASSC', 'mASSC_circular', 'mASSC_worst',
                     'shift_fidelity', 'shift_mIoU')


def shift_consistency(pred: Tensor, shifted_pred: Tensor, shift: Shift,
                      mode: str) -> float:
    """``c(d)`` for one image: agreement of ``y_d(p)`` and ``y(p - d)``.

    Args:
        pred (Tensor): ``(H, W)`` labels for the image.
        shifted_pred (Tensor): ``(H, W)`` labels for the shifted image.
        shift (tuple[int, int]): ``d = (dh, dw)``.
        mode (str): ``'standard'`` (compare on the overlap) or
            ``'circular'`` (compare everywhere).

    Returns:
        float: Fraction of agreeing pixels in ``[0, 1]``.
    """
    if mode == 'circular':
        moved = torch.roll(pred, shifts=tuple(shift), dims=(-2, -1))
        return (shifted_pred == moved).double().mean().item()
    dst, src = overlap_slices(shift, pred.shape[-2:])
    return (shifted_pred[dst] == pred[src]).double().mean().item()


def shift_fidelity(pred: Tensor, shifted_pred: Tensor, gt: Tensor,
                   shift: Shift, ignore_index: int) -> float:
    """``f(d)`` for one image (standard shift): consistent AND correct.

    Args:
        pred (Tensor): ``(H, W)`` labels for the image.
        shifted_pred (Tensor): ``(H, W)`` labels for the shifted image.
        gt (Tensor): ``(H, W)`` ground truth aligned with ``pred``.
        shift (tuple[int, int]): ``(dh, dw)``.
        ignore_index (int): Label that is not scored.

    Returns:
        float: Fraction in ``[0, 1]``, or NaN when the overlap holds no
        scored pixel (such pairs are left out of the mean).
    """
    dst, src = overlap_slices(shift, pred.shape[-2:])
    label = gt[src]
    valid = label != ignore_index
    num_valid = int(valid.sum())
    if num_valid == 0:
        return float('nan')
    good = (shifted_pred[dst] == pred[src]) & (pred[src] == label) & valid
    return int(good.sum()) / num_valid


def shifted_iou_areas(shifted_pred: Tensor, gt: Tensor, shift: Shift,
                      num_classes: int,
                      ignore_index: int) -> Tuple[Tensor, ...]:
    """mmseg's IoU areas of a shifted prediction in the original frame.

    Bringing ``y_d`` back (``y_d(q + d)`` at ``q``) and ignoring pixels
    outside the overlap is the same as scoring ``y_d`` on ``O_d`` against
    ``gt`` on the source slice, which is what is computed.

    Returns:
        tuple[Tensor]: ``(intersect, union, pred_label, label)`` areas per
        class, as :meth:`IoUMetric.intersect_and_union` returns them.
    """
    dst, src = overlap_slices(shift, gt.shape[-2:])
    return IoUMetric.intersect_and_union(shifted_pred[dst],
                                         gt[src].to(shifted_pred),
                                         num_classes, ignore_index)


def _mean(values: List[np.ndarray]) -> float:
    return float(np.mean(np.concatenate(values))) * 100


def compute_shift_metrics(records: Sequence[dict]) -> Dict[str, float]:
    """Reduce per-image records to the reported metrics (percent).

    Args:
        records (Sequence[dict]): One per image, as
            :meth:`ShiftConsistencyEvaluator.process` returns them, sorted
            by ``'index'`` so the float sums are the same for any number of
            processes or batch size.

    Returns:
        dict[str, float]: ``mASSC``, ``mASSC_worst``, ``shift_fidelity``,
        ``shift_mIoU`` (standard mode), ``mASSC_circular`` (circular mode),
        and ``mASSC_std``: the standard deviation over shifts of the
        per-shift mean consistency (only when all images share one list of
        shifts, i.e. explicit ``shifts``, where it is meaningful).
    """
    if not records:
        return {}
    metrics = {}
    first = records[0]
    if 'standard' in first:
        standard = [r['standard'] for r in records]
        metrics['mASSC'] = _mean(standard)
        if 'circular' in first:
            metrics['mASSC_circular'] = _mean([r['circular'] for r in records])
        metrics['mASSC_worst'] = float(np.mean([s.min()
                                                for s in standard])) * 100
        fidelity = np.concatenate([r['fidelity'] for r in records])
        metrics['shift_fidelity'] = (
            float(np.nanmean(fidelity)) *
            100 if np.isfinite(fidelity).any() else float('nan'))
        areas = [sum(r['areas'][i] for r in records) for i in range(4)]
        iou = IoUMetric.total_area_to_metrics(*areas, metrics=['mIoU'])['IoU']
        metrics['shift_mIoU'] = float(np.nanmean(iou)) * 100
        if all(r['shifts'] == first['shifts'] for r in records) and len(
                first['shifts']) > 1:
            per_shift = np.stack(standard).mean(axis=0)
            metrics['mASSC_std'] = float(per_shift.std()) * 100
    elif 'circular' in first:
        metrics['mASSC_circular'] = _mean([r['circular'] for r in records])
    return metrics


def consistency_by_shift(records: Sequence[dict],
                         mode: str = 'standard') -> Dict[Shift, float]:
    """Mean consistency (percent) over images for every shift that occurs.

    Args:
        records (Sequence[dict]): Per-image records.
        mode (str): ``'standard'`` or ``'circular'``. Defaults to
            ``'standard'``.

    Returns:
        dict: ``{(dh, dw): consistency}``, the data of the consistency map.
    """
    grouped = defaultdict(list)
    for record in records:
        for shift, value in zip(record['shifts'], record[mode]):
            grouped[tuple(shift)].append(value)
    return {
        shift: float(np.mean(values)) * 100
        for shift, values in sorted(grouped.items())
    }
