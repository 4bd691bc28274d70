"""The scatter plot of ``tools/correlation_study.py``: MSB against shift
consistency, one point per run."""
from typing import Optional, Sequence

import numpy as np

from tips_mmseg.analysis.correlation import (CONSISTENCY_KEYS, PRIMARY_MSB,
                                             compute_coefficients,
                                             paired_values)
from tips_mmseg.visualization import new_figure, save_figure
from .correlation_text import LABELS, format_coefficient_line

#: Fixed colours per variant (matplotlib's tab10), so figures agree.
VARIANT_COLOURS = {
    'vanilla': 'tab:red',
    'blurpool': 'tab:orange',
    'aps': 'tab:green',
    'lps': 'tab:purple',
    'tips': 'tab:blue',
}


def plot_correlation(rows: Sequence[dict],
                     path: str,
                     msb_key: str = PRIMARY_MSB,
                     consistency_keys: Sequence[str] = CONSISTENCY_KEYS,
                     coefficients: Optional[dict] = None,
                     title: Optional[str] = None,
                     excluded_rows: Sequence[dict] = ()) -> str:
    """Scatter MSB against each consistency metric and save a PNG.

    One panel per consistency metric; one colour per variant, one point per
    seed; the least-squares line over all runs, and Pearson / Spearman with
    p-values in the panel's title.

    Args:
        rows (Sequence[dict]): One per run.
        path (str): Where to write the PNG (its folder is created).
        msb_key (str): The x axis. Defaults to :data:`PRIMARY_MSB`.
        consistency_keys (Sequence[str]): One panel each.
        coefficients (dict, optional): As from
            :func:`tips_mmseg.analysis.correlation.compute_coefficients`;
            computed when None.
        title (str, optional): Figure title.
        excluded_rows (Sequence[dict]): Runs left out of the coefficients
            and the line (see
            :func:`tips_mmseg.analysis.correlation.split_learned`), drawn
            as hollow markers. Defaults to ().

    Returns:
        str: ``path``.
    """
    if coefficients is None:
        coefficients = compute_coefficients(rows, (msb_key, ),
                                            consistency_keys)
    variants = list(dict.fromkeys(row['variant'] for row in rows))
    fig, axes = new_figure(
        1, len(consistency_keys), figsize=(5.2 * len(consistency_keys), 4.4),
        squeeze=False)
    for ax, cons_key in zip(axes[0], consistency_keys):
        for index, variant in enumerate(variants):
            xs, ys = paired_values(
                [r for r in rows if r['variant'] == variant], msb_key,
                cons_key)
            colour = VARIANT_COLOURS.get(variant, f'C{index % 10}')
            ax.scatter(xs, ys, color=colour, label=variant, s=46,
                       edgecolors='black', linewidths=0.5, zorder=3)
        xs, ys = paired_values(excluded_rows, msb_key, cons_key)
        if xs:
            ax.scatter(xs, ys, facecolors='none', edgecolors='0.4', s=46,
                       linewidths=1.0, zorder=3,
                       label='excluded (predicts one class)')
        xs, ys = paired_values(rows, msb_key, cons_key)
        if len(xs) >= 2 and np.ptp(xs) > 0:
            slope, intercept = np.polyfit(xs, ys, 1)
            line_x = np.linspace(min(xs), max(xs), 50)
            ax.plot(line_x, slope * line_x + intercept, color='0.3',
                    linestyle='--', linewidth=1.2, zorder=2,
                    label='least squares (filled points)')
        ax.set_title(format_coefficient_line(
            coefficients[msb_key][cons_key]), fontsize=9)
        ax.set_xlabel(LABELS.get(msb_key, msb_key))
        ax.set_ylabel(LABELS.get(cons_key, cons_key))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc='best')
    fig.suptitle(title or 'Maximum-sampling bias vs shift consistency')
    return save_figure(fig, path, dpi=110)
