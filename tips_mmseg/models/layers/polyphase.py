"""Polyphase split and merge: the one place where a map is cut into phases.

Component order (used everywhere in tips_mmseg): for stride 2 the component
``k = 2 * a + b`` holds ``X[:, :, a::2, b::2]``, i.e. ``k = 0: (0, 0)``,
``1: (0, 1)``, ``2: (1, 0)``, ``3: (1, 1)`` - row-major over the 2x2 window,
the order ``F.pixel_unshuffle`` produces.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

STRIDE = 2
NUM_COMPONENTS = STRIDE * STRIDE
# (a, b) row/column offset of component k.
COMPONENT_OFFSETS: Tuple[Tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))


def pad_to_even(x: torch.Tensor) -> torch.Tensor:
    """Pad one row/column at the top/left where H or W is odd.

    Reflect padding where possible; a side of length 1 cannot be reflected
    and is replicated instead. Output is ``2 * ceil(H / 2)`` by
    ``2 * ceil(W / 2)``, so every stride-2 layer yields ``ceil(H / 2)``.

    Args:
        x (Tensor): (N, C, H, W) map.

    Returns:
        Tensor: (N, C, H + H % 2, W + W % 2) map (``x`` itself if even).
    """
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if not (pad_h or pad_w):
        return x
    mode = 'reflect' if min(x.shape[-2:]) > 1 else 'replicate'
    return F.pad(x, (pad_w, 0, pad_h, 0), mode=mode)


def polyphase_split(x: torch.Tensor) -> torch.Tensor:
    """Cut an even-sized map into its four polyphase components.

    Args:
        x (Tensor): (N, C, H, W) with H and W even.

    Returns:
        Tensor: (N, C, 4, H/2, W/2), component k at index k of dim 2.
    """
    n, c, h, w = x.shape
    if h % STRIDE or w % STRIDE:
        raise ValueError(f'polyphase_split needs an even-sized map, got '
                         f'{h}x{w}; pad it with pad_to_even() first.')
    return F.pixel_unshuffle(x, STRIDE).view(n, c, NUM_COMPONENTS,
                                             h // STRIDE, w // STRIDE)


def polyphase_merge(components: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`polyphase_split`.

    Args:
        components (Tensor): (N, C, 4, h, w).

    Returns:
        Tensor: (N, C, 2h, 2w).
    """
    n, c, k, h, w = components.shape
    if k != NUM_COMPONENTS:
        raise ValueError(f'polyphase_merge expects {NUM_COMPONENTS} '
                         f'components in dim 2, got {k}.')
    return F.pixel_shuffle(components.reshape(n, c * k, h, w), STRIDE)


def mix_components(components: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of components: ``Y = sum_k weights[..., k] * P_k``.

    Args:
        components (Tensor): (N, C, 4, h, w).
        weights (Tensor): (N, C, 4) per channel, or (N, 1, 4) per sample.

    Returns:
        Tensor: (N, C, h, w).
    """
    weights = weights.to(components.dtype)
    return torch.einsum('nckhw,nck->nchw', components,
                        weights.expand(components.shape[:3]))


def select_component(components: torch.Tensor,
                     index: torch.Tensor) -> torch.Tensor:
    """Keep one component per sample, without touching the other three.

    Args:
        components (Tensor): (N, C, 4, h, w).
        index (Tensor): (N,) long, the component to keep per sample.

    Returns:
        Tensor: (N, C, h, w).
    """
    n, c, _, h, w = components.shape
    gather_index = index.view(n, 1, 1, 1, 1).expand(n, c, 1, h, w)
    return components.gather(2, gather_index).squeeze(2)
