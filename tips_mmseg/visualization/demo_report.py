"""Measurements, figures and the markdown report of ``tools/demo.py``.

Every drawing function takes the list of per-run results the demo collects
(one row per variant and seed, as in ``results.json``)::

    dict(variant, seed, metrics, class_iou, msb, tau, heatmap, map_metrics,
         losses, loss_terms, train_s, iters)

``metrics`` holds what ``runner.test()`` returned (``mIoU``, ``aAcc``,
``mASSC``, ...); optional keys (``mASSC_crop``, ``mASSC_boundary``, ...)
get a table column when present.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .shift_heatmap import plot_consistency_map

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
#: Panels of the metric figure, each on its own zoomed axis.
BAR_METRICS = ('mIoU', 'mASSC', 'mASSC_circular', 'mASSC_worst',
               'mASSC_crop', 'mASSC_boundary')
#: Classes the report shows IoU for (the thin ones are the hard ones).
SHOWN_CLASSES = ('thin_bar', 'ring')


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


# ----------------------------------------------------------------- measuring


@torch.no_grad()
def class_iou(model, dataloader, num_classes: int,
              ignore_index: int = 255) -> List[float]:
    """IoU (%) per class of ``model`` over ``dataloader`` (NaN: a class in
    neither prediction nor ground truth).

    Args:
        model (BaseSegmentor): mmseg segmentor (eval mode is set).
        dataloader: Test dataloader with ground truth.
        num_classes (int): Number of classes.
        ignore_index (int): Label not scored. Defaults to 255.
    """
    model.eval()
    intersect = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for batch in dataloader:
        for sample in model.test_step(batch):
            pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy()
            gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy()
            valid = gt != ignore_index
            pred, gt = pred[valid], gt[valid]
            inter = np.bincount(pred[pred == gt], minlength=num_classes)
            area_p = np.bincount(pred, minlength=num_classes)
            area_g = np.bincount(gt, minlength=num_classes)
            intersect += inter[:num_classes]
            union += (area_p + area_g - inter)[:num_classes]
    with np.errstate(invalid='ignore', divide='ignore'):
        return [float(v) for v in 100 * intersect / union]


@torch.no_grad()
def tau_statistics(model, dataloader, num_images: int = 8) -> List[dict]:
    """How far each TIPS layer's mixing weights tau are from uniform.

    Runs the first ``num_images`` images of ``dataloader`` and reads every
    TIPS layer's ``last_tau`` (N, C, 4). Per layer: ``max_tau``, the mean
    over images and channels of the largest weight (0.25 uniform, 1
    one-hot); ``norm_tau``, the mean of ``||tau||_2`` (0.5 uniform, 1
    one-hot; L_FM = 1 - norm_tau); ``one_hot_fraction``, the share of
    (image, channel) pairs whose largest weight exceeds 0.9.

    Returns:
        list[dict]: One dict per TIPS layer (``name``, ``channels`` and the
        statistics above); empty for a model without TIPS.
    """
    from tips_mmseg.models.layers import TIPS
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, TIPS)]
    if not layers:
        return []
    model.eval()
    taus: Dict[str, List[torch.Tensor]] = {name: [] for name, _ in layers}
    seen = 0
    for batch in dataloader:
        if seen >= num_images:
            break
        data = model.data_preprocessor(batch, False)
        keep = min(len(data['data_samples']), num_images - seen)
        model._forward(data['inputs'][:keep])
        for name, layer in layers:
            taus[name].append(layer.last_tau.detach().float().cpu())
        seen += keep
    stats = []
    for name, _ in layers:
        channels = int(taus[name][0].shape[1])
        tau = torch.cat(taus[name]).flatten(0, 1)  # (N * C, 4)
        top = tau.max(dim=-1).values
        stats.append(
            dict(name=name,
                 channels=channels,
                 max_tau=float(top.mean()),
                 norm_tau=float(tau.norm(dim=-1).mean()),
                 one_hot_fraction=float((top > 0.9).float().mean())))
    return stats


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


# ------------------------------------------------------------------ grouping


def group_runs(results: Sequence[dict]) -> 'OrderedDict[str, List[dict]]':
    """Runs by variant, in the order the variants first appear."""
    groups: 'OrderedDict[str, List[dict]]' = OrderedDict()
    for result in results:
        groups.setdefault(result['variant'], []).append(result)
    return groups


def _values(runs: Sequence[dict], getter) -> np.ndarray:
    values = []
    for run in runs:
        try:
            value = getter(run)
        except (KeyError, TypeError):
            value = None
        values.append(np.nan if value is None else float(value))
    return np.asarray(values, dtype=float)


def _mean_std(values: np.ndarray):
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    std = float(values.std(ddof=1)) if len(values) > 1 else None
    return float(values.mean()), std


def _cell(values: np.ndarray) -> str:
    mean, std = _mean_std(values)
    if mean is None:
        return '-'
    return f'{mean:.2f}' if std is None else f'{mean:.2f} ± {std:.2f}'


def map_mean(heatmap: dict) -> float:
    """Mean of a consistency map over every shift except (0, 0)."""
    grid = np.asarray(heatmap['grid'], dtype=float)
    axis = list(heatmap['axis'])
    if 0 in axis:
        centre = axis.index(0)
        grid = grid.copy()
        grid[centre, centre] = np.nan
    return float(np.nanmean(grid))


def odd_even_gap(heatmap: dict) -> float:
    """Mean consistency at even minus at odd shifts (``dh + dw`` even or
    odd, (0, 0) excluded): positive where odd shifts hurt more, the mark of
    aliasing in stride-2 sampling."""
    grid = np.asarray(heatmap['grid'], dtype=float)
    axis = np.asarray(heatmap['axis'])
    parity = (axis[:, None] + axis[None, :]) % 2
    centre = (axis[:, None] == 0) & (axis[None, :] == 0)
    even = grid[(parity == 0) & ~centre]
    odd = grid[parity == 1]
    return float(np.nanmean(even) - np.nanmean(odd))


# ------------------------------------------------------------------- figures


def _present(results: Sequence[dict], keys: Sequence[str]) -> List[str]:
    return [k for k in keys if any(k in r['metrics'] for r in results)]


def draw_metric_bars(results: Sequence[dict], path: str) -> str:
    """One panel per metric, each axis zoomed to the values (with seed
    spread as error bars when there are several seeds)."""
    plt = _pyplot()
    groups = group_runs(results)
    keys = _present(results, BAR_METRICS)
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 3.4),
                             squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, key in zip(axes[0], keys):
        means, errs = [], []
        for runs in groups.values():
            mean, std = _mean_std(_values(runs, lambda r: r['metrics'][key]))
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
    return _save(fig, path)


def draw_consistency_maps(results: Sequence[dict], path: str) -> str:
    """One consistency map per variant (first seed), on a shared colour scale
    from the smallest off-centre value to the largest (the centre, no
    shift, is 100 by definition and left blank)."""
    plt = _pyplot()
    firsts = [runs[0] for runs in group_runs(results).values()]
    grids = []
    for r in firsts:
        grid = np.asarray(r['heatmap']['grid'], dtype=float).copy()
        axis = list(r['heatmap']['axis'])
        if 0 in axis:
            grid[axis.index(0), axis.index(0)] = np.nan
        grids.append(grid)
    vmin = float(np.nanmin([np.nanmin(g) for g in grids]))
    vmax = float(np.nanmax([np.nanmax(g) for g in grids]))
    if vmax <= vmin:
        vmax = vmin + 1e-3
    fig, axes = plt.subplots(
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
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)  # no tight_layout: it fights the shared bar
    plt.close(fig)
    return path


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode='valid')


def draw_loss_curves(results: Sequence[dict], path: str) -> str:
    """Task loss (every variant, unscaled) and the TIPS regularizer terms
    (``loss_fm``, ``loss_undo``), in separate panels."""
    plt = _pyplot()
    groups = group_runs(results)
    regularized = [r for r in results
                   if set(r.get('loss_terms', {})) - {'task'}]
    fig, axes = plt.subplots(1, 2 if regularized else 1,
                             figsize=(11 if regularized else 6, 3.6),
                             squeeze=False)
    ax = axes[0][0]
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
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
    return _save(fig, path)


# -------------------------------------------------------------------- report


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return '-'
    return f'{value:.{digits}f}'


def _link(target: str, folder: str) -> str:
    return osp.relpath(target, folder).replace(os.sep, '/')


def write_report(results: Sequence[dict],
                 figures: Dict[str, str],
                 path: str,
                 settings: dict,
                 docs_dir: Optional[str] = None) -> str:
    """Write the markdown report: set-up, table, differences, figures, tau
    statistics and caveats.

    Args:
        results (list[dict]): One row per variant and seed (see module doc).
        figures (dict): ``metrics``, ``maps``, ``losses`` -> PNG paths.
        path (str): The report's path.
        settings (dict): ``data_root``, ``iters``, ``seeds``,
            ``max_shift``; optional ``num_train``, ``num_val``,
            ``data_seed``, ``batch_size``, ``optimizer``, ``num_shifts``,
            ``map_images``, ``msb_images``, ``wall_s``, ``seed_spread``
            (dict: metric -> std measured elsewhere, used when there is one
            seed).
        docs_dir (str, optional): The repository's ``docs`` folder; links to
            its method and metric definitions are made relative to the
            report. None: no links. Defaults to None.

    Returns:
        str: ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    groups = group_runs(results)
    seeds = sorted({r.get('seed', 0) for r in results})
    columns = [(k, h) for k, h in METRIC_COLUMNS
               if any(k in r['metrics'] for r in results)]
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
        lines += [
            'Definitions: the layers and regularizers in '
            f"[method.md]({_link(osp.join(docs_dir, 'method.md'), folder)}), "
            'the shift metrics (mASSC and the rest) in '
            f"[evaluation.md]({_link(osp.join(docs_dir, 'evaluation.md'), folder)}).",
            ''
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
    if any(len(runs) > 1 for runs in groups.values()):
        lines += ['Cells: mean ± standard deviation over the runs (seeds) '
                  'of a variant; `runs` counts them.', '']
    header = (['variant', 'runs'] + [h for _, h in columns] +
              [f'IoU {c}' for c in SHOWN_CLASSES] +
              ['map mean', 'even-odd', 'MSB soft', 'MSB phase'])
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for variant, runs in groups.items():
        row = [variant, str(len(runs))]
        row += [_cell(_values(runs, lambda r, k=k: r['metrics'][k]))
                for k, _ in columns]
        row += [_cell(_values(runs, lambda r, c=c: r['class_iou'][c]))
                for c in SHOWN_CLASSES]
        row += [_cell(_values(runs, lambda r: map_mean(r['heatmap']))),
                _cell(_values(runs, lambda r: odd_even_gap(r['heatmap']))),
                _cell(_values(runs, lambda r: r['msb']['msb_soft'])),
                _cell(_values(runs, lambda r: r['msb']['msb_phase']))]
        lines.append('| ' + ' | '.join(row) + ' |')

    # Differences to the first variant, in the light of the seed spread:
    # measured here if some variant ran with several seeds, else as given.
    spread, spread_from = {}, []
    for variant, runs in groups.items():
        if len(runs) > 1:
            spread_from.append(variant)
    for key in ('mIoU', 'mASSC'):
        stds = [_mean_std(_values(groups[v], lambda r: r['metrics'][key]))[1]
                for v in spread_from]
        stds = [s for s in stds if s is not None]
        if stds:
            spread[key] = float(np.mean(stds))
    if spread:
        how = ('std over seeds, ' + ('mean over ' if len(spread_from) > 1
                                     else '') + ', '.join(
            f"{v} (seeds {', '.join(str(r.get('seed', 0)) for r in groups[v])})"
            for v in spread_from))
    else:
        spread = dict(settings.get('seed_spread') or {})
        how = settings.get('seed_spread_source', 'measured separately')
    if len(groups) > 1:
        (base_name, base_runs), *others = groups.items()
        lines += ['', f'Differences to {base_name} (points):', '']
        for variant, runs in others:
            parts = []
            for key in ('mIoU', 'mASSC'):
                diff = (_mean_std(_values(runs, lambda r: r['metrics'][key]))
                        [0] or 0.) - (_mean_std(_values(
                            base_runs, lambda r: r['metrics'][key]))[0] or 0.)
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

    titles = dict(metrics='Accuracy and shift consistency',
                  maps='Consistency map: consistency per shift (dh, dw)',
                  losses='Training losses')
    notes = dict(
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
    lines += ['## Figures', '']
    for key, figure in figures.items():
        lines += [f'### {titles.get(key, key)}', '',
                  f'![{key}]({_link(figure, folder)})', '']
        if key in notes:
            lines += [notes[key], '']

    tips_runs = [r for r in results if r.get('tau')]
    if tips_runs:
        lines += [
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
        top = np.mean([l['max_tau'] for r in tips_runs for l in r['tau']])
        verdict = ('tau stayed close to uniform: these TIPS layers act '
                   'almost like 2x2 average pooling'
                   if top < 0.3 else
                   'tau moved away from uniform: the layers prefer some '
                   'polyphase components')
        lines += ['', f'Mean max(tau) over all layers: {top:.3f}: {verdict}.',
                  '']

    lines += ['## Caveats', '']
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
    lines += [f'- {c}' for c in caveats] + ['']
    if settings.get('wall_s'):
        lines += [f"The whole demo took {settings['wall_s']:.0f} s on this "
                  'machine.', '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
