"""Segmentors that train TIPS backbones with their regularizers."""
from typing import Optional

from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from mmseg.registry import MODELS

from .tips_regularizer import TIPSRegularizerMixin

_TIPS_CFG_DOC = """
    Args:
        tips_cfg (dict, optional): Regularizer settings, merged into
            ``DEFAULT_TIPS_CFG`` = ``dict(lambda_fm=1.0, alpha=0.35,
            undo_start=0.21, undo_mode='circular', undo_range='input',
            undo_shift=None, undo_detach=True, fm_reduction='channels',
            undo_reduction='stages')``: L_FM weight; alpha (task losses
            scaled by 1 - alpha, L_undo by alpha); L_undo on from
            ``undo_start * max_iters`` (``eps``: its deprecated old
            name); L_undo's shift ('circular' roll or
            'standard' zero fill), its range m (H/4, W/4 of the network
            'input' or of each 'layer'; ``undo_shift`` fixes m), whether
            its target is detached; how L_FM and L_undo are gathered over
            layers. See :class:`TIPSRegularizerMixin`. Defaults to None.
        *args, **kwargs: Arguments of the mmseg segmentor.
"""


@MODELS.register_module()
class TIPSEncoderDecoder(TIPSRegularizerMixin, EncoderDecoder):
    __doc__ = ('mmseg\'s :class:`EncoderDecoder` plus the TIPS regularizers '
               '(``loss_fm``, ``loss_undo``), see '
               ':class:`TIPSRegularizerMixin`. Also binds decode heads that '
               'unpool (``bind_downsamplers``) to the backbone.\n' +
               _TIPS_CFG_DOC)

    def __init__(self, *args, tips_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_tips_regularizer(tips_cfg)


@MODELS.register_module()
class TIPSCascadeEncoderDecoder(TIPSRegularizerMixin, CascadeEncoderDecoder):
    __doc__ = ('mmseg\'s :class:`CascadeEncoderDecoder` plus the TIPS '
               'regularizers, see :class:`TIPSRegularizerMixin`.\n' +
               _TIPS_CFG_DOC)

    def __init__(self, *args, tips_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_tips_regularizer(tips_cfg)
