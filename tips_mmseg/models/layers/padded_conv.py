"""Convolutions that keep no padded copy of their input for backward.

``F.pad`` followed by ``F.conv2d`` makes autograd keep the padded map (a
full-resolution copy) until backward, and a fixed filter (BlurPool's blur)
makes it keep its input although no gradient needs it. Here the padding is
redone in backward when a weight gradient needs the input, and the input
gradient is the transposed convolution followed by the adjoint of the
padding (every padded position added back to the pixel it was copied
from). Outputs are those of ``F.conv2d(F.pad(x, ...), ...)``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from ..circular import circular_pad
from .polyphase import pad_index, tracing

#: Padding modes: conv zero padding, or a copy from inside the map.
PAD_MODES = ('zeros', 'reflect', 'replicate', 'circular')
Padding = Tuple[int, int, int, int]  # (left, right, top, bottom), as F.pad


def pad_map(x: torch.Tensor, padding: Padding, mode: str) -> torch.Tensor:
    """Pad the last two dims; 'circular' wraps as often as needed."""
    if mode == 'circular':
        return circular_pad(x, padding)
    if mode == 'zeros':
        return F.pad(x, padding)
    return F.pad(x, padding, mode=mode)


def _source_index(size: int, before: int, after: int, mode: str,
                  device) -> torch.Tensor:
    """Index of the pixel each position of a padded axis copies."""
    if mode == 'circular':
        return torch.arange(-before, size + after, device=device) % size
    return pad_index(torch.tensor(size), before, after,
                     torch.tensor(mode == 'reflect'), device)


def unpad_grad(grad: torch.Tensor, size: Sequence[int], padding: Padding,
               mode: str) -> torch.Tensor:
    """Adjoint of :func:`pad_map`: the gradient of the unpadded map."""
    left, right, top, bottom = padding
    h, w = size
    if mode == 'zeros':
        return grad[..., top:top + h, left:left + w]
    rows = _source_index(h, top, bottom, mode, grad.device)
    cols = _source_index(w, left, right, mode, grad.device)
    out = grad.new_zeros(grad.shape[:-2] + (h, grad.shape[-1]))
    out.index_add_(-2, rows, grad)
    return grad.new_zeros(grad.shape[:-2] + (h, w)).index_add_(-1, cols, out)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a conv of ``x`` runs in: autocast's where it is on (AMP),
    else ``x``'s."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


class ConvSpec:
    """Padding, mode, stride, dilation and groups of one convolution.

    Custom autograd functions run their backward outside autocast, so the
    spec carries the dtype the forward runs in (``dtype``, see
    :func:`compute_dtype`) and the backward computes in it too.
    """

    def __init__(self, padding: Padding, mode: str, dtype: torch.dtype,
                 stride: int = 1, dilation: int = 1, groups: int = 1):
        if mode not in PAD_MODES:
            raise ValueError(f'pad mode must be one of {PAD_MODES}, got '
                             f'{mode!r}.')
        self.padding, self.mode = tuple(padding), mode
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.dtype = dtype
        left, right, top, bottom = self.padding
        # Zero padding is the conv's own (no copy) when symmetric.
        self.conv_padding = ((top, left) if mode == 'zeros'
                             and (left, top) == (right, bottom) else 0)

    def padded_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the conv itself sees (``x`` where the conv pads)."""
        return x if self.conv_padding else pad_map(x, self.padding,
                                                   self.mode)

    def forward(self, x: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        dtype = self.dtype
        return F.conv2d(self.padded_input(x.to(dtype)), weight.to(dtype),
                        None if bias is None else bias.to(dtype),
                        self.stride, self.conv_padding, self.dilation,
                        self.groups)

    def backward(self, x_shape: torch.Size, x: Optional[torch.Tensor],
                 weight: torch.Tensor, grad: torch.Tensor,
                 need: Sequence[bool], x_dtype: torch.dtype):
        """Gradients (input, weight, bias) of :meth:`forward`, each None
        unless ``need`` asks for it; ``x`` is needed for the weight's
        (bias gradients take the weight's dtype)."""
        need_x, need_w, need_b = need
        dtype = self.dtype
        grad, weight_in = grad.to(dtype), weight
        weight = weight.to(dtype)
        x = None if x is None else x.to(dtype)
        h, w = x_shape[-2:]
        if self.conv_padding:
            ph, pw = h + 2 * self.conv_padding[0], w + 2 * self.conv_padding[1]
        else:
            left, right, top, bottom = self.padding
            ph, pw = h + top + bottom, w + left + right
        grad_x = grad_w = grad_b = None
        if need_w and need_x and self.conv_padding:
            # Both from one call (one pass over the input and gradient).
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [self.stride] * 2,
                list(self.conv_padding), [self.dilation] * 2, False, [0, 0],
                self.groups, [True, True, False])
            need_x = need_w = False
        if need_x:
            span = [self.dilation * (k - 1) + 1 for k in weight.shape[-2:]]
            extra = [size - ((out - 1) * self.stride + k)
                     for size, out, k in zip((ph, pw), grad.shape[-2:],
                                             span)]
            grad_x = F.conv_transpose2d(
                grad, weight, None, self.stride, self.conv_padding,
                tuple(extra), self.groups, self.dilation)
            if not self.conv_padding:
                grad_x = unpad_grad(grad_x, (h, w), self.padding, self.mode)
        if need_w:
            grad_w = conv2d_weight(self.padded_input(x), weight.shape, grad,
                                   self.stride, self.conv_padding,
                                   self.dilation, self.groups)
        if need_b:
            grad_b = grad.sum(dim=(0, 2, 3))
        # Gradients in the dtypes of what they are the gradients of.
        return (None if grad_x is None else grad_x.to(x_dtype),
                None if grad_w is None else grad_w.to(weight_in.dtype),
                None if grad_b is None else grad_b.to(weight_in.dtype))


class _PaddedConv2d(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, spec: ConvSpec):
        ctx.spec, ctx.x_shape, ctx.x_dtype = spec, x.shape, x.dtype
        # The input only for the weight's gradient (a fixed filter keeps
        # none); the padded copy is redone in backward.
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              weight)
        return spec.forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grads = ctx.spec.backward(ctx.x_shape, x, weight, grad,
                                  ctx.needs_input_grad[:3], ctx.x_dtype)
        return (*grads, None)


def padded_conv2d(x: torch.Tensor,
                  weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None,
                  padding: Padding = (0, 0, 0, 0),
                  mode: str = 'zeros',
                  stride: int = 1,
                  dilation: int = 1,
                  groups: int = 1) -> torch.Tensor:
    """``F.conv2d(pad_map(x, padding, mode), ...)`` that keeps for backward
    only ``x`` (and only if ``weight`` needs a gradient), never the padded
    copy.

    Args:
        x (Tensor): (N, C, H, W) map.
        weight (Tensor): Conv weight.
        bias (Tensor, optional): Conv bias. Defaults to None.
        padding (tuple[int]): ``(left, right, top, bottom)``. Defaults to
            no padding.
        mode (str): One of :data:`PAD_MODES`. Defaults to 'zeros'.
        stride, dilation, groups (int): As ``F.conv2d``. Default to 1.
    """
    spec = ConvSpec(padding, mode, compute_dtype(x), stride, dilation,
                    groups)
    # Exporters trace plain ops; a custom Function would be opaque to them.
    if tracing() or not torch.is_grad_enabled() or not (
            x.requires_grad or weight.requires_grad
            or (bias is not None and bias.requires_grad)):
        return spec.forward(x, weight, bias)
    return _PaddedConv2d.apply(x, weight, bias, spec)
