"""Polyphase unpooling (LPU / APS-U): the inverse placement of a choice."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule

from mmseg.registry import MODELS
from .polyphase import (check_stride, crop_padding, polyphase_merge,
                        tracing)


def polyphase_unpool(y: torch.Tensor,
                     weights: torch.Tensor,
                     output_size: Optional[Sequence[int]] = None,
                     odd_padding: str = 'reflect-top-left',
                     stride: int = 2) -> torch.Tensor:
    """Put a low-res map back into the component(s) a downsampler chose.

    ``U = merge(w_k * y for k)``: with one-hot weights (APS, LPS in eval) y
    lands in the chosen component and zeros elsewhere; with soft weights (LPS
    in training) each component gets its weighted copy.

    Args:
        y (Tensor): (N, C, h, w) low-resolution map.
        weights (Tensor): (N, 1 or C, s*s) weights of the matching
            downsampler (its ``last_weights``).
        output_size (Sequence[int], optional): (H, W) of the map before
            downsampling; crops the padding rows/columns. Defaults to None
            (s*h x s*w).
        odd_padding (str): Where the downsampler padded odd sizes (its
            ``odd_padding``): the crop removes that side. Defaults to
            'reflect-top-left'.
        stride (int): The downsampler's stride s. Defaults to 2.

    Returns:
        Tensor: (N, C, s*h, s*w), or ``output_size``.
    """
    stride = check_stride(stride)
    if not tracing() and weights.shape[-1] != stride * stride:
        raise ValueError(
            f'polyphase_unpool(stride={stride}) needs weights with '
            f'{stride * stride} components in the last dim, got '
            f'{weights.shape[-1]}; pass the stride of the downsampler that '
            'made them.')
    components = y.unsqueeze(2) * weights.to(y.dtype)[..., None, None]
    out = polyphase_merge(components, stride)
    if output_size is not None:
        out = crop_padding(out, output_size, odd_padding)
    return out


@MODELS.register_module()
class PolyphaseUnpool(BaseModule):
    """Module form of :func:`polyphase_unpool`, paired with a downsampler.

    Args:
        downsample (nn.Module, optional): The APS/LPS layer whose last choice
            to undo. If None, ``weights`` must be passed to forward.
    """

    def __init__(self, downsample=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        # Not registered as a child: the pair shares one layer, not two.
        object.__setattr__(self, 'downsample', downsample)

    def forward(self, y: torch.Tensor,
                weights: Optional[torch.Tensor] = None,
                output_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        if weights is None:
            if self.downsample is None or \
                    self.downsample.last_weights is None:
                raise RuntimeError(
                    'PolyphaseUnpool needs the weights of its downsampler: '
                    'pass weights=... or pair it with an APS/LPS layer that '
                    'has run a forward.')
            weights = self.downsample.last_weights
        odd_padding = getattr(self.downsample, 'odd_padding',
                              'reflect-top-left')
        stride = getattr(self.downsample, 'stride', 2)
        return polyphase_unpool(y, weights, output_size, odd_padding, stride)
