"""Per-shift scores of one image and their reduction to the reported keys.

Definitions (``docs/evaluation.md``). With ``y`` the prediction for the
image, ``y_d`` the one for the image shifted by ``d`` and ``O_d`` the overlap:

* consistency ``c(d)``: mean over ``O_d`` (standard) or all pixels
  (circular) of ``[y_d(p) == y(p - d)]``;
* boundary consistency: the same restricted to the ``p`` whose source
  ``p - d`` lies within ``boundary_width`` px of a ground-truth class
  boundary;
* fidelity ``f(d)``: over ``O_d`` where ``gt(p - d)`` is a class (neither the
  ignore index nor ``>= num_classes``, as IoUMetric's aAcc counts), mean of
  ``[y_d(p) == y(p - d) == gt(p - d)]``;
* ``shift_mIoU``: ``y_d`` brought back into the original frame (outside the
  overlap: not scored) and scored against ``gt`` exactly as mmseg's
  ``IoUMetric.intersect_and_union`` scores (per-class areas summed over
  images and shifts, then its ``total_area_to_metrics``);
* crop: two windows of the image, compared over their common area;
* sub-pixel: ``y_d`` computed from the resampled image's logits shifted
  back, compared over the interior.

:func:`score_image` turns one image's shifted predictions (as
:class:`~tips_mmseg.models.ShiftTTAModel` produces them) into a record of
per-shift scores; :func:`compute_shift_metrics` reduces records to the
reported keys.
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.evaluation.metrics import IoUMetric
from torch import Tensor

from ..utils.shift_ops import Shift, interior_border, shift_blocks

#: Keys each mode adds beside aAcc / mIoU / mAcc (all in percent).
#: ``mASSC_boundary``, ``shift_fidelity`` and ``shift_mIoU`` need ground
#: truth in the test pipeline.
MODE_METRIC_KEYS = {
    'standard':
    ('mASSC', 'mASSC_worst', 'mASSC_boundary', 'shift_fidelity', 'shift_mIoU'),
    'circular': ('mASSC_circular', ),
    'crop': ('mASSC_crop', ),
    'subpixel': ('mASSC_subpixel', ),
}
#: The keys of the default modes (``'standard'``, ``'circular'``).
SHIFT_METRIC_KEYS = ('mASSC', 'mASSC_circular', 'mASSC_worst',
                     'mASSC_boundary', 'shift_fidelity', 'shift_mIoU')
#: Every key any mode can add.
ALL_SHIFT_METRIC_KEYS = tuple(k for keys in MODE_METRIC_KEYS.values()
                              for k in keys)


def iou_areas(pred: Tensor, label: Tensor, num_classes: int,
              ignore_index: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(intersect, union, pred_area, label_area)`` per class, on device.

    The same counts as mmseg 1.2.2's ``IoUMetric.intersect_and_union``:
    pixels whose label is ``ignore_index`` are dropped; of the rest, any
    value outside ``[0, num_classes - 1]`` (a label or a prediction) falls
    out of its histogram. So a label ``>= num_classes`` adds nothing to the
    label area or the intersection, but the prediction there still counts
    in the predicted area (and thus the union), as IoUMetric does.
    """
    keep = label != ignore_index
    pred, label = pred[keep].long(), label[keep].long()

    def histogram(values):
        values = values[(values >= 0) & (values < num_classes)]
        return torch.bincount(values, minlength=num_classes)[:num_classes]

    intersect = histogram(pred[pred == label])
    area_pred, area_label = histogram(pred), histogram(label)
    return intersect, area_pred + area_label - intersect, area_pred, area_label


