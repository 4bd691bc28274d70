"""The correlation study's report (tools/_reports): run bookkeeping, the
scatter figure and the written summary."""
import json
import os.path as osp
import sys

from tests.helpers import REPO_ROOT
from tips_mmseg.analysis.correlation import (ROW_METRIC_KEYS,
                                             compute_coefficients,
                                             compute_partial_coefficients,
                                             split_learned, variant_means)
from .study_rows import SETTINGS, make_row, study_rows

TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
if TOOLS_DIR not in sys.path:
    sys.path.append(TOOLS_DIR)  # tools/_reports is not installed

from _reports.correlation_figure import plot_correlation  # noqa: E402
from _reports.correlation_runs import (load_run, order_rows,  # noqa: E402
                                       plan_runs, run_result_path, save_run)
from _reports.correlation_text import (describe_correlation,  # noqa: E402
                                       reading_paragraph, write_summary)


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


def test_partial_coefficients_in_summary(tmp_path):
    rows = study_rows()
    partial = compute_partial_coefficients(rows)
    text = write_summary(str(tmp_path / 's.md'), rows,
                         compute_coefficients(rows), variant_means(rows),
                         partial_coefficients=partial)
    assert 'control held fixed' in text and 'Holding mIoU fixed' in text


def test_excluded_runs_in_figure_and_summary(tmp_path):
    rows = study_rows()
    collapsed = make_row('aps', 2, 0.43, 100.0, mIoU=16.71)
    kept, excluded = split_learned(rows + [collapsed], 17.0)
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
