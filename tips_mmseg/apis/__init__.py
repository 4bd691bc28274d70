from .shift_consistency import evaluate_shift_consistency

__all__ = ['evaluate_shift_consistency']
