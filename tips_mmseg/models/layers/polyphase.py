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


#: How a layer pads an odd-sized map to even before splitting it: ours, and
#: the ones APS's and LPS's releases use.
ODD_PADDING_MODES = ('reflect-top-left', 'circular-bottom-right',
                     'zero-bottom-right')


def check_odd_padding(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`ODD_PADDING_MODES`."""
    if mode not in ODD_PADDING_MODES:
        raise ValueError(f'odd_padding must be one of {ODD_PADDING_MODES}, '
                         f'got {mode!r}.')
    return mode


def tracing() -> bool:
    """Whether the forward is being traced (ONNX / TorchScript export).

    Layers then take their graph path: sizes are symbolic, so decisions
    that depend on them are graph ops instead of Python ``if``s.
    """
    return torch.jit.is_tracing()


def shape_hw(x: torch.Tensor):
    """(H, W) of ``x`` as 0-dim long tensors (symbolic when traced)."""
    # What torch.onnx.operators.shape_as_tensor does, without importing
    # torch.onnx in every process that imports the layers.
    shape = torch._shape_as_tensor(x)
    return shape[-2], shape[-1]


def pad_index(size: torch.Tensor, before, after, reflect: torch.Tensor,
              device=None) -> torch.Tensor:
    """Source indices of a padded axis: reflect or, where ``reflect`` is
    False, replicate; all as graph ops of the (symbolic) size.

    Args:
        size (Tensor): 0-dim length of the axis.
        before, after (int | Tensor): Padding on each side (< size where
            reflecting).
        reflect (Tensor): 0-dim bool.
        device (torch.device, optional): Of the indices (the map's; sizes
            live on the CPU). Defaults to None (the size's).

    Returns:
        Tensor: (before + size + after,) long indices into the axis.
    """
    idx = torch.arange(size + before + after,
                       device=device or size.device) - before
    size, reflect = size.to(idx.device), reflect.to(idx.device)
    # Mirror about 0 and size - 1 (period 2 * (size - 1)); a side of one
    # pixel has no mirror (its period is clamped to avoid x % 0).
    period = torch.clamp(2 * (size - 1), min=1)
    mirrored = torch.remainder(idx, period)
    mirrored = torch.where(mirrored >= size, period - mirrored, mirrored)
    clamped = torch.minimum(torch.clamp(idx, min=0), size - 1)
    return torch.where(reflect, mirrored, clamped)


def pad_to_even(x: torch.Tensor,
                mode: str = 'reflect-top-left') -> torch.Tensor:
    """Pad one row/column where H or W is odd.

    Output is ``2 * ceil(H / 2)`` by ``2 * ceil(W / 2)``, so every stride-2
    layer yields ``ceil(H / 2)``. When traced for export the parity is a
    graph op (:func:`pad_to_even_graph`), so one graph serves even and odd
    sizes.

    Args:
        x (Tensor): (N, C, H, W) map.
        mode (str): Where and with what to pad (:data:`ODD_PADDING_MODES`):
            'reflect-top-left' (ours: reflect where possible, a side of
            length 1 is replicated), 'circular-bottom-right' (APS's release:
            the first row/column repeated after the last) or
            'zero-bottom-right' (LPS's release). Defaults to
            'reflect-top-left'.

    Returns:
        Tensor: (N, C, H + H % 2, W + W % 2) map (``x`` itself if even).
    """
    check_odd_padding(mode)
    if tracing():
        return pad_to_even_graph(x, mode)
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if not (pad_h or pad_w):
        return x
    if mode == 'zero-bottom-right':
        return F.pad(x, (0, pad_w, 0, pad_h))
    if mode == 'circular-bottom-right':
        return F.pad(x, (0, pad_w, 0, pad_h), mode='circular')
    pad_mode = 'reflect' if min(x.shape[-2:]) > 1 else 'replicate'
    return F.pad(x, (pad_w, 0, pad_h, 0), mode=pad_mode)


def pad_to_even_graph(x: torch.Tensor,
                      mode: str = 'reflect-top-left') -> torch.Tensor:
    """:func:`pad_to_even` with the parity as graph ops: the same values
    for any size, with no Python decision on the size (what export
    traces). It always gathers (a copy even for even maps), so eager code
    uses :func:`pad_to_even`."""
    check_odd_padding(mode)
    h, w = shape_hw(x)
    even_h, even_w = h + h % 2, w + w % 2
    if mode == 'zero-bottom-right':
        return F.pad(x, (0, 1, 0, 1))[..., :even_h, :even_w]
    if mode == 'circular-bottom-right':
        rows = torch.remainder(torch.arange(even_h, device=x.device), h)
        cols = torch.remainder(torch.arange(even_w, device=x.device), w)
    else:
        reflect = torch.minimum(h, w) > 1
        rows = pad_index(h, h % 2, 0, reflect, x.device)
        cols = pad_index(w, w % 2, 0, reflect, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def crop_padding(x: torch.Tensor, size, mode: str = 'reflect-top-left'
                 ) -> torch.Tensor:
    """Inverse of :func:`pad_to_even` on a full-size map: drop the padded
    row/column so ``x`` is ``size`` (H, W) again."""
    h, w = size
    if check_odd_padding(mode).endswith('top-left'):
        return x[..., x.shape[-2] - h:, x.shape[-1] - w:]
    return x[..., :h, :w]


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
    if not tracing() and k != NUM_COMPONENTS:
        raise ValueError(f'polyphase_merge expects {NUM_COMPONENTS} '
                         f'components in dim 2, got {k}.')
    return F.pixel_shuffle(components.reshape(n, c * k, h, w), STRIDE)


def polyphase_view(x: torch.Tensor) -> torch.Tensor:
    """The four components of an even-sized map as a view, without a copy.

    ``view[n, c, i, a, j, b] = X[n, c, 2i + a, 2j + b]``: component
    ``k = 2a + b`` is ``view[:, :, :, a, :, b]``. Layers mix and select
    through this view, so the full map is never copied into components
    (:func:`polyphase_split` copies once; it is for analysis code that wants
    the components side by side).

    Args:
        x (Tensor): (N, C, H, W) with H and W even.

    Returns:
        Tensor: (N, C, H/2, 2, W/2, 2), sharing ``x``'s storage where ``x``
        is contiguous.
    """
    n, c, h, w = x.shape
    if not tracing() and (h % STRIDE or w % STRIDE):
        raise ValueError(f'polyphase_view needs an even-sized map, got '
                         f'{h}x{w}; pad it with pad_to_even() first.')
    return x.reshape(n, c, h // STRIDE, STRIDE, w // STRIDE, STRIDE)


class _MixPhases(torch.autograd.Function):
    """``Y = sum_k t_k * P_k(X)`` with hand-written memory traffic.

    Autograd through an einsum or a broadcast multiply-and-sum materializes
    full-size temporaries (and CPU einsum runs one tiny matmul per sample
    and channel); here the forward accumulates the four strided components
    into Y, the input gradient is one broadcast multiply written straight
    into the map's layout, and only the weight gradient needs a reduction.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weights)
        return _mix_components(x, weights)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weights = ctx.saved_tensors
        n, c, h, w = grad.shape
        grad_x = grad_w = None
        grad6 = grad.reshape(n, c, h, 1, w, 1)
        if ctx.needs_input_grad[0]:
            grad_x = (grad6 * weights.reshape(n, c, 1, STRIDE, 1, STRIDE)
                      ).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = torch.einsum('nchawb,nchw->ncab', polyphase_view(x),
                                  grad).reshape(weights.shape)
        return grad_x, grad_w


def mix_phases(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of components: ``Y = sum_k weights[..., k] * P_k(X)``.

    Reads the components as strided views of ``x`` (no split copy); see
    :class:`_MixPhases` for why it has its own backward.

    Args:
        x (Tensor): (N, C, H, W) with H and W even.
        weights (Tensor): (N, C, 4) per channel, or (N, 1, 4) per sample.

    Returns:
        Tensor: (N, C, H/2, W/2).
    """
    n, c, h, w = x.shape
    if not tracing() and (h % STRIDE or w % STRIDE):
        raise ValueError(f'mix_phases needs an even-sized map, got {h}x{w}; '
                         'pad it with pad_to_even() first.')
    # expand() is differentiable: per-sample weights get summed gradients.
    weights = weights.to(x.dtype).expand(n, c, NUM_COMPONENTS)
    if torch.is_grad_enabled() and (x.requires_grad
                                    or weights.requires_grad):
        return _MixPhases.apply(x, weights)
    # No gradient wanted (eval, export): plain ops, the same arithmetic as
    # _MixPhases.forward, so exporters can trace it.
    return _mix_components(x, weights)


def _mix_components(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[:, :, k] * P_k(x)`` accumulated in component order."""
    w = weights.unsqueeze(-1).unsqueeze(-1)  # (N, C, 4, 1, 1)
    (a0, b0), *rest = COMPONENT_OFFSETS
    out = x[:, :, a0::STRIDE, b0::STRIDE] * w[:, :, 0]
    for k, (a, b) in enumerate(rest, start=1):
        out.addcmul_(x[:, :, a::STRIDE, b::STRIDE], w[:, :, k])
    return out


def select_phase(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Keep one component per sample; copies only the kept one.

    Args:
        x (Tensor): (N, C, H, W) with H and W even.
        index (Tensor): (N,) long, the component to keep per sample.

    Returns:
        Tensor: (N, C, H/2, W/2).
    """
    # (N, a, b, C, h, w) view; advanced indexing gathers one (a, b) each.
    view = polyphase_view(x).permute(0, 3, 5, 1, 2, 4)
    samples = torch.arange(x.shape[0], device=x.device)
    return view[samples, index // STRIDE, index % STRIDE]
