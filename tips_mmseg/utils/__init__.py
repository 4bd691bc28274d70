from .shift import SHIFT_MODES, shift_map

__all__ = ['shift_map', 'SHIFT_MODES']
