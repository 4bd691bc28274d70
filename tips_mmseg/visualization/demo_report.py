"""Figures and the markdown report of ``tools/demo.py``.

Every function takes the list of per-variant results the demo collects:
``dict(variant, metrics, msb, heatmap, losses, train_s, iters)``.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from .shift_heatmap import plot_consistency_map

#: Columns of the report table: (key in metrics, header).
METRIC_COLUMNS = (('mIoU', 'mIoU'), ('aAcc', 'aAcc'), ('mASSC', 'mASSC'),
                  ('mASSC_circular', 'mASSC circ.'),
                  ('mASSC_worst', 'mASSC worst'),
                  ('shift_fidelity', 'fidelity'), ('shift_mIoU',
                                                   'shift mIoU'))
BAR_METRICS = ('mIoU', 'mASSC', 'mASSC_circular', 'mASSC_worst')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def draw_metric_bars(results: Sequence[dict], path: str) -> str:
    """Grouped bars: mIoU and the shift consistencies of every variant."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(results)
    positions = np.arange(len(BAR_METRICS))
    for i, result in enumerate(results):
        values = [result['metrics'].get(key, np.nan) for key in BAR_METRICS]
        bars = ax.bar(positions + i * width, values, width,
                      label=result['variant'])
        ax.bar_label(bars, fmt='%.1f', fontsize=7)
    ax.set_xticks(positions + width * (len(results) - 1) / 2, BAR_METRICS)
    ax.set_ylabel('%')
    ax.set_ylim(0, 105)
    ax.set_title('accuracy and shift consistency (toy val set)')
    ax.legend(loc='lower right')
    return _save(fig, path)


def draw_consistency_maps(results: Sequence[dict], path: str) -> str:
    """One consistency map per variant, on a shared colour scale."""
    plt = _pyplot()
    grids = [np.asarray(r['heatmap']['grid'], dtype=float) for r in results]
    vmin = float(np.nanmin([np.nanmin(g) for g in grids]))
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, result, grid in zip(axes[0], results, grids):
        image = plot_consistency_map(
            ax, grid, result['heatmap']['axis'],
            title=f"{result['variant']} (mean {np.nanmean(grid):.1f}%)",
            vmin=vmin, vmax=100.0)
    fig.subplots_adjust(wspace=0.35)  # room for each panel's dh label
    fig.colorbar(image, ax=list(axes[0]), label='consistency (%)')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)  # no tight_layout: it fights the shared bar
    plt.close(fig)
    return path


def draw_loss_curves(results: Sequence[dict], path: str) -> str:
    """Training loss of every variant against the iteration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for result in results:
        ax.plot(np.arange(1, len(result['losses']) + 1), result['losses'],
                label=result['variant'], linewidth=1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('total training loss')
    ax.set_yscale('log')
    ax.legend()
    return _save(fig, path)


def _fmt(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def write_report(results: Sequence[dict], figures: Dict[str, str],
                 path: str, settings: dict) -> str:
    """Write the markdown report: settings, the table, the figures."""
    folder = osp.dirname(osp.abspath(path))
    header = ['variant'] + [name for _, name in METRIC_COLUMNS] + [
        'MSB soft', 'MSB phase', 'train s'
    ]
    lines: List[str] = [
        '# tips-mmseg demo: vanilla vs shift-invariant downsampling', '',
        'DeepLabV3+ R18-D8 trained from scratch on the toy shapes '
        f"({settings['data_root']}, 64x64, 5 classes) for "
        f"{settings['iters']} iterations per variant on CPU, seed "
        f"{settings['seed']}. Shift metrics: 5 random shifts per image up to "
        f"{settings['max_shift']} px (EVALUATION.md), in % like mIoU. MSB: "
        'means over the downsampling layers (METHOD.md section 2).', '',
        '| ' + ' | '.join(header) + ' |',
        '|' + '---|' * len(header)
    ]
    for result in results:
        row = [result['variant']]
        row += [_fmt(result['metrics'].get(key)) for key, _ in METRIC_COLUMNS]
        row += [_fmt(result['msb'].get('msb_soft')),
                _fmt(result['msb'].get('msb_phase')),
                f"{result['train_s']:.0f}"]
        lines.append('| ' + ' | '.join(row) + ' |')
    if len(results) > 1:
        base, *others = results
        for other in others:
            gain = (other['metrics']['mASSC'] - base['metrics']['mASSC'])
            lines.append('')
            lines.append(
                f"{other['variant']} vs {base['variant']}: mASSC "
                f'{gain:+.2f} points, mIoU '
                f"{other['metrics']['mIoU'] - base['metrics']['mIoU']:+.2f} "
                'points.')
    lines += ['', '## Figures', '']
    titles = dict(metrics='Accuracy and shift consistency',
                  maps='Consistency map: consistency per shift (dh, dw)',
                  losses='Training loss')
    for key, figure in figures.items():
        lines += [f'### {titles.get(key, key)}', '',
                  f'![{key}]({osp.relpath(figure, folder)})', '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
