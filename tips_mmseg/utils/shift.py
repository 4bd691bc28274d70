"""Shifting maps by whole pixels: standard (with fill) and circular."""
import torch

SHIFT_MODES = ('standard', 'circular')


def shift_map(x: torch.Tensor,
              dh: int,
              dw: int,
              mode: str = 'standard',
              fill: float = 0.) -> torch.Tensor:
    """Move the content of ``x`` by (dh, dw) pixels.

    ``standard``: ``y[..., i, j] = x[..., i - dh, j - dw]`` where that pixel
    exists, else ``fill``; ``circular``: ``torch.roll``. Size is unchanged.

    Args:
        x (Tensor): (..., H, W) map.
        dh (int): Rows down (negative: up).
        dw (int): Columns right (negative: left).
        mode (str): 'standard' or 'circular'. Defaults to 'standard'.
        fill (float): Value of uncovered pixels in standard mode.
            Defaults to 0.

    Returns:
        Tensor: The shifted map, same shape and dtype as ``x``.
    """
    h, w = x.shape[-2:]
    if mode not in SHIFT_MODES:
        raise ValueError(f'Unknown shift mode {mode!r}; use one of '
                         f'{SHIFT_MODES}.')
    if abs(dh) >= h or abs(dw) >= w:
        raise ValueError(
            f'Shift ({dh}, {dw}) is larger than the {h}x{w} map; use shifts '
            f'with |dh| < {h} and |dw| < {w} (e.g. a smaller max_shift).')
    if mode == 'circular':
        return torch.roll(x, shifts=(dh, dw), dims=(-2, -1))
    out = torch.full_like(x, fill)
    out[..., max(dh, 0):h + min(dh, 0), max(dw, 0):w + min(dw, 0)] = \
        x[..., max(-dh, 0):h + min(-dh, 0), max(-dw, 0):w + min(-dw, 0)]
    return out
