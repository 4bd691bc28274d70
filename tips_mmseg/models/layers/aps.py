"""Adaptive Polyphase Sampling (Chaman & Dokmanic, CVPR 2021)."""
from typing import Optional

import torch
import torch.nn.functional as F

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
        per_channel (bool): Choose the component per sample AND channel
            (norms over h, w only), as the APS of the TIPS release does;
            its shortcut then chooses on its own too (it has other
            channels). Not exactly shift invariant: channels may keep
            components whose coarse shifts differ. False: one choice per
            sample (APS's own release). Defaults to False.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, p: float = 2.0,
                 filter_size: int = 1,
                 odd_padding: str = 'reflect-top-left',
                 init_cfg: Optional[dict] = None, stride: int = 2,
                 per_channel: bool = False):
        super().__init__(channels, init_cfg=init_cfg, odd_padding=odd_padding,
                         filter_size=filter_size, stride=stride)
        if not isinstance(per_channel, bool):
            raise ValueError(f'APS per_channel must be True or False, got '
                             f'{per_channel!r}.')
        self.p = p
        self.per_channel = per_channel

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        # One reduction over the polyphase view: no split copy, no |x|^p
        # temporary; accumulated in at least float32 (half maps overflow).
        s = self.stride
        norms = torch.linalg.vector_norm(
            polyphase_view(x.detach(), s), ord=self.p,
            dim=(2, 4) if self.per_channel else (1, 2, 4),
            dtype=torch.promote_types(x.dtype, torch.float32))
        if self.per_channel:  # (N, C, s, s) -> one-hot (N, C, s*s)
            return F.one_hot(norms.flatten(2).argmax(dim=2), s * s).float()
        return one_hot_weights(norms.flatten(1).argmax(dim=1), s)

    def keeps_one_component(self) -> bool:
        return not self.per_channel

    def make_follower(self, channels: int):
        if self.per_channel:
            raise ValueError(
                'APS(per_channel=True) chooses per channel, so a shortcut '
                'with other channels cannot keep its choice; give the '
                'shortcut its own APS(per_channel=True).')
        return super().make_follower(channels)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, p={self.p}, filter_size='
                f'{self.filter_size}, odd_padding={self.odd_padding}, '
                f'stride={self.stride}'
                + (', per_channel=True' if self.per_channel else ''))
