"""Which modules carry TIPS regularizers, and who takes care of them.

A TIPS layer is trained with L_FM and L_undo (METHOD.md section 5), which a
segmentor such as :class:`TIPSEncoderDecoder` adds to the loss. A backbone
cannot add losses itself, so it checks that some segmentor claimed its TIPS
layers and tells the user once, clearly, when none did.
"""
import logging
import warnings
from typing import List

import torch.nn as nn
from mmengine.logging import print_log

from .layers import TIPS

_CLAIM_ATTR = '_tips_regularized_by'
_WARNED_ATTR = '_tips_unregularized_warned'


def tips_layers(module: nn.Module) -> List[TIPS]:
    """All TIPS layers in ``module``, in registration order."""
    return [m for m in module.modules() if isinstance(m, TIPS)]


def claim_regularization(module: nn.Module, owner: str):
    """Record that ``owner`` adds the regularizers of ``module``'s TIPS."""
    object.__setattr__(module, _CLAIM_ATTR, owner)


def warn_if_unregularized(module: nn.Module):
    """Warn once if ``module`` trains TIPS layers nobody regularizes.

    Called by the backbones in a training forward; cheap after the first
    call.
    """
    if getattr(module, _CLAIM_ATTR, None) or \
            getattr(module, _WARNED_ATTR, False):
        return
    object.__setattr__(module, _WARNED_ATTR, True)
    if not tips_layers(module):
        return
    msg = (f'{type(module).__name__} has TIPS layers, but its segmentor does '
           'not add the TIPS regularizers (L_FM, L_undo): they are NOT '
           "applied. Set model.type='TIPSEncoderDecoder' (or "
           "'TIPSCascadeEncoderDecoder') with tips_cfg=dict(...) and add "
           "custom_hooks=[dict(type='TIPSProgressHook')] to enable them.")
    warnings.warn(msg, UserWarning, stacklevel=3)
    print_log(msg, logger='current', level=logging.WARNING)
