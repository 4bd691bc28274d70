from .unpool_sep_aspp_head import (UnpoolDepthwiseSeparableASPPHead,
                                   unpool_bilinear)

__all__ = ['UnpoolDepthwiseSeparableASPPHead', 'unpool_bilinear']
