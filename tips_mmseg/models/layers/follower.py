"""A parameter-free polyphase layer that keeps a choice made elsewhere."""
from typing import Optional

import torch

from ...registry import DOWNSAMPLERS
from .base import PolyphaseDownsample


@DOWNSAMPLERS.register_module()
class PolyphaseFollower(PolyphaseDownsample):
    """Keep the component(s) another polyphase layer chose.

    A residual shortcut must keep the same component as its main branch
    (APS, LPS), else the branches are misaligned and exact invariance is lost.
    This layer has no parameters and no choice of its own: its forward needs
    ``weights`` (the main branch's ``last_weights``).

    Args:
        channels (int): Channels of the input map.
        odd_padding (str): As the main branch's layer. Defaults to
            'reflect-top-left'.
        filter_size (int): As the main branch's layer (its low-pass is
            applied here too). Defaults to 1.
        stride (int): As the main branch's layer. Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, odd_padding: str = 'reflect-top-left',
                 filter_size: int = 1, init_cfg: Optional[dict] = None,
                 stride: int = 2):
        super().__init__(channels, init_cfg=init_cfg, odd_padding=odd_padding,
                         filter_size=filter_size, stride=stride)

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            'PolyphaseFollower keeps the choice of another layer: call it '
            'with weights=<main branch layer>.last_weights.')
