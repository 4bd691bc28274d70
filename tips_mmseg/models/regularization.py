"""Which modules carry TIPS regularizers, and who takes care of them.

A TIPS layer is trained with L_FM and L_undo (docs/method.md, docs/fidelity.md), which a
segmentor such as :class:`TIPSEncoderDecoder` adds to the loss. A backbone
cannot add losses itself, so it checks that some segmentor claimed its TIPS
layers and tells the user once, clearly, when none did.
"""
import logging
import warnings
from collections import OrderedDict
from typing import List

import torch.nn as nn
from mmengine.logging import print_log
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck

from .layers import TIPS

_CLAIM_ATTR = '_tips_regularized_by'
_WARNED_ATTR = '_tips_unregularized_warned'


def tips_layers(module: nn.Module,
                training_only: bool = False) -> List[TIPS]:
    """All TIPS layers in ``module``, in registration order.

    Args:
        module (nn.Module): Where to look.
        training_only (bool): Only the layers in training mode: those of a
            frozen stage (``frozen_stages``, in eval mode, no gradient) keep
            nothing for the regularizers and take none. Defaults to False.
    """
    return [m for m in module.modules()
            if isinstance(m, TIPS) and (m.training or not training_only)]


def tips_stages(module: nn.Module,
                training_only: bool = False) -> List[List[TIPS]]:
    """The TIPS layers of ``module`` grouped by downsampling step.

    A residual block downsamples twice in parallel (main branch and
    shortcut, ``layerX.Y.down`` and ``layerX.Y.shortcut_down`` in our
    ResNets; ``layerX.Y.conv2.down`` and ``layerX.Y.downsample.0.down``
    under :class:`ShiftInvariantWrapper`): its TIPS layers form one stage,
    as in the official release, which concatenates them for L_undo. Every
    other TIPS layer (stem conv, stem max-pool, a MobileNet conv) is a stage
    of its own. Blocks are found by type (mmseg's ``BasicBlock`` and
    ``Bottleneck``, which our blocks subclass), not by name, so the grouping
    holds for any backbone built from them.

    Args:
        module (nn.Module): Where to look.
        training_only (bool): As :func:`tips_layers`; a stage whose layers
            are all frozen is left out. Defaults to False.

    Returns:
        list[list[TIPS]]: Stages in module registration order, each with
        its layers in registration order.
    """
    blocks = [name for name, m in module.named_modules()
              if isinstance(m, (BasicBlock, Bottleneck))]
    stages = OrderedDict()
    for name, m in module.named_modules():
        if isinstance(m, TIPS) and (m.training or not training_only):
            owner = next((b for b in blocks
                          if b == '' or name.startswith(b + '.')), name)
            stages.setdefault(owner, []).append(m)
    return list(stages.values())


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
