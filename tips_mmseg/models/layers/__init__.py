from .aps import APS
from .base import PolyphaseDownsample
from .blurpool import BlurPool, binomial_kernel
from .follower import PolyphaseFollower
from .builder import DOWNSAMPLE_LAYERS, build_downsample
from .lps import LPS
from .polyphase import (COMPONENT_OFFSETS, NUM_COMPONENTS, mix_components,
                        pad_to_even, polyphase_merge, polyphase_split,
                        select_component)
from .tips import TIPS
from .unpool import PolyphaseUnpool, polyphase_unpool

__all__ = [
    'APS', 'BlurPool', 'LPS', 'TIPS', 'PolyphaseDownsample',
    'PolyphaseUnpool', 'PolyphaseFollower', 'build_downsample', 'DOWNSAMPLE_LAYERS',
    'binomial_kernel', 'polyphase_split', 'polyphase_merge', 'pad_to_even',
    'mix_components', 'select_component', 'polyphase_unpool',
    'COMPONENT_OFFSETS', 'NUM_COMPONENTS'
]
