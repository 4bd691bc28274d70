"""Does maximum-sampling bias predict shift consistency? The statistics.

Pure numbers over per-run result rows: Pearson and Spearman coefficients with
p-values, the partial correlation with a control held fixed, per-variant
means and the split of runs that learned something from those that did not.
Nothing here trains a model, reads or writes files or draws; the study's
run bookkeeping, scatter plot and written summary belong to
``tools/correlation_study.py`` (``tools/_reports/``).

A *row* is one trained model: ``variant``, ``seed``, the mean MSBs
(``msb_pixel``, ``msb_soft``, ``msb_phase``; None where no layer has one),
the shift metrics (``mASSC``, ``mASSC_circular``, ... in %) and ``mIoU``.

Primary MSB: ``msb_soft``. It is defined for every downsampler (unlike
``msb_phase``, which vanilla and BlurPool lack) and it is graded: a layer that
mixes components but leans towards the maximum scores between 0.5 and 1,
whereas ``msb_pixel`` asks for exact equality with the window maximum, which
a convex mix (TIPS, BlurPool) almost never meets, so it cannot tell a mix
leaning to the max from one leaning away from it.
"""
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

#: The MSB measured for every run; the first is the study's x axis.
PRIMARY_MSB = 'msb_soft'
STUDY_MSB_KEYS = ('msb_soft', 'msb_pixel', 'msb_phase')
#: Shift consistency measurements correlated with MSB (percent).
CONSISTENCY_KEYS = ('mASSC', 'mASSC_circular')
#: Every number a finished run must have (``msb_phase`` may be None).
ROW_METRIC_KEYS = STUDY_MSB_KEYS + CONSISTENCY_KEYS + (
    'mASSC_worst', 'shift_fidelity', 'mIoU')


