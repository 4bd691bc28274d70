"""Binomial low-pass taps, shared by BlurPool and the APS/LPS low-pass."""
import torch

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