def boundary_band(gt: Tensor,
                  width: int,
                  ignore_index: int = 255,
                  num_classes: Optional[int] = None) -> Tensor:
    """Pixels within ``width`` px of a ground-truth class boundary.

    A pixel is in the band when the ``(2 width + 1)^2`` square around it
    (clipped to the image) holds two different classes. The ignore index
    and labels ``>= num_classes`` are no class (they neither make nor break
    a boundary); the pixel's own label does not matter, since consistency
    needs no label.

    Args:
        gt (Tensor): ``(H, W)`` labels.
        width (int): Chebyshev distance in px (>= 1).
        ignore_index (int): Defaults to 255.
        num_classes (int, optional): Labels from here on are no class.

    Returns:
        Tensor: ``(H, W)`` bool.
    """
    label = gt.long()
    valid = label != ignore_index
    if num_classes is not None:
        valid &= (label >= 0) & (label < num_classes)
    big = float(2**24)  # exact in float32, above any class index
    size = 2 * int(width) + 1
    high = F.max_pool2d(
        torch.where(valid, label.float(), -1.0)[None, None], size, 1, width)
    low = -F.max_pool2d(
        torch.where(valid, -label.float(), -big)[None, None], size, 1, width)
    return ((high >= 0) & (low < big) & (high != low))[0, 0]


def score_shifts(pred: Tensor,
                 shifted_preds: Sequence[Tensor],
                 shifts: Sequence[Shift],
                 mode: str,
                 gt: Optional[Tensor] = None,
                 ignore_index: int = 255,
                 num_classes: Optional[int] = None,
                 band: Optional[Tensor] = None) -> dict:
    """Scores of one image under each of its (integer) shifts.

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
            if given (standard mode), fidelity, IoU areas and per-class
            counts are computed. Defaults to None.
        ignore_index (int): Label not scored. Defaults to 255.
        num_classes (int, optional): Classes of the IoU areas; needed with
            ``gt``. Defaults to None.
        band (Tensor, optional): ``(H, W)`` bool boundary band (see
            :func:`boundary_band`) in the frame of ``pred``; standard mode
            then also scores ``boundary``. Defaults to None.

    Returns:
        dict: ``consistency``: ``c(d)`` per shift (float64 array); with
        ``band``: ``boundary`` per shift (NaN where the band is empty);
        with ``gt`` also ``fidelity``: ``f(d)`` per shift (NaN where no
        pixel is scored), ``areas``: ``(intersect, union, pred_label,
        label)`` per class summed over the shifts, as mmseg's IoUMetric
        sums them, and ``class_counts``: ``(2, num_classes)`` agreeing and
        compared pixels per ground-truth class, summed over the shifts.
    """
    agree, total, b_agree, b_total, good, scored = [], [], [], [], [], []
    areas, class_agree, class_total = None, 0, 0
    labelled = gt is not None and mode == 'standard'
    for shifted, shift in zip(shifted_preds, shifts):
        blocks = shift_blocks(shift, pred.shape[-2:], mode)
        agree.append(
            sum((shifted[dst] == pred[src]).sum() for dst, src in blocks))
        total.append(sum(shifted[dst].numel() for dst, _ in blocks))
        if mode != 'standard' or (gt is None and band is None):
            continue
        (dst, src), = blocks
        ref, new = pred[src], shifted[dst]
        same = new == ref
        if band is not None:
            near = band[src]
            b_agree.append((same & near).sum())
            b_total.append(near.sum())
        if not labelled:
            continue
        label = gt[src]
        in_range = (label != ignore_index) & (label >= 0) & (label
                                                             < num_classes)
        good.append((same & (ref == label) & in_range).sum())
        scored.append(in_range.sum())
        # y_d brought back to the original frame, scored as IoUMetric does
        shift_areas = iou_areas(new, label, num_classes, ignore_index)
        areas = shift_areas if areas is None else [
            a + b for a, b in zip(areas, shift_areas)
        ]
        classes = label[in_range].long()
        class_agree = class_agree + torch.bincount(
            classes[same[in_range]], minlength=num_classes)[:num_classes]
        class_total = class_total + torch.bincount(
            classes, minlength=num_classes)[:num_classes]
    counts = torch.stack(agree + b_agree + b_total + good + scored)
    counts = counts.double().cpu().numpy()
    k, nb, ng = len(agree), len(b_agree), len(good)
    result = dict(consistency=counts[:k] / np.array(total, dtype=float))
    with np.errstate(invalid='ignore', divide='ignore'):
        if nb:
            b_agree_n = counts[k:k + nb]
            b_total_n = counts[k + nb:k + 2 * nb]
            result['boundary'] = np.where(b_total_n > 0, b_agree_n / b_total_n,
                                          np.nan)
        if ng:
            good_n = counts[k + 2 * nb:k + 2 * nb + ng]
            scored_n = counts[k + 2 * nb + ng:]
            result['fidelity'] = np.where(scored_n > 0, good_n / scored_n,
                                          np.nan)
    if labelled:
        result['areas'] = [a.double().cpu() for a in areas]
        result['class_counts'] = torch.stack([class_agree,
                                              class_total]).cpu().numpy()
    return result


