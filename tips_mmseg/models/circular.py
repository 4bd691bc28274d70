"""Circular padding for already-built convs (circular-shift equivariance).

``nn.Conv2d(padding_mode='circular')`` refuses padding larger than the map
(an ASPP conv with dilation 36 on a 32x32 map), though circular convolution
is well defined there: the map wraps around more than once. Converted convs
pad by modular indexing, which handles any size.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def circular_pad(x: torch.Tensor, pad) -> torch.Tensor:
    """Circularly pad the last two dims by ``(left, right, top, bottom)``,
    wrapping around as often as needed."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    rows = torch.arange(-top, h + bottom, device=x.device) % h
    cols = torch.arange(-left, w + right, device=x.device) % w
    return x.index_select(-2, rows).index_select(-1, cols)


class CircularConv2d(nn.Conv2d):
    """``nn.Conv2d`` with circular padding of any size (same parameters)."""

    def _conv_forward(self, x, weight, bias):
        x = circular_pad(x, self._reversed_padding_repeated_twice)
        return F.conv2d(x, weight, bias, self.stride, 0, self.dilation,
                        self.groups)


def use_circular_padding(module: nn.Module):
    """Make every padded ``nn.Conv2d`` in ``module`` pad circularly.

    Parameter names and values are untouched (the convs change class to
    :class:`CircularConv2d` in place).
    """
    for m in module.modules():
        if type(m) is nn.Conv2d and any(p > 0 for p in m.padding):
            if isinstance(m.padding, str):
                raise ValueError(f"Cannot make {m} circular: padding "
                                 f"'{m.padding}' is not numeric.")
            m.__class__ = CircularConv2d
            m.padding_mode = 'circular'
