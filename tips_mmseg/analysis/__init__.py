from .analyze_msb import analyze_msb, format_msb_table
from .consistency_map import consistency_grid, map_mean, odd_even_gap
from .correlation import (CONSISTENCY_KEYS, PRIMARY_MSB, STUDY_MSB_KEYS,
                          compute_coefficients, correlate, load_run,
                          plan_runs, plot_correlation, run_result_path,
                          save_run, variant_means, write_summary)
from .msb import (MSB_KEYS, REL_TOL, LayerMSB, MSBRecorder, downsample_kind,
                  largest_component_weight, mean_msb, stride_one_response,
                  window_extrema)

__all__ = [
    'MSBRecorder', 'LayerMSB', 'analyze_msb', 'format_msb_table',
    'mean_msb', 'downsample_kind', 'window_extrema',
    'largest_component_weight', 'stride_one_response', 'MSB_KEYS', 'REL_TOL',
    'correlate', 'compute_coefficients', 'variant_means', 'plot_correlation',
    'write_summary', 'plan_runs', 'load_run', 'save_run', 'run_result_path',
    'PRIMARY_MSB', 'STUDY_MSB_KEYS', 'CONSISTENCY_KEYS', 'consistency_grid',
    'map_mean', 'odd_even_gap'
]
