from .lps_temperature_hook import LPSTemperatureHook
from .tips_progress_hook import TIPSProgressHook

__all__ = ['LPSTemperatureHook', 'TIPSProgressHook']