def aligned_ground_truth(gt: Tensor, metainfo: dict,
                         size: Sequence[int]) -> Tensor:
    """``gt_sem_seg`` aligned with the network input's valid box.

    ``gt_sem_seg`` is at ``ori_shape`` in mmseg's test pipelines (loaded
    after ``Resize``): it is flipped like the input if ``flip`` is set and
    resized with nearest neighbour to the box when the sizes differ. With
    no resize in the test pipeline it is the exact ground truth, and with
    the shift ``(0, 0)`` ``shift_mIoU`` equals mmseg's mIoU.

    Args:
        gt (Tensor): ``(1, H, W)`` or ``(H, W)`` labels.
        metainfo (dict): The sample's metainfo (``flip``,
            ``flip_direction``).
        size (Sequence[int]): ``(h, w)`` of the valid box.

    Returns:
        Tensor: ``(h, w)`` labels.
    """
    if gt.dim() == 2:
        gt = gt[None]
    if metainfo.get('flip', False):
        dim = 2 if metainfo.get('flip_direction') == 'horizontal' else 1
        gt = gt.flip(dims=(dim, ))
    if tuple(gt.shape[-2:]) != tuple(size):
        gt = F.interpolate(gt[None].float(), size=tuple(size),
                           mode='nearest')[0].to(gt.dtype)
    return gt[0]


def score_image(shifted: dict,
                gt: Optional[Tensor] = None,
                ignore_index: int = 255,
                num_classes: Optional[int] = None,
                boundary_width: int = 3,
                score_labels: bool = True) -> dict:
    """Per-shift scores of one image, in every mode it was shifted in.

    Args:
        shifted (dict): The image's ``shift_predictions``, as
            :meth:`ShiftPredictor.predict` returns them.
        gt (Tensor, optional): ``(h, w)`` ground truth aligned with
            ``shifted['pred']`` (see :func:`aligned_ground_truth`).
        ignore_index (int): Label not scored. Defaults to 255.
        num_classes (int, optional): Classes scored (the dataset's, as
            IoUMetric uses); None: ``shifted['num_classes']``.
        boundary_width (int): Half-width (px) of the boundary band.
            Defaults to 3.
        score_labels (bool): Score against the ground truth too
            (``mASSC_boundary``, fidelity, ``shift_mIoU``, per class).
            Defaults to True.

    Returns:
        dict: ``index`` (the image key), ``shifts``, ``pred_counts``
        (predicted pixels per class, unshifted) and a per-shift array per
        mode; standard mode with labels adds ``boundary``, ``fidelity``,
        ``areas`` and ``class_counts``; sub-pixel adds
        ``subpixel_shifts``.

    Raises:
        KeyError: If labels are to be scored and ``gt`` is None.
    """
    num_classes = num_classes or shifted['num_classes']
    pred = shifted['pred']
    shifts = shifted['shifts']
    labelled = 'standard' in shifted and score_labels
    if labelled and gt is None:
        raise KeyError(
            'mASSC_boundary, shift_fidelity and shift_mIoU need gt_sem_seg '
            'in the data samples; load annotations in the test pipeline, '
            "or run without 'standard' (e.g. modes=('circular',)).")
    if gt is not None:
        gt = gt.to(pred.device)
    record = dict(index=int(shifted['key']), shifts=list(shifts))
    record['pred_counts'] = torch.bincount(
        pred.reshape(-1).long().clamp(min=0),
        minlength=num_classes).cpu().numpy()
    for mode in ('standard', 'circular'):
        if mode not in shifted:
            continue
        with_gt = mode == 'standard' and labelled
        band = boundary_band(gt, boundary_width, ignore_index,
                             num_classes) if with_gt else None
        scores = score_shifts(pred, shifted[mode], shifts, mode,
                              gt if with_gt else None, ignore_index,
                              num_classes, band)
        record[mode] = scores['consistency']
        for key in ('boundary', 'fidelity', 'areas', 'class_counts'):
            if key in scores:
                record[key] = scores[key]
    if 'crop' in shifted:
        pairs = shifted['crop']
        refs, news = zip(*pairs) if pairs else ((), ())
        record['crop'] = score_crops(refs, news, shifts)
    if 'subpixel' in shifted:
        record['subpixel_shifts'] = list(shifted['subpixel_shifts'])
        record['subpixel'] = score_subpixel(pred, shifted['subpixel'],
                                            shifted['subpixel_shifts'])
    return record


