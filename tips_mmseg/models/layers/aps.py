"""Adaptive Polyphase Sampling (Chaman & Dokmanic, CVPR 2021)."""
from typing import Optional

import torch

from mmseg.registry import MODELS
from .base import PolyphaseDownsample, one_hot_weights


@MODELS.register_module()
class APS(PolyphaseDownsample):
    """Keep the polyphase component of largest l_p norm, per sample.

    ``k* = argmax_k ||P_k(X[n])||_p`` over (C, h, w). A circular shift of the
    input permutes the components, so the same content is kept: the output is
    exactly invariant (up to a circular shift on the coarse grid).

    Args:
        channels (int): Channels of the input map.
        p (float): Order of the norm. Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, p: float = 2.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(channels, init_cfg=init_cfg)
        self.p = p

    def component_weights(self, x: torch.Tensor,
                          components: torch.Tensor) -> torch.Tensor:
        # sum |x|^p ranks the components like the l_p norm, without the root.
        energy = components.detach().float().abs().pow(self.p).sum(
            dim=(1, 3, 4))
        return one_hot_weights(energy.argmax(dim=1))

    def keeps_one_component(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return f'channels={self.channels}, p={self.p}'
