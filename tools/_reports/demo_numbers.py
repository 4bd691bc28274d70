"""Numbers of ``tools/demo.py`` beyond what ``runner.test()`` returns.

Every function here works on the list of per-run results the demo collects
(one row per variant and seed, as in ``results.json``)::

    dict(variant, seed, metrics, class_iou, msb, tau, heatmap, map_metrics,
         losses, loss_terms, train_s, iters)

``metrics`` holds what ``runner.test()`` returned (``mIoU``, ``aAcc``,
``mASSC``, ...).
"""
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric


@torch.no_grad()
def class_iou(model, dataloader, num_classes: int,
              ignore_index: int = 255) -> List[float]:
    """IoU (%) per class of ``model`` over ``dataloader``, counted by mmseg's
    own :class:`IoUMetric` (NaN: a class in neither prediction nor ground
    truth).

    ``runner.test()`` logs this per-class table but returns only the means;
    the report needs the thin classes' IoU per run.

    Args:
        model (BaseSegmentor): mmseg segmentor (eval mode is set).
        dataloader: Test dataloader with ground truth.
        num_classes (int): Number of classes.
        ignore_index (int): Label not scored. Defaults to 255.
    """
    model.eval()
    totals = [torch.zeros(num_classes, dtype=torch.float64)
              for _ in range(4)]  # intersect, union, pred, label
    for batch in dataloader:
        for sample in model.test_step(batch):
            pred = sample.pred_sem_seg.data.squeeze(0)
            gt = sample.gt_sem_seg.data.squeeze(0).to(pred.device)
            areas = IoUMetric.intersect_and_union(pred, gt, num_classes,
                                                  ignore_index)
            for total, area in zip(totals, areas):
                total += area.double()
    metrics = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])
    return [float(v) for v in 100 * metrics['IoU']]


def loss_terms(history: Dict[str, Sequence[float]],
               alpha: float = 0.0) -> Dict[str, List[float]]:
    """Split a training log into the task loss and the regularizer terms.

    Args:
        history (dict): Per-iteration logged values by key (without the
            ``train/`` prefix), e.g. ``decode.loss_ce``, ``aux.loss_ce``,
            ``loss_fm``, ``loss_undo``, ``loss``.
        alpha (float): The factor ``1 - alpha`` that TIPS's segmentor put on
            the task losses; they are divided by it, so that task losses of
            all variants compare. Defaults to 0 (no scaling).

    Returns:
        dict: ``task`` (sum of the head losses, unscaled) and, where logged,
        ``loss_fm`` and ``loss_undo`` (as logged: already weighted).
    """
    regularizers = ('loss_fm', 'loss_undo')
    heads = [k for k in history
             if 'loss' in k and k != 'loss' and k not in regularizers]
    terms = OrderedDict()
    if heads:
        length = min(len(history[k]) for k in heads)
        task = np.sum([np.asarray(history[k][:length]) for k in heads],
                      axis=0) / (1.0 - alpha)
        terms['task'] = [float(v) for v in task]
    for key in regularizers:
        if key in history:
            terms[key] = [float(v) for v in history[key]]
    return terms


def group_runs(results: Sequence[dict]) -> 'OrderedDict[str, List[dict]]':
    """Runs by variant, in the order the variants first appear."""
    groups: 'OrderedDict[str, List[dict]]' = OrderedDict()
    for result in results:
        groups.setdefault(result['variant'], []).append(result)
    return groups


def run_values(runs: Sequence[dict], getter: Callable) -> np.ndarray:
    """``getter(run)`` of every run as floats; NaN where the run lacks it."""
    values = []
    for run in runs:
        try:
            value = getter(run)
        except (KeyError, TypeError):
            value = None
        values.append(np.nan if value is None else float(value))
    return np.asarray(values, dtype=float)


def mean_std(values: np.ndarray) -> Tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation of the non-NaN values; None for
    the mean without values, None for the std with fewer than two."""
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    std = float(values.std(ddof=1)) if len(values) > 1 else None
    return float(values.mean()), std


def metric_mean(runs: Sequence[dict], key: str) -> Optional[float]:
    """Mean of ``metrics[key]`` over ``runs`` (None without values)."""
    return mean_std(run_values(runs, lambda r: r['metrics'][key]))[0]


def seed_spread(groups: Dict[str, List[dict]],
                keys: Sequence[str] = ('mIoU', 'mASSC')
                ) -> Tuple[Dict[str, float], List[str]]:
    """The seed-to-seed spread measured by the variants run with several
    seeds: per key, the mean over those variants of the standard deviation
    over their seeds.

    Args:
        groups (dict): From :func:`group_runs`.
        keys (Sequence[str]): Metrics. Defaults to ('mIoU', 'mASSC').

    Returns:
        tuple: ``(spread, variants)``: ``{key: std}`` (keys without a value
        left out; empty if every variant ran once) and the variants it was
        measured on.
    """
    spread_from = [variant for variant, runs in groups.items()
                   if len(runs) > 1]
    spread = {}
    for key in keys:
        stds = [mean_std(run_values(groups[v],
                                    lambda r: r['metrics'][key]))[1]
                for v in spread_from]
        stds = [s for s in stds if s is not None]
        if stds:
            spread[key] = float(np.mean(stds))
    return spread, spread_from
