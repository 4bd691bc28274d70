from .shift_evaluator import (DEFAULT_MODES, EVAL_MODES,
                              ShiftConsistencyEvaluator, image_index_map)
from .shift_metrics import (ALL_SHIFT_METRIC_KEYS, MODE_METRIC_KEYS,
                            SHIFT_METRIC_KEYS, class_consistency,
                            compute_shift_metrics, consistency_by_shift,
                            single_class_warning)

__all__ = [
    'ShiftConsistencyEvaluator', 'image_index_map', 'EVAL_MODES',
    'DEFAULT_MODES', 'SHIFT_METRIC_KEYS', 'MODE_METRIC_KEYS',
    'ALL_SHIFT_METRIC_KEYS', 'compute_shift_metrics', 'consistency_by_shift',
    'class_consistency', 'single_class_warning'
]
