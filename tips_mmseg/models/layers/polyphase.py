"""Polyphase split and merge: the one place where a map is cut into phases.

Component order (used everywhere in tips_mmseg): for stride ``s`` the
component ``k = s * a + b`` holds ``X[:, :, a::s, b::s]`` - row-major over
the s x s window, the order ``F.pixel_unshuffle`` produces. For the default
stride 2: ``k = 0: (0, 0)``, ``1: (0, 1)``, ``2: (1, 0)``, ``3: (1, 1)``.
Every function takes ``stride`` (default 2); a stride-s map has ``s * s``
components.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

STRIDE = 2
NUM_COMPONENTS = STRIDE * STRIDE
# (a, b) row/column offset of component k.
COMPONENT_OFFSETS: Tuple[Tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))


def check_stride(stride) -> int:
    """Return ``stride`` if it is an int >= 1, else raise a clear error."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f'stride must be an int >= 1 (2 halves the map, 4 '
                         f'quarters it), got {stride!r}; pass e.g. stride=2.')
    return stride


def component_offsets(stride: int = STRIDE) -> Tuple[Tuple[int, int], ...]:
    """(a, b) row/column offset of each component ``k = stride * a + b``."""
    stride = check_stride(stride)
    return tuple((a, b) for a in range(stride) for b in range(stride))


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
                mode: str = 'reflect-top-left',
                stride: int = STRIDE) -> torch.Tensor:
    """Pad H and W up to a multiple of ``stride`` (one row/column where odd
    for the default stride 2).

    Output is ``s * ceil(H / s)`` by ``s * ceil(W / s)``, so every stride-s
    layer yields ``ceil(H / s)``. When traced for export the padding is
    graph ops (:func:`pad_to_even_graph`), so one graph serves every size.

    Args:
        x (Tensor): (N, C, H, W) map.
        mode (str): Where and with what to pad (:data:`ODD_PADDING_MODES`):
            'reflect-top-left' (ours: reflect where possible; where a pad
            is not shorter than its side - for stride 2, a side of length
            1 - both axes are replicated), 'circular-bottom-right' (APS's
            release: the first rows/columns repeated after the last,
            wrapping as often as needed) or 'zero-bottom-right' (LPS's
            release). Defaults to 'reflect-top-left'.
        stride (int): The layer's stride. Defaults to 2.

    Returns:
        Tensor: (N, C, s * ceil(H / s), s * ceil(W / s)) map (``x`` itself
        if no padding is needed).
    """
    check_odd_padding(mode)
    stride = check_stride(stride)
    if tracing():
        return pad_to_even_graph(x, mode, stride)
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % stride, -w % stride
    if not (pad_h or pad_w):
        return x
    if mode == 'zero-bottom-right':
        return F.pad(x, (0, pad_w, 0, pad_h))
    if mode == 'circular-bottom-right':
        if pad_h <= h and pad_w <= w:
            return F.pad(x, (0, pad_w, 0, pad_h), mode='circular')
        rows = torch.arange(h + pad_h, device=x.device) % h
        cols = torch.arange(w + pad_w, device=x.device) % w
        return x.index_select(-2, rows).index_select(-1, cols)
    pad_mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    return F.pad(x, (pad_w, 0, pad_h, 0), mode=pad_mode)


