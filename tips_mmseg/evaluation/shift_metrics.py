"""Per-shift scores of one image and their reduction to the reported keys.

Definitions: ``shared/spec/EVALUATION.md``. With ``y`` the prediction for the
image, ``y_d`` the one for the image shifted by ``d`` and ``O_d`` the overlap:

* consistency ``c(d)``: mean over ``O_d`` (standard) or all pixels
  (circular) of ``[y_d(p) == y(p - d)]``;
* fidelity ``f(d)``: over ``O_d`` where ``gt(p - d)`` is not ignored, mean of
  ``[y_d(p) == y(p - d) == gt(p - d)]``;
* ``shift_mIoU``: ``y_d`` brought back into the original frame (outside the
  overlap: ignored) and scored against ``gt`` as mmseg's IoUMetric scores
  (per-class areas summed over images and shifts, then its
  ``total_area_to_metrics``).
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from torch import Tensor

from ..utils.shift_ops import Shift, shift_blocks

#: The keys added beside aAcc / mIoU / mAcc, all in percent.
SHIFT_METRIC_KEYS = ('mASSC', 'mASSC_circular', 'mASSC_worst',
                     'shift_fidelity', 'shift_mIoU')


def score_shifts(pred: Tensor,
                 shifted_preds: Sequence[Tensor],
                 shifts: Sequence[Shift],
                 mode: str,
                 gt: Optional[Tensor] = None,
                 ignore_index: int = 255,
                 num_classes: Optional[int] = None) -> dict:
    """Scores of one image under each of its shifts.

    Counts stay on the device and come back in one transfer, so scoring
    costs little beside the forward passes.

    Args:
        pred (Tensor): ``(H, W)`` labels for the image, ``y``.
        shifted_preds (Sequence[Tensor]): ``(H, W)`` labels ``y_d`` for the
            image shifted by each of ``shifts``.
        shifts (Sequence[tuple[int, int]]): The shifts ``d = (dh, dw)``.
        mode (str): ``'standard'`` (compare on the overlap) or
            ``'circular'`` (compare everywhere).
        gt (Tensor, optional): ``(H, W)`` ground truth aligned with ``pred``;
            if given (standard mode), fidelity and IoU areas are computed.
            Defaults to None.
        ignore_index (int): Label not scored. Defaults to 255.
        num_classes (int, optional): Classes of the IoU areas; needed with
            ``gt``. Defaults to None.

    Returns:
        dict: ``consistency``: ``c(d)`` per shift (float64 array); with
        ``gt`` also ``fidelity``: ``f(d)`` per shift (NaN where no pixel is
        scored) and ``areas``: ``(intersect, union, pred_label, label)``
        per class summed over the shifts, as mmseg's IoUMetric sums them.
    """
    agree, total, good, scored, pairs = [], [], [], [], []
    for shifted, shift in zip(shifted_preds, shifts):
        blocks = shift_blocks(shift, pred.shape[-2:], mode)
        agree.append(
            sum((shifted[dst] == pred[src]).sum() for dst, src in blocks))
        total.append(sum(shifted[dst].numel() for dst, _ in blocks))
        if gt is None or mode == 'circular':
            continue
        (dst, src), = blocks
        ref, new = pred[src], shifted[dst]
        same = new == ref
        label = gt[src]
        valid = label != ignore_index
        good.append((same & (ref == label) & valid).sum())
        scored.append(valid.sum())
        # y_d brought back to the original frame, scored where gt is valid
        # (labels beyond num_classes are dropped, as IoUMetric's histc does)
        in_range = valid & (label < num_classes)
        pairs.append(label[in_range] * num_classes + new[in_range])
    result = dict(consistency=torch.stack(agree).double().cpu().numpy() /
                  np.array(total))
    if pairs:
        counts = torch.stack(good + scored).cpu().numpy().astype(np.float64)
        good_n, scored_n = counts[:len(good)], counts[len(good):]
        with np.errstate(invalid='ignore', divide='ignore'):
            result['fidelity'] = np.where(scored_n > 0, good_n / scored_n,
                                          np.nan)
        confusion = torch.bincount(
            torch.cat(pairs).long(),
            minlength=num_classes * num_classes).view(num_classes,
                                                      num_classes)
        confusion = confusion.double().cpu()
        intersect = confusion.diag()
        area_pred, area_label = confusion.sum(0), confusion.sum(1)
        result['areas'] = [
            intersect, area_pred + area_label - intersect, area_pred,
            area_label
        ]
    return result


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
