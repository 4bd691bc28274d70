"""DeepLabV3+ head that upsamples by polyphase unpooling (LPU / APS-U)."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from ..circular import use_circular_padding
from ..layers import PolyphaseDownsample, polyphase_unpool

def bilinear_tent(stride: int = 2) -> torch.Tensor:
    """(2s-1) x (2s-1) kernel: a zero-inserted map (one kept pixel per
    s x s) convolved with it is bilinear interpolation on the kept phase.
    For s = 2: ``[[.25, .5, .25], [.5, 1, .5], [.25, .5, .25]]``."""
    ramp = torch.arange(1, stride + 1, dtype=torch.float32) / stride
    tent = torch.cat([ramp, ramp.flip(0)[1:]])
    return tent[:, None] * tent[None, :]


def unpool_bilinear(y: torch.Tensor, weights: torch.Tensor,
                    output_size: Sequence[int],
                    odd_padding: str = 'reflect-top-left',
                    stride: int = 2) -> torch.Tensor:
    """Polyphase unpooling, then a fixed circular bilinear fill.

    Unpooling puts ``y`` back into the component the downsampler kept (zeros
    elsewhere); the tent filter (:func:`bilinear_tent`), circularly padded,
    fills the zeros with bilinear interpolation aligned to that component.
    Both steps commute with circular shifts, so (unlike ``F.interpolate``)
    the result moves exactly with the input.

    Args:
        y (Tensor): (N, C, h, w) low-resolution map.
        weights (Tensor): (N, 1, s*s) weights of the matching downsampler.
        output_size (Sequence[int]): (H, W) of the map before downsampling.
        odd_padding (str): The downsampler's ``odd_padding`` (which side
            of an odd map to crop). Defaults to 'reflect-top-left'.
        stride (int): The downsampler's stride s. Defaults to 2.

    Returns:
        Tensor: (N, C, H, W).
    """
    up = polyphase_unpool(y, weights, output_size, odd_padding, stride)
    padded = F.pad(up, (stride - 1, ) * 4, mode='circular')
    # Every channel as a one-channel image: the kernel's shape then does not
    # depend on the channel count (ONNX export needs a static kernel shape).
    out = F.conv2d(padded.flatten(0, 1).unsqueeze(1),
                   bilinear_tent(stride).to(up)[None, None])
    return out.view_as(up)


@MODELS.register_module()
class UnpoolDepthwiseSeparableASPPHead(DepthwiseSeparableASPPHead):
    """:class:`DepthwiseSeparableASPPHead` (DeepLabV3+) for APS/LPS
    backbones that upsamples by polyphase unpooling instead of bilinear
    resizing, and (by default) pads every conv circularly.

    The ASPP output is unpooled to the c1 resolution with the choice of the
    backbone downsampler that went from c1's resolution down; the logits are
    unpooled to the input resolution with the stem's choices, so the head
    returns full-resolution logits and mmseg's later resize is the identity.
    With a circular-padding APS/LPS backbone in eval mode the segmentor is
    then exactly equivariant to circular shifts of the input.
    It needs a segmentor that binds it to the backbone
    (``TIPSEncoderDecoder``).

    Args:
        circular_padding (bool): Circular padding in the head's convs.
            Defaults to True.
        **kwargs: Arguments of ``DepthwiseSeparableASPPHead``.
    """

    def __init__(self, circular_padding: bool = True, **kwargs):
        super().__init__(**kwargs)
        if circular_padding:
            use_circular_padding(self)
        self._downsamplers: List[PolyphaseDownsample] = []

    def bind_downsamplers(self, backbone: nn.Module):
        """Remember the backbone's main-path downsamplers (not as
        submodules: they belong to the backbone)."""
        if not hasattr(backbone, 'main_downsamplers'):
            raise TypeError(
                f'{type(self).__name__} needs a backbone with '
                f'main_downsamplers() (ShiftInvariantResNet/V1c), got '
                f'{type(backbone).__name__}.')
        downs = list(backbone.main_downsamplers().values())
        if not downs or not all(
                isinstance(d, PolyphaseDownsample) for d in downs):
            raise TypeError(
                f'{type(self).__name__} unpools the choices of APS/LPS '
                f'downsamplers; the backbone has '
                f'{[type(d).__name__ for d in downs] or "none"}. Use '
                "downsample_cfg=dict(type='APS') or 'LPS', or the plain "
                'DepthwiseSeparableASPPHead.')
        self._downsamplers = downs

    def _unpool_to(self, x: torch.Tensor, size: Sequence[int]):
        size = tuple(size)
        for down in reversed(self._downsamplers):
            if tuple(x.shape[-2:]) == size:
                break
            in_size = tuple(down.last_input_size)
            stride = down.stride
            if tuple(-(-s // stride) for s in in_size) == tuple(
                    x.shape[-2:]):
                x = unpool_bilinear(x, down.last_weights, in_size,
                                    down.odd_padding, stride)
        if tuple(x.shape[-2:]) != size:
            raise RuntimeError(
                f'{type(self).__name__} could not unpool a '
                f'{tuple(x.shape[-2:])} map to {size}: no chain of backbone '
                'downsamplers leads there (was the head bound with '
                'TIPSEncoderDecoder, and did the backbone run first?).')
        return x

    def forward(self, inputs):
        if not self._downsamplers:
            raise RuntimeError(
                f'{type(self).__name__} is not bound to a backbone; use it '
                "in model.type='TIPSEncoderDecoder'.")
        x = self._transform_inputs(inputs)
        aspp_outs = [
            resize(self.image_pool(x), size=x.size()[2:], mode='bilinear',
                   align_corners=self.align_corners)
        ]
        aspp_outs.extend(self.aspp_modules(x))
        output = self.bottleneck(torch.cat(aspp_outs, dim=1))
        if self.c1_bottleneck is not None:
            c1_output = self.c1_bottleneck(inputs[0])
            output = self._unpool_to(output, c1_output.shape[2:])
            output = torch.cat([output, c1_output], dim=1)
        output = self.cls_seg(self.sep_bottleneck(output))
        return self._unpool_to(output,
                               self._downsamplers[0].last_input_size)
