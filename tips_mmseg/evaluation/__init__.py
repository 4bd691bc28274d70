from ..utils.shift_ops import DEFAULT_MODES, EVAL_MODES
from .shift_consistency_metric import ShiftConsistencyMetric
from .shift_metrics import (ALL_SHIFT_METRIC_KEYS, MODE_METRIC_KEYS,
                            SHIFT_METRIC_KEYS, aligned_ground_truth,
                            class_consistency, compute_shift_metrics,
                            consistency_by_shift, score_image,
                            single_class_warning)

__all__ = [
    'ShiftConsistencyMetric', 'EVAL_MODES', 'DEFAULT_MODES',
    'SHIFT_METRIC_KEYS', 'MODE_METRIC_KEYS', 'ALL_SHIFT_METRIC_KEYS',
    'compute_shift_metrics', 'consistency_by_shift', 'class_consistency',
    'single_class_warning', 'score_image', 'aligned_ground_truth'
]
