"""MSB-consistency study helpers: coefficients, resume, figure, summary."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from tips_mmseg.analysis.correlation import (
    ROW_METRIC_KEYS, compute_coefficients, compute_partial_coefficients,
    correlate, describe_correlation, partial_correlate, split_learned,
    load_run, order_rows, plan_runs, plot_correlation, reading_paragraph,
    run_result_path, save_run, variant_means, write_summary)

SETTINGS = dict(iters=10, max_shift=4)


def make_row(variant, seed, msb_soft, massc, phase=0.5, **extra):
    row = dict(variant=variant, seed=seed, msb_soft=msb_soft,
               msb_pixel=msb_soft / 2, msb_phase=phase, mASSC=massc,
               mASSC_circular=massc + 1, mASSC_worst=massc - 5,
               shift_fidelity=massc - 10, mIoU=40.0 + seed,
               settings=dict(SETTINGS))
    row.update(extra)
    return row


def study_rows():
    """Five variants x two seeds; MSB soft falls as consistency rises."""
    rows = []
    for index, variant in enumerate(('vanilla', 'blurpool', 'aps', 'lps',
                                     'tips')):
        for seed in (0, 1):
            msb = 0.7 - 0.05 * index + 0.01 * seed
            rows.append(make_row(variant, seed, msb, 80 + 3 * index - seed,
                                 phase=None if variant == 'vanilla' else 0.6))
    return rows


# ---------------------------------------------------------------- correlate
def test_perfectly_linear_data():
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    result = correlate(x, [2 * v + 1 for v in x])
    assert result['n'] == 6
    assert result['pearson_r'] == pytest.approx(1.0)
    assert result['spearman_rho'] == pytest.approx(1.0)
    assert result['pearson_p'] < 1e-6
    assert result['spearman_p'] < 1e-6
    assert result['note'] is None


def test_perfectly_decreasing_line_gives_minus_one():
    result = correlate([1, 2, 3, 4], [8, 6, 4, 2])
    assert result['pearson_r'] == pytest.approx(-1.0)
    assert result['spearman_rho'] == pytest.approx(-1.0)


def test_small_dataset_by_hand_and_scipy():
    # dx = [-2,-1,0,1,2], dy = [-1,-2,1,0,2]: sum dx*dy = 8, sum dx^2 =
    # sum dy^2 = 10, so r = 0.8; the ranks equal the values, so rho = 0.8.
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    result = correlate(x, y)
    assert result['pearson_r'] == pytest.approx(0.8)
    assert result['spearman_rho'] == pytest.approx(0.8)
    # Pearson p: two-sided t test, t = r sqrt(n-2) / sqrt(1-r^2), df = 3.
    t = 0.8 * math.sqrt(3) / math.sqrt(1 - 0.64)
    assert result['pearson_p'] == pytest.approx(2 * stats.t.sf(t, 3))
    assert result['pearson_p'] == pytest.approx(0.1041, abs=1e-4)
    assert result['spearman_p'] == pytest.approx(stats.spearmanr(x, y)[1])


def test_monotone_but_curved_data():
    x = np.arange(1, 9, dtype=float)
    result = correlate(x, -np.exp(x))
    assert result['spearman_rho'] == pytest.approx(-1.0)
    assert -1.0 < result['pearson_r'] < -0.7


@pytest.mark.parametrize('x, y, note', [
    ([1, 2], [3, 4], 'only 2 pairs'),
    ([1, 2, 3], [5, 5, 5], 'constant'),
    ([0.5, 0.5, 0.5, 0.5], [1, 2, 3, 4], 'constant'),
])
def test_degenerate_inputs_give_no_coefficient(x, y, note):
    result = correlate(x, y)
    assert result['pearson_r'] is None and result['spearman_p'] is None
    assert note in result['note']


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        correlate([1, 2, 3], [1, 2])


def test_coefficients_skip_missing_values():
    coefficients = compute_coefficients(study_rows())
    soft = coefficients['msb_soft']['mASSC']
    assert soft['n'] == 10
    assert soft['pearson_r'] < -0.9 and soft['pearson_p'] < 0.01
    # vanilla has no msb_phase: 8 pairs, and the constant 0.6 -> no value.
    phase = coefficients['msb_phase']['mASSC']
    assert phase['n'] == 8 and phase['pearson_r'] is None
    assert set(coefficients['msb_pixel']) == {'mASSC', 'mASSC_circular'}


def test_variant_means_and_std():
    means = variant_means(study_rows())
    assert [m['variant'] for m in means] == [
        'vanilla', 'blurpool', 'aps', 'lps', 'tips']
    vanilla = means[0]
    assert vanilla['num_seeds'] == 2
    assert vanilla['msb_soft'] == pytest.approx(0.705)
    assert vanilla['mASSC'] == pytest.approx(79.5)
    assert vanilla['mASSC_std'] == pytest.approx(np.std([80, 79], ddof=1))
    assert vanilla['msb_phase'] is None and vanilla['msb_phase_std'] is None
    single = variant_means([make_row('tips', 0, 0.4, 90)])[0]
    assert single['mASSC_std'] is None


# ---------------------------------------------------------- resume and rows
def test_plan_runs_skips_finished_runs(tmp_path):
    work_dir = str(tmp_path)
    save_run(run_result_path(work_dir, 'vanilla', 0),
             make_row('vanilla', 0, 0.7, 80))
    save_run(run_result_path(work_dir, 'tips', 1),
             make_row('tips', 1, 0.4, 90))
    todo, done = plan_runs(work_dir, ['vanilla', 'tips'], [0, 1], SETTINGS)
    # Seed-major order: all variants of seed 0 before seed 1.
    assert todo == [('tips', 0), ('vanilla', 1)]
    assert sorted((r['variant'], r['seed']) for r in done) == [
        ('tips', 1), ('vanilla', 0)]


def test_plan_runs_redoes_stale_broken_or_incomplete_rows(tmp_path):
    work_dir = str(tmp_path)
    save_run(run_result_path(work_dir, 'vanilla', 0),
             make_row('vanilla', 0, 0.7, 80, settings=dict(iters=99)))
    path = run_result_path(work_dir, 'aps', 0)
    with open(path, 'w') as f:
        f.write('{"variant": "aps", "se')  # a run killed mid-write
    incomplete = make_row('lps', 0, 0.5, 85)
    del incomplete['mASSC']
    save_run(run_result_path(work_dir, 'lps', 0), incomplete)
    todo, done = plan_runs(work_dir, ['vanilla', 'aps', 'lps'], [0],
                           SETTINGS)
    assert todo == [('vanilla', 0), ('aps', 0), ('lps', 0)]
    assert done == []
    # Without settings to match, the stale row is accepted.
    assert load_run(run_result_path(work_dir, 'vanilla', 0)) is not None


def test_save_run_round_trip(tmp_path):
    row = make_row('aps', 2, 0.6, 88)
    path = run_result_path(str(tmp_path), 'aps', 2)
    save_run(path, row)
    assert load_run(path, SETTINGS) == row
    assert set(ROW_METRIC_KEYS) <= set(json.loads(open(path).read()))


def test_order_rows_follows_variant_order():
    rows = [make_row('tips', 1, 0.4, 90), make_row('vanilla', 0, 0.7, 80),
            make_row('tips', 0, 0.4, 90)]
    ordered = order_rows(rows, ['vanilla', 'tips'])
    assert [(r['variant'], r['seed']) for r in ordered] == [
        ('vanilla', 0), ('tips', 0), ('tips', 1)]


# ---------------------------------------------------------- figure, summary
def test_scatter_png_written(tmp_path):
    path = tmp_path / 'figs' / 'scatter.png'
    assert plot_correlation(study_rows(), str(path)) == str(path)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert path.stat().st_size > 5000


def test_scatter_png_with_too_few_runs(tmp_path):
    path = tmp_path / 'one.png'
    plot_correlation([make_row('tips', 0, 0.4, 90)], str(path))
    assert path.is_file()


def test_summary_written(tmp_path):
    rows = study_rows()
    coefficients = compute_coefficients(rows)
    means = variant_means(rows)
    figure = tmp_path / 'scatter.png'
    plot_correlation(rows, str(figure), coefficients=coefficients)
    path = tmp_path / 'summary.md'
    text = write_summary(str(path), rows, coefficients, means,
                         settings=SETTINGS, figure=str(figure),
                         mean_coefficients=compute_coefficients(means))
    assert path.read_text() == text
    assert '![MSB vs shift consistency](scatter.png)' in text
    for heading in ('## Reading', '## Coefficients over runs',
                    '## Coefficients over variant means',
                    '## Per variant', '## Runs'):
        assert heading in text
    assert text.count('| vanilla | 0 |') == 1  # one line per run
    assert 'strong negative correlation' in text
    assert 'supports the paper' in text


def test_reading_of_a_weak_insignificant_result():
    rows = [make_row('v', s, msb, c) for s, (msb, c) in enumerate(
        [(0.5, 80), (0.6, 70), (0.7, 85), (0.4, 75), (0.55, 79)])]
    coefficients = compute_coefficients(rows)
    stats_ = coefficients['msb_soft']['mASSC']
    assert stats_['pearson_p'] > 0.05
    sentence = describe_correlation(stats_, 'MSB (soft)', 'mASSC')
    assert 'not significant at the 5% level' in sentence
    assert 'supports' not in reading_paragraph(coefficients,
                                               variant_means(rows))


# ------------------------------------------------------ partial correlation
def test_partial_correlation_by_formula():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]
    z = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]
    r = np.corrcoef([x, y, z])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt(
        (1 - r[0, 2]**2) * (1 - r[1, 2]**2))
    result = partial_correlate(x, y, z)
    assert result['n'] == 6
    assert result['partial_r'] == pytest.approx(expected)
    t = expected * math.sqrt(3 / (1 - expected**2))
    assert result['partial_p'] == pytest.approx(2 * stats.t.sf(abs(t), 3))


def test_partial_correlation_removes_a_shared_cause():
    # x and y both follow z; what is left of them is independent noise.
    rng = np.random.default_rng(0)
    z = np.arange(40, dtype=float)
    x = z + rng.normal(size=40)
    y = 2 * z + rng.normal(size=40)
    assert correlate(x, y)['pearson_r'] > 0.99
    assert abs(partial_correlate(x, y, z)['partial_r']) < 0.4


def test_partial_correlation_degenerate():
    assert partial_correlate([1, 2, 3], [3, 1, 2], [1, 1, 2])['note']
    assert partial_correlate([1, 2, 3, 4], [4, 1, 2, 3],
                             [5, 5, 5, 5])['partial_r'] is None


def test_partial_coefficients_in_summary(tmp_path):
    rows = study_rows()
    partial = compute_partial_coefficients(rows)
    assert set(partial) == {'mASSC', 'mASSC_circular'}
    assert partial['mASSC']['control'] == 'mIoU'
    assert partial['mASSC']['n'] == 10
    text = write_summary(str(tmp_path / 's.md'), rows,
                         compute_coefficients(rows), variant_means(rows),
                         partial_coefficients=partial)
    assert 'control held fixed' in text and 'Holding mIoU fixed' in text


# ------------------------------------------------- runs that learned nothing
def test_split_learned_and_files_show_excluded_runs(tmp_path):
    rows = study_rows()
    collapsed = make_row('aps', 2, 0.43, 100.0, mIoU=16.71)
    kept, excluded = split_learned(rows + [collapsed], 17.0)
    assert excluded == [collapsed] and kept == rows
    assert split_learned(rows + [collapsed], None) == (rows + [collapsed],
                                                       [])
    figure = tmp_path / 'scatter.png'
    plot_correlation(kept, str(figure), excluded_rows=excluded)
    assert figure.stat().st_size > 5000
    text = write_summary(str(tmp_path / 's.md'), kept,
                         compute_coefficients(kept), variant_means(kept),
                         excluded_rows=excluded,
                         all_coefficients=compute_coefficients(rows +
                                                               excluded))
    assert '| aps (excluded) | 2 | 16.71 |' in text
    assert 'Left out of the coefficients' in text and 'aps_seed2' in text
    assert '## Coefficients over all runs' in text
