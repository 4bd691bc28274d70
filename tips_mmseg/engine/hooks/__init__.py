from .checkpoint_safety_hook import CheckpointSafetyHook
from .lps_temperature_hook import LPSTemperatureHook
from .shift_consistency_hook import ShiftConsistencyHook
from .tips_progress_hook import TIPSProgressHook

__all__ = [
    'CheckpointSafetyHook', 'LPSTemperatureHook', 'ShiftConsistencyHook',
    'TIPSProgressHook'
]
