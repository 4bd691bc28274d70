"""Anti-aliased downsampling (Zhang, ICML 2019)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmseg.registry import MODELS
from .base import check_input

# Binomial taps: row n of Pascal's triangle.
BINOMIAL_TAPS = {
    1: (1., ),
    2: (1., 1.),
    3: (1., 2., 1.),
    4: (1., 3., 3., 1.),
    5: (1., 4., 6., 4., 1.),
    6: (1., 5., 10., 10., 5., 1.),
    7: (1., 6., 15., 20., 15., 6., 1.),
}


def binomial_kernel(filter_size: int) -> torch.Tensor:
    """2-D binomial low-pass (outer product of binomial taps), sums to 1."""
    if filter_size not in BINOMIAL_TAPS:
        raise ValueError(f'BlurPool filter_size must be one of '
                         f'{sorted(BINOMIAL_TAPS)}, got {filter_size}.')
    taps = torch.tensor(BINOMIAL_TAPS[filter_size])
    kernel = taps[:, None] * taps[None, :]
    return kernel / kernel.sum()


@MODELS.register_module()
class BlurPool(BaseModule):
    """Depthwise binomial blur, then stride-2 subsampling.

    Args:
        channels (int): Channels of the input map.
        filter_size (int): Taps of the binomial filter (3: [1, 2, 1],
            4: [1, 3, 3, 1]). Defaults to 3.
        pad_mode (str): Padding of the blur ('reflect', 'replicate',
            'circular', 'zeros'). Defaults to 'reflect'.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 filter_size: int = 3,
                 pad_mode: str = 'reflect',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if pad_mode not in ('reflect', 'replicate', 'circular', 'zeros'):
            raise ValueError(f'Unknown BlurPool pad_mode {pad_mode!r}.')
        self.channels = channels
        self.filter_size = filter_size
        self.pad_mode = pad_mode
        kernel = binomial_kernel(filter_size)
        self.register_buffer(
            'kernel', kernel.expand(channels, 1, -1, -1).contiguous(),
            persistent=False)
        # Output ceil(H/2) for any H: pad (k-1)//2 before, k//2 after.
        self.padding = ((filter_size - 1) // 2, filter_size // 2) * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x, self.channels)
        mode = self.pad_mode
        if mode == 'reflect' and min(x.shape[-2:]) <= max(self.padding):
            mode = 'replicate'  # reflect needs more pixels than the padding
        if mode == 'zeros':
            x = F.pad(x, self.padding)
        else:
            x = F.pad(x, self.padding, mode=mode)
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2,
                        groups=self.channels)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, filter_size={self.filter_size}, '
                f'pad_mode={self.pad_mode}')
