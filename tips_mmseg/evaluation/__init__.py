from .shift_evaluator import ShiftConsistencyEvaluator, image_index_map
from .shift_metrics import (SHIFT_METRIC_KEYS, compute_shift_metrics,
                            consistency_by_shift)

__all__ = [
    'ShiftConsistencyEvaluator', 'image_index_map', 'SHIFT_METRIC_KEYS',
    'compute_shift_metrics', 'consistency_by_shift'
]
