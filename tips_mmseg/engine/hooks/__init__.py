from .shift_consistency_hook import ShiftConsistencyHook

__all__ = ['ShiftConsistencyHook']
