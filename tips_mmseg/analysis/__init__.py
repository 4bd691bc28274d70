from .analyze_msb import analyze_msb, format_msb_table
from .msb import (MSB_KEYS, REL_TOL, LayerMSB, MSBRecorder, downsample_kind,
                  largest_component_weight, mean_msb, stride_one_response,
                  window_extrema)
from .plot_msb import plot_msb

__all__ = [
    'MSBRecorder', 'LayerMSB', 'analyze_msb', 'format_msb_table', 'plot_msb',
    'mean_msb', 'downsample_kind', 'window_extrema',
    'largest_component_weight', 'stride_one_response', 'MSB_KEYS', 'REL_TOL'
]
