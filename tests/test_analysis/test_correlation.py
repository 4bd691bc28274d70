"""MSB-consistency statistics: coefficients, partial correlation, means."""
import math

import numpy as np
import pytest
from scipy import stats

from tips_mmseg.analysis.correlation import (compute_coefficients,
                                             compute_partial_coefficients,
                                             correlate, partial_correlate,
                                             split_learned, variant_means)
from .study_rows import make_row, study_rows


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


def test_partial_coefficients_over_rows():
    rows = study_rows()
    partial = compute_partial_coefficients(rows)
    assert set(partial) == {'mASSC', 'mASSC_circular'}
    assert partial['mASSC']['control'] == 'mIoU'
    assert partial['mASSC']['n'] == 10
    # The rows' mIoU is 40 + seed: the same partial r as by hand.
    x = [r['msb_soft'] for r in rows]
    y = [r['mASSC'] for r in rows]
    z = [r['mIoU'] for r in rows]
    assert partial['mASSC']['partial_r'] == pytest.approx(
        partial_correlate(x, y, z)['partial_r'])


# ------------------------------------------------- runs that learned nothing
def test_split_learned_keeps_order_and_threshold():
    rows = study_rows()
    collapsed = make_row('aps', 2, 0.43, 100.0, mIoU=16.71)
    kept, excluded = split_learned(rows + [collapsed], 17.0)
    assert excluded == [collapsed] and kept == rows
    assert split_learned(rows + [collapsed], None) == (rows + [collapsed],
                                                       [])
    # The threshold itself is kept (>=).
    edge = make_row('tips', 3, 0.4, 90.0, mIoU=17.0)
    assert split_learned([edge], 17.0) == ([edge], [])
