from .attacks import ATTACKS, build_attack, fgsm_attack, pgd_attack
from .builders import build_eval_dataloader, build_segmentor
from .convert import ConversionError, convert_config
from .robustness import (evaluate_robustness, format_robustness_table,
                         plot_corruption_curves)
from .shift_consistency import evaluate_shift_consistency

__all__ = [
    'build_segmentor', 'build_eval_dataloader',
    'ATTACKS', 'build_attack', 'fgsm_attack', 'pgd_attack',
    'evaluate_robustness', 'format_robustness_table',
    'plot_corruption_curves', 'evaluate_shift_consistency',
    'convert_config', 'ConversionError'
]
