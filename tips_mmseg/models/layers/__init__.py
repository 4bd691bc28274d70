from .aps import APS
from .base import PolyphaseDownsample
from .blurpool import BlurPool, binomial_kernel
from .follower import PolyphaseFollower
from .builder import DOWNSAMPLE_LAYERS, build_downsample
from .lps import LPS
from .polyphase import (COMPONENT_OFFSETS, NUM_COMPONENTS, ODD_PADDING_MODES,
                        check_stride, component_offsets,
                        crop_padding, mix_phases, pad_to_even,
                        polyphase_merge, polyphase_split, polyphase_view,
                        select_phase)
from .tips import TIPS
from .unpool import PolyphaseUnpool, polyphase_unpool

__all__ = [
    'APS', 'BlurPool', 'LPS', 'TIPS', 'PolyphaseDownsample',
    'PolyphaseUnpool', 'PolyphaseFollower', 'build_downsample', 'DOWNSAMPLE_LAYERS',
    'binomial_kernel', 'polyphase_split', 'polyphase_merge', 'pad_to_even',
    'polyphase_view', 'mix_phases', 'select_phase', 'polyphase_unpool',
    'COMPONENT_OFFSETS', 'NUM_COMPONENTS', 'ODD_PADDING_MODES', 'crop_padding',
    'check_stride', 'component_offsets'
]