def score_crops(ref_windows: Sequence[Tensor],
                shifted_windows: Sequence[Tensor],
                shifts: Sequence[Shift]) -> np.ndarray:
    """Crop-protocol consistency of one image.

    Args:
        ref_windows (Sequence[Tensor]): Per shift, ``(h, w)`` labels of the
            reference window ``A``.
        shifted_windows (Sequence[Tensor]): Per shift, labels of the window
            ``B`` whose content is ``A``'s moved by the shift.
        shifts (Sequence[tuple[int, int]]): The shifts.

    Returns:
        np.ndarray: Per shift, the fraction of their common area where the
        two predictions of the same image pixel agree.
    """
    agree, total = [], []
    for ref, new, shift in zip(ref_windows, shifted_windows, shifts):
        (dst, src), = shift_blocks(shift, ref.shape[-2:], 'standard')
        agree.append((new[dst] == ref[src]).sum())
        total.append(new[dst].numel())
    return torch.stack(agree).double().cpu().numpy() / np.array(total,
                                                                dtype=float)


def score_subpixel(pred: Tensor, back_preds: Sequence[Tensor],
                   shifts: Sequence[Sequence[float]]) -> np.ndarray:
    """Sub-pixel consistency of one image.

    Args:
        pred (Tensor): ``(H, W)`` labels of the unshifted image.
        back_preds (Sequence[Tensor]): Per shift, the labels of the
            resampled image's logits shifted back by ``-d``.
        shifts (Sequence[tuple[float, float]]): The fractional shifts.

    Returns:
        np.ndarray: Per shift, agreement over the interior (a border of
        ``ceil(|d|) + 1`` px excluded on each side, per axis).
    """
    h, w = pred.shape[-2:]
    agree, total = [], []
    for back, (dh, dw) in zip(back_preds, shifts):
        bh, bw = interior_border(dh), interior_border(dw)
        inner = (slice(bh, h - bh), slice(bw, w - bw))
        agree.append((back[inner] == pred[inner]).sum())
        total.append((h - 2 * bh) * (w - 2 * bw))
    return torch.stack(agree).double().cpu().numpy() / np.array(total,
                                                                dtype=float)


def _mean(values: List[np.ndarray]) -> float:
    return float(np.mean(np.concatenate(values))) * 100


def _nanmean(values: List[np.ndarray]) -> float:
    values = np.concatenate(values)
    if not np.isfinite(values).any():
        return float('nan')
    return float(np.nanmean(values)) * 100


