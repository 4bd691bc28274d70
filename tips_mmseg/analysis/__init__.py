"""Measurements of trained models and of their results: numbers only.

Plots of these numbers are in :mod:`tips_mmseg.visualization` (not imported
by ``import tips_mmseg``).
"""
from .analyze_msb import analyze_msb, format_msb_table
from .consistency_map import consistency_grid, map_mean, odd_even_gap
from .correlation import (CONSISTENCY_KEYS, PRIMARY_MSB, ROW_METRIC_KEYS,
                          STUDY_MSB_KEYS, compute_coefficients,
                          compute_partial_coefficients, correlate,
                          paired_values, partial_correlate, split_learned,
                          variant_means)
from .msb import (MSB_KEYS, REL_TOL, LayerMSB, MSBRecorder, downsample_kind,
                  largest_component_weight, mean_msb, stride_one_response,
                  window_extrema)
from .tau import tau_statistics

__all__ = [
    'MSBRecorder', 'LayerMSB', 'analyze_msb', 'format_msb_table',
    'mean_msb', 'downsample_kind', 'window_extrema',
    'largest_component_weight', 'stride_one_response', 'MSB_KEYS', 'REL_TOL',
    'correlate', 'partial_correlate', 'paired_values', 'compute_coefficients',
    'compute_partial_coefficients', 'variant_means', 'split_learned',
    'PRIMARY_MSB', 'STUDY_MSB_KEYS', 'CONSISTENCY_KEYS', 'ROW_METRIC_KEYS',
    'consistency_grid', 'map_mean', 'odd_even_gap', 'tau_statistics'
]
