from .shift_evaluator import ShiftConsistencyEvaluator, image_index_map
from .shift_metrics import (SHIFT_METRIC_KEYS, compute_shift_metrics,
                            consistency_by_shift)
from .shift_ops import (SHIFT_MODES, check_shift, sample_shifts, shift_batch,
                        shift_grid, shift_image)

__all__ = [
    'ShiftConsistencyEvaluator', 'image_index_map', 'SHIFT_METRIC_KEYS',
    'compute_shift_metrics', 'consistency_by_shift', 'SHIFT_MODES',
    'check_shift', 'sample_shifts', 'shift_batch', 'shift_grid', 'shift_image'
]