def compute_shift_metrics(records: Sequence[dict]) -> Dict[str, float]:
    """Reduce per-image records to the reported metrics (percent).

    Args:
        records (Sequence[dict]): One per image, as :func:`score_image`
            returns them, in dataset order (as mmengine's metric collection
            delivers them), so the float sums are the same for any number
            of processes or batch size.

    Returns:
        dict[str, float]: The keys of :data:`MODE_METRIC_KEYS` for the
        modes in the records, and ``mASSC_std``: the standard deviation over
        shifts of the per-shift mean consistency (standard mode, only when
        all images share one list of shifts, i.e. explicit ``shifts``,
        where it is meaningful). Means over images and shifts of per-image
        ratios; images without a boundary (or without a scored label) are
        left out of ``mASSC_boundary`` (``shift_fidelity``).
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
    if 'standard' in first:
        metrics['mASSC_worst'] = float(np.mean([s.min()
                                                for s in standard])) * 100
        if 'boundary' in first:
            metrics['mASSC_boundary'] = _nanmean(
                [r['boundary'] for r in records])
        if 'fidelity' in first:
            metrics['shift_fidelity'] = _nanmean(
                [r['fidelity'] for r in records])
            areas = [sum(r['areas'][i] for r in records) for i in range(4)]
            iou = IoUMetric.total_area_to_metrics(*areas,
                                                  metrics=['mIoU'])['IoU']
            metrics['shift_mIoU'] = float(np.nanmean(iou)) * 100
    if 'crop' in first:
        metrics['mASSC_crop'] = _mean([r['crop'] for r in records])
    if 'subpixel' in first:
        metrics['mASSC_subpixel'] = _mean([r['subpixel'] for r in records])
    if 'standard' in first and all(r['shifts'] == first['shifts']
                                   for r in records) and len(
                                       first['shifts']) > 1:
        per_shift = np.stack(standard).mean(axis=0)
        metrics['mASSC_std'] = float(per_shift.std()) * 100
    return metrics


def consistency_by_shift(records: Sequence[dict],
                         mode: str = 'standard') -> Dict[tuple, float]:
    """Mean consistency (percent) over images for every shift that occurs.

    Args:
        records (Sequence[dict]): Per-image records.
        mode (str): ``'standard'``, ``'circular'``, ``'crop'``,
            ``'subpixel'`` or ``'boundary'``. Defaults to ``'standard'``.

    Returns:
        dict: ``{(dh, dw): consistency}``, the data of the consistency map
        (NaN-free means; a shift no image could score is left out).
    """
    key = 'subpixel_shifts' if mode == 'subpixel' else 'shifts'
    grouped = defaultdict(list)
    for record in records:
        for shift, value in zip(record[key], record[mode]):
            grouped[tuple(shift)].append(value)
    result = {}
    for shift, values in sorted(grouped.items()):
        values = np.asarray(values, dtype=float)
        if np.isfinite(values).any():
            result[shift] = float(np.nanmean(values)) * 100
    return result


def class_consistency(
        records: Sequence[dict],
        class_names: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Standard-shift consistency per ground-truth class (percent).

    Pixel-pooled: agreeing over compared pixels of the class, summed over
    images and shifts; classes never compared are NaN.

    Args:
        records (Sequence[dict]): Per-image records with ``class_counts``.
        class_names (Sequence[str], optional): Names; default ``'0'``,
            ``'1'``...

    Returns:
        dict[str, float]: ``{class name: consistency}``.
    """
    counts = [r['class_counts'] for r in records if 'class_counts' in r]
    if not counts:
        return {}
    total = np.sum(np.stack(counts).astype(float), axis=0)
    names = list(class_names) if class_names else [
        str(i) for i in range(total.shape[1])
    ]
    with np.errstate(invalid='ignore', divide='ignore'):
        values = np.where(total[1] > 0, total[0] / total[1] * 100, np.nan)
    return {name: float(v) for name, v in zip(names, values)}


def dominant_class(records: Sequence[dict]) -> Optional[Tuple[int, float]]:
    """The most predicted class and its share of all predicted pixels
    (of the unshifted images), or None if the records carry no counts."""
    counts = [r['pred_counts'] for r in records if 'pred_counts' in r]
    if not counts:
        return None
    size = max(len(c) for c in counts)
    total = np.zeros(size)
    for c in counts:
        total[:len(c)] += c
    if total.sum() == 0:
        return None
    top = int(total.argmax())
    return top, float(total[top] / total.sum())


def single_class_warning(
        records: Sequence[dict],
        threshold: float = 0.99,
        class_names: Optional[Sequence[str]] = None) -> Optional[str]:
    """A warning text if one class takes ``>= threshold`` of the predicted
    pixels (every consistency is then trivially close to 100), else None."""
    found = dominant_class(records)
    if found is None or found[1] < threshold:
        return None
    top, share = found
    name = class_names[top] if class_names and top < len(class_names) else str(
        top)
    return (f'the model predicts class {name!r} on {share * 100:.1f}% of '
            'the pixels: every shift consistency is then trivially close to '
            '100 and says nothing about shift invariance. Train the model '
            '(longer), or check its checkpoint and num_classes.')
