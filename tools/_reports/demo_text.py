"""The markdown report of ``tools/demo.py``: set-up, table, differences,
figures, tau statistics and caveats, written from the per-run results (see
:mod:`_reports.demo_numbers`)."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from tips_mmseg.analysis import map_mean, odd_even_gap
from .demo_numbers import (group_runs, mean_std, metric_mean, run_values,
                           seed_spread)

#: Columns of the report table: (key in metrics, header). Keys missing from
#: every row are left out, so metrics added later appear on their own.
METRIC_COLUMNS = (('mIoU', 'mIoU'), ('aAcc', 'aAcc'), ('mASSC', 'mASSC'),
                  ('mASSC_circular', 'mASSC circ.'),
                  ('mASSC_worst', 'mASSC worst'),
                  ('mASSC_crop', 'mASSC crop'),
                  ('mASSC_subpixel', 'mASSC subpx'),
                  ('mASSC_boundary', 'mASSC boundary'),
                  ('shift_fidelity', 'fidelity'), ('shift_mIoU',
                                                   'shift mIoU'))
#: Classes the report shows IoU for (the thin ones are the hard ones).
SHOWN_CLASSES = ('thin_bar', 'ring')


def _cell(values: np.ndarray) -> str:
    mean, std = mean_std(values)
    if mean is None:
        return '-'
    return f'{mean:.2f}' if std is None else f'{mean:.2f} ± {std:.2f}'


def _link(target: str, folder: str) -> str:
    return osp.relpath(target, folder).replace(os.sep, '/')


def _setup_lines(results: Sequence[dict], settings: dict, folder: str,
                 docs_dir: Optional[str], several_seeds: bool) -> List[str]:
    """Title, data and training, links to the definitions, the protocol."""
    seeds = sorted({r.get('seed', 0) for r in results})
    opt = settings.get('optimizer') or {}
    max_shift = settings['max_shift']
    lines: List[str] = [
        '# tips-mmseg demo: vanilla vs shift-invariant downsampling', ''
    ]
    setup = (
        'DeepLabV3+ R18-D8 trained from scratch on CPU on the toy shapes '
        f"(`{settings['data_root']}`: "
        f"{settings.get('num_train', '?')} train / "
        f"{settings.get('num_val', '?')} val lossless 64x64 PNG images, "
        f"5 classes, data seed {settings.get('data_seed', 0)}) for "
        f"{settings['iters']} iterations per run"
        + (f", batch {settings['batch_size']}" if 'batch_size' in settings
           else '')
        + (f", {opt.get('type')} lr {opt.get('lr')}" if opt else '')
        + f"; training seeds: {', '.join(str(s) for s in seeds)}.")
    lines += [setup, '']
    if docs_dir:
        method = _link(osp.join(docs_dir, 'method.md'), folder)
        evaluation = _link(osp.join(docs_dir, 'evaluation.md'), folder)
        lines += [
            'Definitions: the layers and regularizers in '
            f'[method.md]({method}), '
            'the shift metrics (mASSC and the rest) in '
            f'[evaluation.md]({evaluation}).', ''
        ]
    lines += [
        f"Shift metrics (in %, like mIoU) from the shift-consistency hook in "
        f"the test run: {settings.get('num_shifts', 5)} shifts per val image "
        f"drawn from [-{max_shift}, {max_shift}]^2 (seeded per image, so "
        'every variant sees the same shifts). mASSC: standard shift, border '
        'filled with the mean colour; circ.: circular shift; worst: the '
        "image's worst shift. The consistency map below scores every shift "
        f"of that same range on the first {settings.get('map_images', '?')} "
        'val images; its mean is the `map mean` column.', ''
    ]
    if several_seeds:
        lines += ['Cells: mean ± standard deviation over the runs (seeds) '
                  'of a variant; `runs` counts them.', '']
    return lines


def _table_lines(results: Sequence[dict], groups: dict) -> List[str]:
    """One row per variant: the test metrics present, the shown classes'
    IoU, the consistency map's mean and even-odd gap, MSB."""
    columns = [(k, h) for k, h in METRIC_COLUMNS
               if any(k in r['metrics'] for r in results)]
    header = (['variant', 'runs'] + [h for _, h in columns] +
              [f'IoU {c}' for c in SHOWN_CLASSES] +
              ['map mean', 'even-odd', 'MSB soft', 'MSB phase'])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for variant, runs in groups.items():
        row = [variant, str(len(runs))]
        row += [_cell(run_values(runs, lambda r, k=k: r['metrics'][k]))
                for k, _ in columns]
        row += [_cell(run_values(runs, lambda r, c=c: r['class_iou'][c]))
                for c in SHOWN_CLASSES]
        row += [_cell(run_values(runs, lambda r: map_mean(r['heatmap']))),
                _cell(run_values(runs,
                                 lambda r: odd_even_gap(r['heatmap']))),
                _cell(run_values(runs, lambda r: r['msb']['msb_soft'])),
                _cell(run_values(runs, lambda r: r['msb']['msb_phase']))]
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def _difference_lines(groups: dict, settings: dict,
                      spread_from: List[str], spread: dict) -> List[str]:
    """Differences to the first variant, in the light of the seed spread:
    measured here if some variant ran with several seeds, else as given
    in ``settings``."""
    if spread:
        seeds_of = {v: ', '.join(str(r.get('seed', 0)) for r in groups[v])
                    for v in spread_from}
        how = ('std over seeds, ' + ('mean over ' if len(spread_from) > 1
                                     else '') + ', '.join(
            f'{v} (seeds {seeds_of[v]})' for v in spread_from))
    else:
        spread = dict(settings.get('seed_spread') or {})
        how = settings.get('seed_spread_source', 'measured separately')
    lines = []
    if len(groups) > 1:
        (base_name, base_runs), *others = groups.items()
        lines += ['', f'Differences to {base_name} (points):', '']
        for variant, runs in others:
            parts = []
            for key in ('mIoU', 'mASSC'):
                diff = ((metric_mean(runs, key) or 0.) -
                        (metric_mean(base_runs, key) or 0.))
                note = ''
                if key in spread:
                    note = (' (beyond the seed spread)'
                            if abs(diff) > 2 * spread[key] else
                            ' (within the seed spread)')
                parts.append(f'{key} {diff:+.2f}{note}')
            lines.append(f'- {variant} vs {base_name}: ' + ', '.join(parts)
                         + '.')
    lines += ['']
    if spread:
        lines += [
            f'Seed-to-seed spread ({how}): ' + ', '.join(
                f'{k} ± {v:.2f}' for k, v in spread.items()) +
            '; a difference counts as beyond it when larger than twice '
            'that.', ''
        ]
    else:
        lines += ['No seed-to-seed spread was measured (one seed per '
                  'variant): read the differences with care.', '']
    return lines


