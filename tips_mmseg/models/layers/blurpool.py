"""Anti-aliased downsampling (Zhang, ICML 2019)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from ...registry import DOWNSAMPLERS
from .base import check_input
from .binomial import binomial_kernel
from .padded_conv import padded_conv2d
from .polyphase import check_stride, pad_index, shape_hw, tracing


@DOWNSAMPLERS.register_module()
class BlurPool(BaseModule):
    """Depthwise binomial blur, then subsampling by ``stride`` (2).

    Nothing of the input is kept for backward: the filter is fixed, so the
    input's gradient is the transposed blur of the output's.

    With ``stride=1`` it is the plain low-pass that APS and LPS apply before
    their choice (``APS(filter_size=k)``): the one place where the binomial
    filter is built and applied.

    Args:
        channels (int): Channels of the input map.
        filter_size (int): Taps of the binomial filter (3: [1, 2, 1],
            4: [1, 3, 3, 1]). Defaults to 3 (the TIPS release's comparison;
            antialiased-cnns' models use 4, see docs/fidelity.md).
        pad_mode (str): Padding of the blur ('reflect', 'replicate',
            'circular', 'zeros'). 'circular' wraps around as often as needed
            (any map size). Defaults to 'reflect'.
        stride (int): Subsampling factor s after the blur (output
            ceil(H/s) x ceil(W/s)); 1 = low-pass only. Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 filter_size: int = 3,
                 pad_mode: str = 'reflect',
                 stride: int = 2,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if pad_mode not in ('reflect', 'replicate', 'circular', 'zeros'):
            raise ValueError(f'Unknown BlurPool pad_mode {pad_mode!r}.')
        stride = check_stride(stride)
        self.channels = channels
        self.filter_size = filter_size
        self.pad_mode = pad_mode
        self.stride = stride
        kernel = binomial_kernel(filter_size)
        self.register_buffer(
            'kernel', kernel.expand(channels, 1, -1, -1).contiguous(),
            persistent=False)
        # Output ceil(H/s) for any H and s: pad (k-1)//2 before, k//2
        # after (k-1 in all), as antialiased-cnns, APS and LPS do.
        self.padding = ((filter_size - 1) // 2, filter_size // 2) * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x, self.channels)
        mode = self.pad_mode
        kernel = self.kernel.to(x.dtype)
        if mode == 'reflect' and tracing():
            return F.conv2d(self._reflect_pad_graph(x), kernel,
                            stride=self.stride, groups=self.channels)
        if mode == 'reflect' and min(x.shape[-2:]) <= max(self.padding):
            mode = 'replicate'  # reflect needs more pixels than the pad
        return padded_conv2d(x, kernel, None, self.padding, mode,
                             self.stride, groups=self.channels)

    def _reflect_pad_graph(self, x: torch.Tensor) -> torch.Tensor:
        """The reflect padding of :meth:`forward` (replicate on maps too
        small to reflect) with the size test as a graph op, for export."""
        left, right, top, bottom = self.padding
        h, w = shape_hw(x)
        reflect = torch.minimum(h, w) > max(self.padding)
        rows = pad_index(h, top, bottom, reflect, x.device)
        cols = pad_index(w, left, right, reflect, x.device)
        return x.index_select(-2, rows).index_select(-1, cols)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, filter_size={self.filter_size}, '
                f'pad_mode={self.pad_mode}, stride={self.stride}')
