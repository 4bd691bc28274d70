"""Does maximum-sampling bias predict shift consistency? Study helpers.

Pure functions behind ``tools/correlation_study.py``: per-run result files
(and which runs a resumed study may skip), Pearson/Spearman coefficients
with p-values, the scatter plot and the markdown summary. Nothing here
trains or runs a model, so all of it is testable on hand-made rows.

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
import json
import math
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tips_mmseg.utils import atomic_write

#: The MSB measured for every run; the first is the study's x axis.
PRIMARY_MSB = 'msb_soft'
STUDY_MSB_KEYS = ('msb_soft', 'msb_pixel', 'msb_phase')
#: Shift consistency measurements correlated with MSB (percent).
CONSISTENCY_KEYS = ('mASSC', 'mASSC_circular')
#: Every number a finished run must have (``msb_phase`` may be None).
ROW_METRIC_KEYS = STUDY_MSB_KEYS + CONSISTENCY_KEYS + (
    'mASSC_worst', 'shift_fidelity', 'mIoU')
#: Significance level the summary reads the p-values at.
ALPHA = 0.05

#: Fixed colours per variant (matplotlib's tab10), so figures agree.
VARIANT_COLOURS = {
    'vanilla': 'tab:red',
    'blurpool': 'tab:orange',
    'aps': 'tab:green',
    'lps': 'tab:purple',
    'tips': 'tab:blue',
}

_LABELS = {
    'msb_soft': 'MSB (soft)',
    'msb_pixel': 'MSB (pixel)',
    'msb_phase': 'MSB (phase)',
    'mASSC': 'mASSC (%)',
    'mASSC_circular': 'mASSC circular (%)',
}


def run_name(variant: str, seed: int) -> str:
    """Name of one run, e.g. ``tips_seed1``."""
    return f'{variant}_seed{seed}'


def run_result_path(work_dir: str, variant: str, seed: int) -> str:
    """Where the result row of one run is stored."""
    return osp.join(work_dir, 'runs', run_name(variant, seed) + '.json')


def save_run(path: str, row: dict) -> None:
    """Write one run's row atomically (a killed study leaves no half file).

    Args:
        path (str): Target, see :func:`run_result_path`.
        row (dict): The run's row, including its ``settings``.
    """
    atomic_write(json.dumps(row, indent=2), path)


def load_run(path: str, settings: Optional[dict] = None) -> Optional[dict]:
    """The stored row of a finished run, or None if it must be (re)run.

    A run is reused only if its file parses, has every metric, and was made
    with the same ``settings`` (iterations, shifts, ...): a study continued
    with other settings would otherwise mix incomparable runs.

    Args:
        path (str): The run's result file.
        settings (dict, optional): The settings the study runs with now;
            None accepts any.

    Returns:
        dict | None: The row, or None (missing, unreadable, incomplete or
        made with other settings).
    """
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or any(key not in row
                                        for key in ROW_METRIC_KEYS):
        return None
    if settings is not None and row.get('settings') != settings:
        return None
    return row


def plan_runs(work_dir: str, variants: Sequence[str], seeds: Sequence[int],
              settings: Optional[dict] = None
              ) -> Tuple[List[Tuple[str, int]], List[dict]]:
    """Split the study into runs still to do and rows already done.

    Args:
        work_dir (str): The study's work dir.
        variants (Sequence[str]): Variant names, e.g. ``('vanilla', 'tips')``.
        seeds (Sequence[int]): Training seeds.
        settings (dict, optional): See :func:`load_run`.

    Returns:
        tuple: ``(todo, done)``: ``[(variant, seed), ...]`` to run, all
        variants of the first seed first, and the reusable rows.
    """
    todo, done = [], []
    # Seed-major: a study stopped early still has every variant for the
    # seeds it finished, so its numbers compare like with like.
    for seed in seeds:
        for variant in variants:
            row = load_run(run_result_path(work_dir, variant, seed), settings)
            if row is None:
                todo.append((variant, seed))
            else:
                done.append(row)
    return todo, done


def order_rows(rows: Iterable[dict],
               variants: Optional[Sequence[str]] = None) -> List[dict]:
    """Rows sorted by variant (in ``variants`` order, else by name), seed."""
    rank = {name: i for i, name in enumerate(variants or ())}
    return sorted(rows, key=lambda r: (rank.get(r['variant'], len(rank)),
                                       r['variant'], r['seed']))


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

    A model that predicts one class everywhere (on the toy set: background,
    mIoU 16.7) is 100% shift consistent whatever its downsamplers do, so it
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
        coefficients (dict, optional): As from :func:`compute_coefficients`;
            computed when None.
        title (str, optional): Figure title.
        excluded_rows (Sequence[dict]): Runs left out of the coefficients
            and the line (see :func:`split_learned`), drawn as hollow
            markers. Defaults to ().

    Returns:
        str: ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    if coefficients is None:
        coefficients = compute_coefficients(rows, (msb_key, ),
                                            consistency_keys)
    variants = list(dict.fromkeys(row['variant'] for row in rows))
    fig, axes = plt.subplots(
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
        ax.set_title(_format_coefficient_line(
            coefficients[msb_key][cons_key]), fontsize=9)
        ax.set_xlabel(_LABELS.get(msb_key, msb_key))
        ax.set_ylabel(_LABELS.get(cons_key, cons_key))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc='best')
    fig.suptitle(title or 'Maximum-sampling bias vs shift consistency')
    fig.tight_layout()
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _fmt_p(value: Optional[float]) -> str:
    if value is None:
        return '-'
    return f'{value:.2g}' if value >= 1e-3 else f'{value:.1e}'


def _format_coefficient_line(stats: dict) -> str:
    if stats['pearson_r'] is None:
        return f'n = {stats["n"]}: {stats["note"]}'
    return (f'Pearson r = {stats["pearson_r"]:.2f} '
            f'(p = {_fmt_p(stats["pearson_p"])}), n = {stats["n"]}\n'
            f'Spearman rho = {stats["spearman_rho"]:.2f} '
            f'(p = {_fmt_p(stats["spearman_p"])})')


def _strength(r: float) -> str:
    size = abs(r)
    if size >= 0.7:
        return 'strong'
    if size >= 0.4:
        return 'moderate'
    return 'weak'


def describe_correlation(stats: dict, x_label: str, y_label: str) -> str:
    """One or two plain sentences reading a :func:`correlate` result.

    Args:
        stats (dict): As returned by :func:`correlate`.
        x_label (str): Name of the x variable.
        y_label (str): Name of the y variable.

    Returns:
        str: E.g. 'MSB (soft) and mASSC: a strong negative correlation
        (Pearson r = -0.81, p = 0.0003; Spearman ...), significant at 5%.'
    """
    if stats['pearson_r'] is None:
        return f'{x_label} and {y_label}: no coefficient ({stats["note"]}).'
    r, rho = stats['pearson_r'], stats['spearman_rho']
    significant = [name for name, p in (('Pearson', stats['pearson_p']),
                                         ('Spearman', stats['spearman_p']))
                   if p is not None and p < ALPHA]
    if len(significant) == 2:
        verdict = f'significant at the {ALPHA:.0%} level'
    elif significant:
        verdict = (f'significant at the {ALPHA:.0%} level by '
                   f'{significant[0]} only')
    else:
        verdict = f'not significant at the {ALPHA:.0%} level'
    sign = 'negative' if r < 0 else 'positive'
    return (f'{x_label} and {y_label} over {stats["n"]} runs: a '
            f'{_strength(r)} {sign} correlation (Pearson r = {r:.2f}, '
            f'p = {_fmt_p(stats["pearson_p"])}; Spearman rho = {rho:.2f}, '
            f'p = {_fmt_p(stats["spearman_p"])}), {verdict}.')


def reading_paragraph(coefficients: dict, means: Sequence[dict],
                      msb_key: str = PRIMARY_MSB,
                      partial_coefficients: Optional[dict] = None) -> str:
    """The summary's reading of the numbers, generated from them.

    The paper predicts a *negative* correlation: the more a network's
    downsamplers keep window maxima, the less consistent its predictions
    under shifts. The paragraph states what the runs show against that.

    Args:
        coefficients (dict): As from :func:`compute_coefficients` over runs.
        means (Sequence[dict]): As from :func:`variant_means`.
        msb_key (str): The primary MSB.
        partial_coefficients (dict, optional): As from
            :func:`compute_partial_coefficients`; read if given.

    Returns:
        str: One paragraph of markdown.
    """
    x_label = _LABELS.get(msb_key, msb_key)
    sentences = [
        describe_correlation(coefficients[msb_key][key], x_label, key)
        for key in CONSISTENCY_KEYS if key in coefficients[msb_key]
    ]
    main = coefficients[msb_key][CONSISTENCY_KEYS[0]]
    if main['pearson_r'] is None:
        verdict = 'The runs cannot test the paper\'s claim.'
    elif main['pearson_r'] < 0 and (main['pearson_p'] or 1) < ALPHA:
        verdict = ('This supports the paper\'s claim that a higher '
                   'maximum-sampling bias goes with lower shift consistency.')
    elif main['pearson_r'] < 0:
        verdict = ('The sign agrees with the paper\'s claim (higher MSB, '
                   'lower consistency), but these runs are too few or too '
                   'noisy to call it established.')
    else:
        verdict = ('These runs do not reproduce the paper\'s claim (it '
                   'predicts a negative correlation).')
    ranked = [m for m in means if m.get(msb_key) is not None
              and m.get('mASSC') is not None]
    if ranked:
        by_msb = sorted(ranked, key=lambda m: m[msb_key])
        by_cons = sorted(ranked, key=lambda m: -m['mASSC'])
        sentences.append(
            f'By variant (means over seeds), {x_label} runs from '
            f'{by_msb[0]["variant"]} ({by_msb[0][msb_key]:.3f}) to '
            f'{by_msb[-1]["variant"]} ({by_msb[-1][msb_key]:.3f}); mASSC '
            f'is highest for {by_cons[0]["variant"]} '
            f'({by_cons[0]["mASSC"]:.2f}%) and lowest for '
            f'{by_cons[-1]["variant"]} ({by_cons[-1]["mASSC"]:.2f}%).')
    partial = (partial_coefficients or {}).get(CONSISTENCY_KEYS[0])
    if partial and partial['partial_r'] is not None:
        sentences.append(
            f'Holding {partial["control"]} fixed (a model that learned '
            'little predicts one class nearly everywhere, which is trivially '
            f'consistent), the partial correlation of {x_label} and '
            f'{CONSISTENCY_KEYS[0]} is r = {partial["partial_r"]:.2f} '
            f'(p = {_fmt_p(partial["partial_p"])}).')
    sentences.append(verdict)
    return ' '.join(sentences)


def format_runs_table(rows: Sequence[dict],
                      excluded_rows: Sequence[dict] = ()) -> str:
    """Markdown table: one line per run; excluded runs marked."""
    header = ('| variant | seed | mIoU | mASSC | mASSC circ. | mASSC worst '
              '| MSB soft | MSB pixel | MSB phase |')
    lines = [header, '|' + '---|' * 9]
    excluded = {(r['variant'], r['seed']) for r in excluded_rows}
    every = list(rows) + list(excluded_rows)
    variants = list(dict.fromkeys(r['variant'] for r in every))
    for row in order_rows(every, variants):
        mark = (' (excluded)' if (row['variant'], row['seed']) in excluded
                else '')
        lines.append(
            f'| {row["variant"]}{mark} | {row["seed"]} | '
            f'{_fmt(row["mIoU"], 2)} | '
            f'{_fmt(row["mASSC"], 2)} | {_fmt(row["mASSC_circular"], 2)} | '
            f'{_fmt(row["mASSC_worst"], 2)} | {_fmt(row["msb_soft"])} | '
            f'{_fmt(row["msb_pixel"])} | {_fmt(row["msb_phase"])} |')
    return '\n'.join(lines)


def _mean_std(entry: dict, key: str, digits: int) -> str:
    if entry.get(key) is None:
        return '-'
    std = entry.get(key + '_std')
    text = f'{entry[key]:.{digits}f}'
    return text if std is None else f'{text} ± {std:.{digits}f}'


def format_means_table(means: Sequence[dict]) -> str:
    """Markdown table: per variant, mean ± std over seeds."""
    lines = [
        '| variant | seeds | mIoU | mASSC | mASSC circ. | MSB soft | '
        'MSB pixel | MSB phase |', '|' + '---|' * 8
    ]
    for entry in means:
        lines.append(
            f'| {entry["variant"]} | {entry["num_seeds"]} | '
            f'{_mean_std(entry, "mIoU", 2)} | {_mean_std(entry, "mASSC", 2)}'
            f' | {_mean_std(entry, "mASSC_circular", 2)} | '
            f'{_mean_std(entry, "msb_soft", 3)} | '
            f'{_mean_std(entry, "msb_pixel", 3)} | '
            f'{_mean_std(entry, "msb_phase", 3)} |')
    return '\n'.join(lines)


def format_coefficients_table(coefficients: dict) -> str:
    """Markdown table: every MSB against every consistency metric."""
    lines = [
        '| MSB | vs | n | Pearson r | p | Spearman rho | p |',
        '|' + '---|' * 7
    ]
    for msb_key, by_cons in coefficients.items():
        for cons_key, stats in by_cons.items():
            lines.append(
                f'| {msb_key} | {cons_key} | {stats["n"]} | '
                f'{_fmt(stats["pearson_r"])} | {_fmt_p(stats["pearson_p"])} '
                f'| {_fmt(stats["spearman_rho"])} | '
                f'{_fmt_p(stats["spearman_p"])} |')
    return '\n'.join(lines)


def write_summary(path: str,
                  rows: Sequence[dict],
                  coefficients: dict,
                  means: Sequence[dict],
                  settings: Optional[dict] = None,
                  figure: Optional[str] = None,
                  mean_coefficients: Optional[dict] = None,
                  partial_coefficients: Optional[dict] = None,
                  excluded_rows: Sequence[dict] = (),
                  all_coefficients: Optional[dict] = None,
                  msb_key: str = PRIMARY_MSB) -> str:
    """Write the study's markdown summary.

    Args:
        path (str): Target ``.md`` file (written atomically).
        rows (Sequence[dict]): One per run.
        coefficients (dict): Over runs, from :func:`compute_coefficients`.
        means (Sequence[dict]): From :func:`variant_means`.
        settings (dict, optional): Study settings, listed if given.
        figure (str, optional): Scatter PNG, linked relative to ``path``.
        mean_coefficients (dict, optional): Over variant means (n = number
            of variants), listed if given.
        partial_coefficients (dict, optional): From
            :func:`compute_partial_coefficients`, listed and read if given.
        excluded_rows (Sequence[dict]): Runs left out of ``rows`` (see
            :func:`split_learned`); listed, marked. Defaults to ().
        all_coefficients (dict, optional): Coefficients over every run,
            excluded ones included; listed if given.
        msb_key (str): The primary MSB.

    Returns:
        str: The markdown text.
    """
    parts = ['# MSB vs shift consistency', '']
    if settings:
        parts += ['Settings: ' + ', '.join(
            f'{key}={value}' for key, value in settings.items()), '']
    parts += [
        f'Primary MSB: `{msb_key}` (defined for every downsampler and '
        'graded; see tips_mmseg/analysis/correlation.py). Consistency in %.',
        '', '## Reading', '',
        reading_paragraph(coefficients, means, msb_key, partial_coefficients),
        ''
    ]
    if figure:
        rel = osp.relpath(osp.abspath(figure),
                          osp.dirname(osp.abspath(path)))
        parts += [f'![MSB vs shift consistency]({rel})', '']
    parts += ['## Coefficients over runs', '',
              format_coefficients_table(coefficients), '']
    if excluded_rows:
        names = ', '.join(run_name(r['variant'], r['seed'])
                          for r in excluded_rows)
        parts += [f'Left out of the coefficients, means and line (they '
                  f'predict one class, trivially consistent): {names}.', '']
    if all_coefficients:
        parts += ['## Coefficients over all runs (none left out)', '',
                  format_coefficients_table(all_coefficients), '']
    if mean_coefficients:
        parts += ['## Coefficients over variant means', '',
                  format_coefficients_table(mean_coefficients), '']
    if partial_coefficients:
        parts += [f'## Partial correlation of `{msb_key}`, control held '
                  'fixed', '', '| vs | control | n | partial r | p |',
                  '|' + '---|' * 5]
        for cons_key, stats in partial_coefficients.items():
            parts.append(
                f'| {cons_key} | {stats["control"]} | {stats["n"]} | '
                f'{_fmt(stats["partial_r"])} | {_fmt_p(stats["partial_p"])} '
                '|')
        parts.append('')
    parts += ['## Per variant (mean ± std over seeds)', '',
              format_means_table(means), '', '## Runs', '',
              format_runs_table(rows, excluded_rows), '']
    text = '\n'.join(parts)
    atomic_write(text, path)
    return text