def _finite_or_none(value) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def correlate(x: Sequence[float], y: Sequence[float]) -> dict:
    """Pearson and Spearman coefficients of paired samples, with p-values.

    Two-sided p-values from scipy. Fewer than three pairs, or a constant
    side, give None coefficients (scipy would return nan or a meaningless
    p = 1); ``note`` says why.

    Args:
        x (Sequence[float]): First variable.
        y (Sequence[float]): Second variable, same length.

    Returns:
        dict: ``n``, ``pearson_r``, ``pearson_p``, ``spearman_rho``,
        ``spearman_p`` (floats or None) and ``note`` (str or None).
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f'x and y must be 1-d of one length, got {x.shape} '
                         f'and {y.shape}.')
    result = dict(n=int(x.size), pearson_r=None, pearson_p=None,
                  spearman_rho=None, spearman_p=None, note=None)
    if x.size < 3:
        result['note'] = f'only {x.size} pairs (need 3)'
        return result
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        result['note'] = 'a constant variable has no correlation'
        return result
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    result.update(
        pearson_r=_finite_or_none(pearson[0]),
        pearson_p=_finite_or_none(pearson[1]),
        spearman_rho=_finite_or_none(spearman[0]),
        spearman_p=_finite_or_none(spearman[1]))
    return result


def partial_correlate(x: Sequence[float], y: Sequence[float],
                      z: Sequence[float]) -> dict:
    """Pearson correlation of ``x`` and ``y`` with ``z`` held fixed.

    Why: a model that has learned little predicts nearly the same class
    everywhere, which is trivially shift consistent; holding mIoU fixed
    asks whether MSB still tells consistency apart among equally good
    models. ``r = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))``;
    two-sided p from Student's t with ``n - 3`` degrees of freedom.

    Args:
        x (Sequence[float]): First variable.
        y (Sequence[float]): Second variable.
        z (Sequence[float]): The variable held fixed.

    Returns:
        dict: ``n``, ``partial_r``, ``partial_p`` (floats or None) and
        ``note`` (why None, else None).
    """
    from scipy import stats

    data = np.asarray([x, y, z], dtype=float)
    n = data.shape[1]
    result = dict(n=int(n), partial_r=None, partial_p=None, note=None)
    if n < 4:
        result['note'] = f'only {n} triples (need 4)'
        return result
    if np.any(np.ptp(data, axis=1) == 0):
        result['note'] = 'a constant variable has no correlation'
        return result
    corr = np.corrcoef(data)
    r_xy, r_xz, r_yz = corr[0, 1], corr[0, 2], corr[1, 2]
    denominator = math.sqrt(max(0.0, (1 - r_xz**2) * (1 - r_yz**2)))
    if denominator < 1e-12:
        result['note'] = 'x or y is a linear function of the control'
        return result
    r = float(np.clip((r_xy - r_xz * r_yz) / denominator, -1.0, 1.0))
    df = n - 3
    if abs(r) == 1.0:
        p = 0.0
    else:
        p = float(2 * stats.t.sf(abs(r) * math.sqrt(df / (1 - r**2)), df))
    result.update(partial_r=r, partial_p=p)
    return result


def paired_values(rows: Iterable[dict], x_key: str,
                  y_key: str) -> Tuple[List[float], List[float]]:
    """The ``(x, y)`` values of the rows where both are present."""
    xs, ys = [], []
    for row in rows:
        if row.get(x_key) is not None and row.get(y_key) is not None:
            xs.append(float(row[x_key]))
            ys.append(float(row[y_key]))
    return xs, ys


def compute_coefficients(
        rows: Sequence[dict],
        msb_keys: Sequence[str] = STUDY_MSB_KEYS,
        consistency_keys: Sequence[str] = CONSISTENCY_KEYS) -> dict:
    """Correlation of every MSB measurement with every consistency metric.

    Args:
        rows (Sequence[dict]): One per run (or per variant, for means).
        msb_keys (Sequence[str]): MSB keys. Defaults to
            :data:`STUDY_MSB_KEYS`.
        consistency_keys (Sequence[str]): Consistency keys. Defaults to
            :data:`CONSISTENCY_KEYS`.

    Returns:
        dict: ``{msb_key: {consistency_key: correlate(...)}}``.
    """
    return {
        msb_key: {
            cons_key: correlate(*paired_values(rows, msb_key, cons_key))
            for cons_key in consistency_keys
        }
        for msb_key in msb_keys
    }


def compute_partial_coefficients(
        rows: Sequence[dict],
        msb_key: str = PRIMARY_MSB,
        consistency_keys: Sequence[str] = CONSISTENCY_KEYS,
        control: str = 'mIoU') -> dict:
    """MSB against each consistency metric with ``control`` held fixed.

    Args:
        rows (Sequence[dict]): One per run.
        msb_key (str): The MSB. Defaults to :data:`PRIMARY_MSB`.
        consistency_keys (Sequence[str]): Consistency keys.
        control (str): The row key held fixed. Defaults to 'mIoU'.

    Returns:
        dict: ``{consistency_key: partial_correlate(...)}``, each with
        ``control`` added.
    """
    result = {}
    for cons_key in consistency_keys:
        triples = [(r[msb_key], r[cons_key], r[control]) for r in rows
                   if all(r.get(k) is not None
                          for k in (msb_key, cons_key, control))]
        stats = partial_correlate(*zip(*triples)) if triples else dict(
            n=0, partial_r=None, partial_p=None, note='no complete rows')
        stats['control'] = control
        result[cons_key] = stats
    return result


def split_learned(rows: Sequence[dict], min_miou: Optional[float]
                  ) -> Tuple[List[dict], List[dict]]:
    """Rows of models that learned something, and the others.

    A model that predicts one class everywhere (on the default toy val set:
    background, mIoU 14.2) is 100% shift consistent whatever its downsamplers do, so it
    says nothing about MSB; the study leaves such runs out of the
    coefficients and shows them apart.

    Args:
        rows (Sequence[dict]): One per run.
        min_miou (float, optional): Smallest mIoU kept; None keeps all.

    Returns:
        tuple: ``(kept, excluded)``, each in the input order.
    """
    if min_miou is None:
        return list(rows), []
    kept = [r for r in rows if r['mIoU'] >= min_miou]
    excluded = [r for r in rows if r['mIoU'] < min_miou]
    return kept, excluded


def variant_means(rows: Sequence[dict],
                  keys: Sequence[str] = ROW_METRIC_KEYS) -> List[dict]:
    """Mean and (sample) standard deviation over seeds, per variant.

    Args:
        rows (Sequence[dict]): One per run, ordered as the output should be.
        keys (Sequence[str]): Metrics to average.

    Returns:
        list[dict]: Per variant, in first-appearance order: ``variant``,
        ``num_seeds``, and for each key its mean (``key``) and standard
        deviation (``key + '_std'``; None with one seed or no values).
    """
    groups: Dict[str, List[dict]] = {}
    for row in rows:
        groups.setdefault(row['variant'], []).append(row)
    means = []
    for variant, group in groups.items():
        entry = dict(variant=variant, num_seeds=len(group))
        for key in keys:
            values = [r[key] for r in group if r.get(key) is not None]
            entry[key] = float(np.mean(values)) if values else None
            entry[key + '_std'] = (float(np.std(values, ddof=1))
                                   if len(values) > 1 else None)
        means.append(entry)
    return means
