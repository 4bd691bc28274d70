"""The written summary of ``tools/correlation_study.py``: tables and a
reading of the numbers, generated from them.

The numbers come from :mod:`tips_mmseg.analysis.correlation`
(:func:`correlate`, :func:`compute_coefficients`,
:func:`compute_partial_coefficients`, :func:`variant_means`,
:func:`split_learned` below are its functions).
"""
import os.path as osp
from typing import Optional, Sequence

from tips_mmseg.analysis.correlation import CONSISTENCY_KEYS, PRIMARY_MSB
from tips_mmseg.utils import atomic_write
from .correlation_runs import order_rows, run_name

#: Significance level the summary reads the p-values at.
ALPHA = 0.05

#: Axis and table names of the row keys.
LABELS = {
    'msb_soft': 'MSB (soft)',
    'msb_pixel': 'MSB (pixel)',
    'msb_phase': 'MSB (phase)',
    'mASSC': 'mASSC (%)',
    'mASSC_circular': 'mASSC circular (%)',
}


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _fmt_p(value: Optional[float]) -> str:
    if value is None:
        return '-'
    return f'{value:.2g}' if value >= 1e-3 else f'{value:.1e}'


def format_coefficient_line(stats: dict) -> str:
    """A :func:`correlate` result on two lines (the scatter panels' titles).
    """
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
    x_label = LABELS.get(msb_key, msb_key)
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
