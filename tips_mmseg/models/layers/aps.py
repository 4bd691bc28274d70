"""Adaptive Polyphase Sampling (Chaman & Dokmanic, CVPR 2021)."""
from typing import Optional

import torch

from ...registry import DOWNSAMPLERS
from .base import PolyphaseDownsample, one_hot_weights
from .polyphase import polyphase_view


@DOWNSAMPLERS.register_module()
class APS(PolyphaseDownsample):
    """Keep the polyphase component of largest l_p norm, per sample.

    ``k* = argmax_k ||P_k(X[n])||_p`` over (C, h, w). A circular shift of the
    input permutes the components, so the same content is kept: the output is
    exactly invariant (up to a circular shift on the coarse grid).

    Args:
        channels (int): Channels of the input map.
        p (float): Order of the norm. Defaults to 2.
        filter_size (int): Binomial low-pass (circular, stride 1) before the
            choice, as APS's release ``filter_size``; the norms are taken on
            the filtered map, as in its current models. 1 = none.
            Defaults to 1.
        odd_padding (str): See :class:`PolyphaseDownsample`; APS's release
            pads 'circular-bottom-right'. Defaults to 'reflect-top-left'.
        stride (int): Keep one of the s*s components (output ceil(H/s));
            exactly invariant to circular shifts when H and W are multiples
            of s. Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, p: float = 2.0,
                 filter_size: int = 1,
                 odd_padding: str = 'reflect-top-left',
                 init_cfg: Optional[dict] = None, stride: int = 2):
        super().__init__(channels, init_cfg=init_cfg, odd_padding=odd_padding,
                         filter_size=filter_size, stride=stride)
        self.p = p

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        # One reduction over the polyphase view: no split copy, no |x|^p
        # temporary; accumulated in at least float32 (half maps overflow).
        norms = torch.linalg.vector_norm(
            polyphase_view(x.detach(), self.stride), ord=self.p, dim=(1, 2, 4),
            dtype=torch.promote_types(x.dtype, torch.float32))
        return one_hot_weights(norms.flatten(1).argmax(dim=1), self.stride)

    def keeps_one_component(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, p={self.p}, filter_size='
                f'{self.filter_size}, odd_padding={self.odd_padding}, '
                f'stride={self.stride}')