#: Heading and note of each figure of the report.
FIGURE_TITLES = dict(metrics='Accuracy and shift consistency',
                     maps='Consistency map: consistency per shift (dh, dw)',
                     losses='Training losses')
FIGURE_NOTES = dict(
    maps=('Each cell: mean consistency over the map images at that '
          'shift (first seed of each variant); one colour scale. '
          '`even-odd`: mean at shifts with dh + dw even minus odd; '
          'positive = odd shifts hurt more, the checkerboard of '
          'aliasing.'),
    losses=("Left: the task loss (decode + auxiliary cross-entropy) "
            "of every run, with TIPS's 1 - alpha factor divided out so "
            'that all compare. Right: the TIPS regularizers as they '
            'enter the loss (loss_fm = lambda_fm * L_FM, 0.5 for a '
            'uniform tau; loss_undo = alpha * L_undo, 0 until it '
            'switches on).'))


def _figure_lines(figures: Dict[str, str], folder: str) -> List[str]:
    lines = ['## Figures', '']
    for key, figure in figures.items():
        lines += [f'### {FIGURE_TITLES.get(key, key)}', '',
                  f'![{key}]({_link(figure, folder)})', '']
        if key in FIGURE_NOTES:
            lines += [FIGURE_NOTES[key], '']
    return lines


