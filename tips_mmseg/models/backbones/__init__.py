from .shift_invariant_resnet import (ShiftInvariantBasicBlock,
                                     ShiftInvariantBottleneck,
                                     ShiftInvariantResNet,
                                     ShiftInvariantResNetV1c, TIPSResNetV1c)
from .shift_invariant_wrapper import ShiftInvariantWrapper

__all__ = [
    'ShiftInvariantResNet', 'ShiftInvariantResNetV1c', 'TIPSResNetV1c',
    'ShiftInvariantBasicBlock', 'ShiftInvariantBottleneck',
    'ShiftInvariantWrapper'
]
