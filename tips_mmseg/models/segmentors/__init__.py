from .shift_tta import ShiftPredictor, ShiftTTAModel
from .tips_encoder_decoder import (TIPSCascadeEncoderDecoder,
                                   TIPSEncoderDecoder)
from .tips_regularizer import DEFAULT_TIPS_CFG, TIPSRegularizerMixin

__all__ = [
    'ShiftTTAModel', 'ShiftPredictor',
    'TIPSEncoderDecoder', 'TIPSCascadeEncoderDecoder',
    'TIPSRegularizerMixin', 'DEFAULT_TIPS_CFG'
]