def _tau_lines(results: Sequence[dict], settings: dict) -> List[str]:
    """The tau statistics of the TIPS runs and what they say; nothing
    without TIPS runs."""
    tips_runs = [r for r in results if r.get('tau')]
    if not tips_runs:
        return []
    lines = [
        '## TIPS: how far is tau from uniform?', '',
        f"Per TIPS layer, over {settings.get('msb_images', '?')} val "
        'images and all channels: mean largest weight max(tau) (0.25 '
        'uniform = 2x2 average pooling, 1 = one component, like a '
        'strided or APS layer), mean ||tau||_2 (0.5 uniform, 1 one-hot) '
        'and the share of channels with max(tau) > 0.9.', '',
        '| run | layer | channels | mean max(tau) | mean ||tau||_2 | '
        'max(tau) > 0.9 |', '|---|---|---|---|---|---|'
    ]
    for run in tips_runs:
        for layer in run['tau']:
            lines.append(
                f"| {run['variant']} s{run.get('seed', 0)} | "
                f"{layer['name']} | {layer['channels']} | "
                f"{layer['max_tau']:.3f} | {layer['norm_tau']:.3f} | "
                f"{100 * layer['one_hot_fraction']:.0f}% |")
    top = np.mean([layer['max_tau'] for r in tips_runs
                   for layer in r['tau']])
    verdict = ('tau stayed close to uniform: these TIPS layers act '
               'almost like 2x2 average pooling'
               if top < 0.3 else
               'tau moved away from uniform: the layers prefer some '
               'polyphase components')
    return lines + ['', f'Mean max(tau) over all layers: {top:.3f}: '
                    f'{verdict}.', '']


def _caveat_lines(groups: dict, spread_from: List[str],
                  settings: dict) -> List[str]:
    caveats = []
    counts = sorted({len(runs) for runs in groups.values()})
    if counts == [1]:
        caveats.append(
            'One training seed per variant: differences smaller than the '
            'seed-to-seed spread of such runs are noise.')
    elif counts[0] == 1:
        caveats.append(
            'The seed spread comes from '
            + ', '.join(spread_from) + ' only; the other variants ran with '
            'one seed, so a difference within about twice the spread is '
            'noise.')
    else:
        caveats.append(
            f'{counts[0]} or more seeds per variant: a spread from so few '
            'runs is itself rough.')
    caveats += [
        f"A toy set and short training ({settings['iters']} iterations from "
        'scratch): the numbers show the instruments at work, not what the '
        'methods achieve on real data.',
        'Whole-image consistency is dominated by large flat regions; '
        'inconsistency lives at object boundaries and on the fine textures.',
        'The consistency map uses the first '
        f"{settings.get('map_images', '?')} val images (one forward per "
        'image and shift), the table all val images: the same range of '
        'shifts, so `map mean` and mASSC estimate the same quantity on '
        'different image sets.',
        'No timing comparison: runs shared the CPU with whatever else ran; '
        'see the benchmark tools for cost ratios measured in one run.',
    ]
    return ['## Caveats', ''] + [f'- {c}' for c in caveats] + ['']


def write_report(results: Sequence[dict],
                 figures: Dict[str, str],
                 path: str,
                 settings: dict,
                 docs_dir: Optional[str] = None) -> str:
    """Write the markdown report: set-up, table, differences, figures, tau
    statistics and caveats.

    Args:
        results (list[dict]): One row per variant and seed (see
            :mod:`_reports.demo_numbers`).
        figures (dict): ``metrics``, ``maps``, ``losses`` -> PNG paths.
        path (str): The report's path.
        settings (dict): ``data_root``, ``iters``, ``seeds``,
            ``max_shift``; optional ``num_train``, ``num_val``,
            ``data_seed``, ``batch_size``, ``optimizer``, ``num_shifts``,
            ``map_images``, ``msb_images``, ``wall_s``, ``seed_spread``
            (dict: metric -> std measured elsewhere, used when there is one
            seed) and ``seed_spread_source`` (where it was measured).
        docs_dir (str, optional): The repository's ``docs`` folder; links to
            its method and metric definitions are made relative to the
            report. None: no links. Defaults to None.

    Returns:
        str: ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    groups = group_runs(results)
    spread, spread_from = seed_spread(groups)
    several_seeds = any(len(runs) > 1 for runs in groups.values())
    lines = (_setup_lines(results, settings, folder, docs_dir, several_seeds)
             + _table_lines(results, groups)
             + _difference_lines(groups, settings, spread_from, spread)
             + _figure_lines(figures, folder)
             + _tau_lines(results, settings)
             + _caveat_lines(groups, spread_from, settings))
    if settings.get('wall_s'):
        lines += [f"The whole demo took {settings['wall_s']:.0f} s on this "
                  'machine.', '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