def pad_to_even_graph(x: torch.Tensor,
                      mode: str = 'reflect-top-left',
                      stride: int = STRIDE) -> torch.Tensor:
    """:func:`pad_to_even` with the padding as graph ops: the same values
    for any size, with no Python decision on the size (what export
    traces). It always gathers (a copy even for maps that need no padding),
    so eager code uses :func:`pad_to_even`."""
    check_odd_padding(mode)
    stride = check_stride(stride)
    h, w = shape_hw(x)
    if stride == 2:
        # The graph exported so far (kept op for op).
        pad_h, pad_w = h % 2, w % 2
    else:
        pad_h, pad_w = (stride - h % stride) % stride, (
            stride - w % stride) % stride
    full_h, full_w = h + pad_h, w + pad_w
    if mode == 'zero-bottom-right':
        return F.pad(x, (0, stride - 1, 0, stride - 1))[..., :full_h, :full_w]
    if mode == 'circular-bottom-right':
        rows = torch.remainder(torch.arange(full_h, device=x.device), h)
        cols = torch.remainder(torch.arange(full_w, device=x.device), w)
    else:
        if stride == 2:
            reflect = torch.minimum(h, w) > 1
        else:
            reflect = torch.logical_and(pad_h < h, pad_w < w)
        rows = pad_index(h, pad_h, 0, reflect, x.device)
        cols = pad_index(w, pad_w, 0, reflect, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def crop_padding(x: torch.Tensor, size, mode: str = 'reflect-top-left'
                 ) -> torch.Tensor:
    """Inverse of :func:`pad_to_even` on a full-size map: drop the padded
    rows/columns so ``x`` is ``size`` (H, W) again (any stride)."""
    h, w = size
    if check_odd_padding(mode).endswith('top-left'):
        return x[..., x.shape[-2] - h:, x.shape[-1] - w:]
    return x[..., :h, :w]


def polyphase_split(x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Cut a map into its ``stride * stride`` polyphase components.

    Args:
        x (Tensor): (N, C, H, W) with H and W multiples of ``stride``.
        stride (int): Defaults to 2.

    Returns:
        Tensor: (N, C, s*s, H/s, W/s), component k at index k of dim 2.
    """
    stride = check_stride(stride)
    n, c, h, w = x.shape
    if h % stride or w % stride:
        raise ValueError(f'polyphase_split needs a map whose sides are '
                         f'multiples of stride={stride} (even for stride 2), '
                         f'got {h}x{w}; pad it with pad_to_even() first.')
    return F.pixel_unshuffle(x, stride).view(n, c, stride * stride,
                                             h // stride, w // stride)


def polyphase_merge(components: torch.Tensor,
                    stride: int = STRIDE) -> torch.Tensor:
    """Inverse of :func:`polyphase_split`.

    Args:
        components (Tensor): (N, C, s*s, h, w).
        stride (int): Defaults to 2.

    Returns:
        Tensor: (N, C, s*h, s*w).
    """
    stride = check_stride(stride)
    n, c, k, h, w = components.shape
    if not tracing() and k != stride * stride:
        raise ValueError(f'polyphase_merge(stride={stride}) expects '
                         f'{stride * stride} components in dim 2, got {k}.')
    return F.pixel_shuffle(components.reshape(n, c * k, h, w), stride)


def polyphase_view(x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """The components of a map as a view, without a copy.

    ``view[n, c, i, a, j, b] = X[n, c, s*i + a, s*j + b]``: component
    ``k = s*a + b`` is ``view[:, :, :, a, :, b]``. Layers mix and select
    through this view, so the full map is never copied into components
    (:func:`polyphase_split` copies once; it is for analysis code that wants
    the components side by side).

    Args:
        x (Tensor): (N, C, H, W) with H and W multiples of ``stride``.
        stride (int): Defaults to 2.

    Returns:
        Tensor: (N, C, H/s, s, W/s, s), sharing ``x``'s storage where ``x``
        is contiguous.
    """
    n, c, h, w = x.shape
    if not tracing() and (h % stride or w % stride):
        raise ValueError(f'polyphase_view needs a map whose sides are '
                         f'multiples of stride={stride} (even for stride 2), '
                         f'got {h}x{w}; pad it with pad_to_even() first.')
    return x.reshape(n, c, h // stride, stride, w // stride, stride)


class _MixPhases(torch.autograd.Function):
    """``Y = sum_k t_k * P_k(X)`` with hand-written memory traffic.

    Autograd through an einsum or a broadcast multiply-and-sum materializes
    full-size temporaries (and CPU einsum runs one tiny matmul per sample
    and channel); here the forward accumulates the strided components
    into Y, the input gradient is one broadcast multiply written straight
    into the map's layout, and only the weight gradient needs a reduction.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor,
                stride: int) -> torch.Tensor:
        ctx.save_for_backward(x, weights)
        ctx.stride = stride
        return _mix_components(x, weights, stride)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weights = ctx.saved_tensors
        s = ctx.stride
        n, c, h, w = grad.shape
        grad_x = grad_w = None
        grad6 = grad.reshape(n, c, h, 1, w, 1)
        if ctx.needs_input_grad[0]:
            grad_x = (grad6 * weights.reshape(n, c, 1, s, 1, s)
                      ).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = torch.einsum('nchawb,nchw->ncab', polyphase_view(x, s),
                                  grad).reshape(weights.shape)
        return grad_x, grad_w, None


def mix_phases(x: torch.Tensor, weights: torch.Tensor,
               stride: int = STRIDE) -> torch.Tensor:
    """Weighted sum of components: ``Y = sum_k weights[..., k] * P_k(X)``.

    Reads the components as strided views of ``x`` (no split copy); see
    :class:`_MixPhases` for why it has its own backward.

    Args:
        x (Tensor): (N, C, H, W) with H and W multiples of ``stride``.
        weights (Tensor): (N, C, s*s) per channel, or (N, 1, s*s) per
            sample.
        stride (int): Defaults to 2.

    Returns:
        Tensor: (N, C, H/s, W/s).
    """
    n, c, h, w = x.shape
    if not tracing() and (h % stride or w % stride):
        raise ValueError(f'mix_phases needs a map whose sides are multiples '
                         f'of stride={stride} (even for stride 2), got '
                         f'{h}x{w}; pad it with pad_to_even() first.')
    # expand() is differentiable: per-sample weights get summed gradients.
    weights = weights.to(x.dtype).expand(n, c, stride * stride)
    if torch.is_grad_enabled() and (x.requires_grad
                                    or weights.requires_grad):
        return _MixPhases.apply(x, weights, stride)
    # No gradient wanted (eval, export): plain ops, the same arithmetic as
    # _MixPhases.forward, so exporters can trace it.
    return _mix_components(x, weights, stride)


def _mix_components(x: torch.Tensor, weights: torch.Tensor,
                    stride: int = STRIDE) -> torch.Tensor:
    """``sum_k weights[:, :, k] * P_k(x)`` accumulated in component order."""
    w = weights.unsqueeze(-1).unsqueeze(-1)  # (N, C, s*s, 1, 1)
    (a0, b0), *rest = component_offsets(stride)
    out = x[:, :, a0::stride, b0::stride] * w[:, :, 0]
    for k, (a, b) in enumerate(rest, start=1):
        out.addcmul_(x[:, :, a::stride, b::stride], w[:, :, k])
    return out


def select_phase(x: torch.Tensor, index: torch.Tensor,
                 stride: int = STRIDE) -> torch.Tensor:
    """Keep one component per sample; copies only the kept one.

    Args:
        x (Tensor): (N, C, H, W) with H and W multiples of ``stride``.
        index (Tensor): (N,) long, the component to keep per sample.
        stride (int): Defaults to 2.

    Returns:
        Tensor: (N, C, H/s, W/s).
    """
    # (N, a, b, C, h, w) view; advanced indexing gathers one (a, b) each.
    view = polyphase_view(x, stride).permute(0, 3, 5, 1, 2, 4)
    samples = torch.arange(x.shape[0], device=x.device)
    return view[samples, index // stride, index % stride]
