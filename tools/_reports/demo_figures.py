"""Figures of ``tools/demo.py``: metrics, consistency maps, losses.

Each function takes the demo's per-run results (see
:mod:`_reports.demo_numbers`) and a PNG path, and returns the path.
"""
from typing import List, Sequence

import numpy as np

from tips_mmseg.analysis import odd_even_gap
from tips_mmseg.analysis.consistency_map import off_centre_grid
from tips_mmseg.visualization import (colour_cycle, new_figure,
                                      plot_consistency_map, save_figure)
from .demo_numbers import group_runs, mean_std, run_values

#: Panels of the metric figure, each on its own zoomed axis.
BAR_METRICS = ('mIoU', 'mASSC', 'mASSC_circular', 'mASSC_worst',
               'mASSC_crop', 'mASSC_boundary')


def _present(results: Sequence[dict], keys: Sequence[str]) -> List[str]:
    return [k for k in keys if any(k in r['metrics'] for r in results)]


def draw_metric_bars(results: Sequence[dict], path: str) -> str:
    """One panel per metric, each axis zoomed to the values (with seed
    spread as error bars when there are several seeds)."""
    groups = group_runs(results)
    keys = _present(results, BAR_METRICS)
    fig, axes = new_figure(1, len(keys), figsize=(2.6 * len(keys), 3.4),
                           squeeze=False)
    colours = colour_cycle()
    for ax, key in zip(axes[0], keys):
        means, errs = [], []
        for runs in groups.values():
            mean, std = mean_std(run_values(runs,
                                            lambda r: r['metrics'][key]))
            means.append(np.nan if mean is None else mean)
            errs.append(std or 0.)
        means, errs = np.asarray(means), np.asarray(errs)
        x = np.arange(len(means))
        bars = ax.bar(x, means, 0.7, yerr=errs if errs.any() else None,
                      color=[colours[i % len(colours)] for i in x],
                      capsize=3)
        ax.bar_label(bars, fmt='%.1f', fontsize=7)
        ax.set_xticks(x, list(groups), rotation=45, fontsize=8)
        lo = np.nanmin(means - errs)
        hi = np.nanmax(means + errs)
        pad = max(0.5, 0.25 * (hi - lo))
        # Zoomed: the bars start near the smallest value, not at 0.
        ax.set_ylim(max(0, lo - pad), min(100 + pad, hi + pad))
        ax.set_title(key, fontsize=9)
    axes[0][0].set_ylabel('% (axis zoomed)')
    fig.suptitle('toy val set: accuracy and shift consistency', fontsize=10)
    return save_figure(fig, path)


def draw_consistency_maps(results: Sequence[dict], path: str) -> str:
    """One consistency map per variant (first seed), on a shared colour scale
    from the smallest off-centre value to the largest (the centre, no
    shift, is 100 by definition and left blank)."""
    firsts = [runs[0] for runs in group_runs(results).values()]
    grids = [off_centre_grid(r['heatmap']) for r in firsts]
    vmin = float(np.nanmin([np.nanmin(g) for g in grids]))
    vmax = float(np.nanmax([np.nanmax(g) for g in grids]))
    if vmax <= vmin:
        vmax = vmin + 1e-3
    fig, axes = new_figure(
        1, len(firsts), figsize=(3.6 * len(firsts) + 1, 3.6), squeeze=False)
    for ax, result, grid in zip(axes[0], firsts, grids):
        image = plot_consistency_map(
            ax, grid, result['heatmap']['axis'],
            title=(f"{result['variant']}: mean {np.nanmean(grid):.2f}%\n"
                   f"even-odd {odd_even_gap(result['heatmap']):+.2f}"),
            vmin=vmin, vmax=vmax)
        ax.title.set_fontsize(9)
    fig.subplots_adjust(wspace=0.4, left=0.05, right=0.88, bottom=0.15,
                        top=0.85)
    fig.colorbar(image, ax=list(axes[0]), label='consistency (%)')
    # No tight_layout: it fights the shared colour bar.
    return save_figure(fig, path, tight=False)


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode='valid')


def draw_loss_curves(results: Sequence[dict], path: str) -> str:
    """Task loss (every variant, unscaled) and the TIPS regularizer terms
    (``loss_fm``, ``loss_undo``), in separate panels."""
    groups = group_runs(results)
    regularized = [r for r in results
                   if set(r.get('loss_terms', {})) - {'task'}]
    fig, axes = new_figure(1, 2 if regularized else 1,
                           figsize=(11 if regularized else 6, 3.6),
                           squeeze=False)
    ax = axes[0][0]
    colours = colour_cycle()
    for i, (variant, runs) in enumerate(groups.items()):
        for j, run in enumerate(runs):
            task = run.get('loss_terms', {}).get('task', run.get('losses'))
            window = max(1, len(task) // 30)
            y = _smooth(task, window)
            ax.plot(np.arange(len(y)) + window, y, linewidth=1,
                    color=colours[i % len(colours)],
                    label=variant if j == 0 else None)
    ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_ylabel('task loss (decode + aux CE)')
    ax.set_title('task loss, unscaled (moving mean)', fontsize=9)
    ax.legend(fontsize=8)
    if regularized:
        ax = axes[0][1]
        styles = dict(loss_fm='-', loss_undo='--')
        for run in regularized:
            for key, style in styles.items():
                values = run['loss_terms'].get(key)
                if values:
                    ax.plot(np.arange(1, len(values) + 1), values, style,
                            linewidth=1,
                            label=f"{run['variant']} s{run['seed']} {key}")
        ax.set_xlabel('iteration')
        ax.set_ylabel('as logged (weighted)')
        ax.set_title('TIPS regularizers (own axis, zoomed)', fontsize=9)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
