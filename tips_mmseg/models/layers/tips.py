"""Translation Invariant Polyphase Sampling (Saha & Gokhale, WACV 2025)."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ...registry import DOWNSAMPLERS
from ...utils.shift_ops import check_mode, shift_blocks
from .base import PolyphaseDownsample
from .padded_conv import ConvSpec, compute_dtype
from .polyphase import tracing

#: How the s x s quadrant means are paired with the s*s components.
TAU_PAIRINGS = ('aligned', 'release')

MaxShift = Optional[Union[int, Sequence[int]]]


def _shift_pair(max_shift: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``m`` or ``(m_h, m_w)`` -> ``(m_h, m_w)``, checked."""
    pair = ((max_shift, max_shift) if isinstance(max_shift, int) else
            tuple(max_shift))
    if len(pair) != 2 or not all(
            isinstance(m, int) and not isinstance(m, bool) and m >= 0
            for m in pair):
        raise ValueError(f'max_shift must be an int >= 0 or a pair (m_h, '
                         f'm_w) of them, got {max_shift!r}.')
    return pair


def _undo_blocks(shift: Tuple[int, int], size, mode: str):
    """``(dst, src)`` blocks where T(X)[dst] = X[src] (T(X) is 0 elsewhere:
    a zero-fill shift past the map has no block)."""
    h, w = size
    dh, dw = shift
    if mode == 'circular':
        # A roll by d equals a roll by d mod size (wraps on small maps).
        return shift_blocks((dh % h, dw % w), size, mode)
    if abs(dh) >= h or abs(dw) >= w:
        return []
    return shift_blocks((dh, dw), size, mode)


def undo_target(x: torch.Tensor, shift: Tuple[int, int],
                mode: str) -> torch.Tensor:
    """T(X): ``x`` shifted by ``shift`` for L_undo (a circular shift wraps
    around small maps; a zero-fill shift past the map leaves zeros)."""
    target = torch.zeros_like(x)
    for dst, src in _undo_blocks(shift, x.shape[-2:], mode):
        target[..., dst[0], dst[1]] = x[..., src[0], src[1]]
    return target


def _subtract_target_(out: torch.Tensor, x: torch.Tensor,
                      shift: Tuple[int, int], mode: str) -> torch.Tensor:
    """``out -= T(X)`` in place, block by block (no shifted copy of X)."""
    for dst, src in _undo_blocks(shift, x.shape[-2:], mode):
        out[..., dst[0], dst[1]] -= x[..., src[0], src[1]].to(out.dtype)
    return out


def _in_backward() -> bool:
    """Whether this runs inside autograd's backward pass (as the
    recomputation of a checkpointed block does)."""
    # torch has no public flag for it; the engine's current graph task id
    # is -1 outside backward.
    task_id = getattr(torch._C, '_current_graph_task_id', None)
    return task_id is not None and task_id() != -1


class _PsiStatistics(torch.autograd.Function):
    """What TIPS needs of ``psi(X) = ReLU(DWConv(X))``, keeping only X.

    Returns the s x s quadrant means (for tau) and, when an L_undo shift is
    given, ``MSE(psi(X), T(X))`` - computed here, while psi(X) exists,
    instead of after the network's forward. psi(X) has the size of X: kept
    until backward, or recomputed for L_undo at the end of the forward, it
    would sit in memory at the peak of the training step. Backward
    recomputes the depthwise conv once for both outputs - a few
    multiply-adds per pixel - when most of the network's activations are
    already freed. psi(X) - T(X) is formed in place, block by block, so no
    shifted copy of X is made either.
    """

    @staticmethod
    def forward(ctx, x, weight, spec: ConvSpec, stride: int,
                undo: Optional[Tuple[Tuple[int, int], str, bool]]):
        ctx.spec, ctx.stride, ctx.undo = spec, stride, undo
        ctx.save_for_backward(x, weight)  # spec.forward fixes the dtype
        psi = F.relu(spec.forward(x, weight), inplace=True)
        means = F.adaptive_avg_pool2d(psi, stride)
        if undo is None:
            return means, None
        shift, mode, _ = undo
        diff = _subtract_target_(psi, x, shift, mode)  # psi is not needed
        return means, diff.pow_(2).mean(dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_means, grad_undo):
        x, weight = ctx.saved_tensors
        s = ctx.stride
        pre = ctx.spec.forward(x, weight)
        n, c, h, w = pre.shape
        diff = None
        if ctx.undo is not None and grad_undo is not None:
            shift, mode, detach = ctx.undo
            # d MSE / d psi = 2 (psi - T(X)) / numel.
            diff = _subtract_target_(F.relu(pre), x, shift, mode)
            diff.mul_((2 * grad_undo / diff.numel()).to(diff.dtype))
        # Each quadrant's mean spreads its gradient evenly over the quadrant.
        per_pixel = (grad_means.to(pre.dtype) / ((h // s) * (w // s)))[
            :, :, :, None, :, None]
        grad_pre = pre.gt_(0)  # the ReLU's mask, written over pre
        grad_pre6 = grad_pre.view(n, c, s, h // s, s, w // s)
        if diff is None:
            grad_pre6.mul_(per_pixel)
        else:
            grad_pre.mul_(diff.view(n, c, s, h // s, s, w // s).add(
                per_pixel).view(n, c, h, w))
        grad_x, grad_w, _ = ctx.spec.backward(
            x.shape, x, weight, grad_pre,
            (ctx.needs_input_grad[0], ctx.needs_input_grad[1], False),
            x.dtype)
        if diff is not None and not ctx.undo[2] and grad_x is not None:
            # T(X) is X moved: its gradient, -diff, moves back.
            for dst, src in _undo_blocks(shift, (h, w), mode):
                grad_x[..., src[0], src[1]] -= diff[..., dst[0], dst[1]].to(
                    grad_x.dtype)
        return grad_x, grad_w, None, None, None


@DOWNSAMPLERS.register_module()
class TIPS(PolyphaseDownsample):
    """Per-channel convex mix of the s*s polyphase components (stride s).

    .. math::
        \\psi(X) = \\mathrm{ReLU}(\\mathrm{DWConv}_{3\\times3}(X)),\\quad
        \\tau = \\mathrm{softmax}_k\\big(s_c \\cdot
            \\mathrm{AvgPool}_{2\\times2}(\\psi(X))\\big),\\quad
        Y = \\sum_k \\tau_{n,c,k}\\, P_k(X)

    ``AvgPool_{s x s}`` averages each of the s x s quadrants of psi(X) (one
    mean per component; 2x2 for the default stride 2). Same computation in
    train and eval; no bias; ``10 * C`` parameters for any stride (9C
    depthwise taps, C scales). tau is not exactly shift invariant by
    construction: invariance is learned, helped by the regularizers
    :meth:`failure_mode_loss` (L_FM) and :meth:`undo_loss` (L_undo).

    Which quadrant drives which component (``tau_pairing``):

    - ``'aligned'`` (default): the quadrant in row ``a``, column ``b`` of
      the s x s average pool gives the logit of component ``k = s*a + b``
      (``X[a::s, b::s]``): row offsets follow rows, column offsets columns.
    - ``'release'``: as the official release computes it. It flattens the
      quadrant means row-major (TL, TR, BL, BR) but lists its components as
      ``X[0::2, 0::2], X[1::2, 0::2], X[0::2, 1::2], X[1::2, 1::2]``, so
      quadrant ``(a, b)`` drives component ``(b, a)``: the top-right quadrant
      drives the component with row offset 1 (ours: column offset 1).
      For a stride s (the release has stride 2 only) we define it as the
      same transposition: quadrant ``(a, b)`` of the s x s pool drives
      component ``(b, a)``, i.e. ``k = s*b + a``.

    The two are different functions with the same parameters (a
    transposition of the quadrants); neither is more shift invariant, and
    a network trained from scratch adapts to either. Ours is the default:
    it keeps one layout (row offsets with rows, column offsets with
    columns), and nothing in the paper or the release motivates the
    release's mismatch, which reads as an indexing slip rather than a
    design choice; ``'release'`` reproduces it exactly (e.g. to run weights
    trained with the release). ``last_tau`` is indexed by component
    (``k = s*a + b``) in both.

    Args:
        channels (int): Channels of the input map.
        tau_pairing (str): ``'aligned'`` or ``'release'``, see above.
            Defaults to ``'aligned'``.
        odd_padding (str): How odd maps are made even, see
            :func:`pad_to_even`. Defaults to ``'reflect-top-left'``.
        stride (int): Downsampling factor s (s*s components, output
            ceil(H/s) x ceil(W/s)). Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 tau_pairing: str = 'aligned',
                 odd_padding: str = 'reflect-top-left',
                 init_cfg: Optional[dict] = None,
                 stride: int = 2):
        super().__init__(channels, init_cfg=init_cfg, odd_padding=odd_padding,
                         stride=stride)
        if tau_pairing not in TAU_PAIRINGS:
            raise ValueError(f'TIPS(tau_pairing={tau_pairing!r}): use one of '
                             f'{TAU_PAIRINGS}.')
        self.tau_pairing = tau_pairing
        self.psi_conv = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, bias=False)
        self.logit_scale = nn.Conv2d(
            channels, channels, 1, groups=channels, bias=False)
        self.reset_parameters()
        # tau and X (the padded input) of the last training forward, kept
        # with their graph for the regularizers (psi(X) is recomputed from X:
        # keeping it would hold a map of X's size through the network).
        self.tau: Optional[torch.Tensor] = None
        self._input: Optional[torch.Tensor] = None
        # L_undo asked for before a forward (request_undo) and its value.
        self._undo_request = None
        self._undo_value = None
        #: (dh, dw) of the last :meth:`undo_loss` (for logs and tests).
        self.last_undo_shift: Optional[Tuple[int, int]] = None

    @property
    def last_tau(self) -> Optional[torch.Tensor]:
        """(N, C, s*s) mixing weights of the last forward (detached)."""
        return self.last_weights

    def reset_parameters(self):
        """The release's init: Kaiming normal, fan_out, ReLU gain, on both
        convs (its ResNet initialises every conv so, TIPS's included):
        std ``sqrt(2 / (9 C))`` for psi's taps and ``sqrt(2 / C)`` for the
        scales: ``3 / sqrt(1.5 C)`` times PyTorch's default (1/3.3 for
        C = 64, 1/13 for C = 1024)."""
        for conv in (self.psi_conv, self.logit_scale):
            nn.init.kaiming_normal_(conv.weight, mode='fan_out',
                                    nonlinearity='relu')

    def init_weights(self):
        """Initialise as the release does whatever the backbone's init_cfg.

        A backbone's ``init_cfg`` initialises its convs (mmseg's ResNet:
        Kaiming, as the release) or loads a checkpoint; with
        ``dict(type='Pretrained', ...)`` the new TIPS layers, absent from an
        ImageNet checkpoint, would keep whatever they had. mmengine calls
        this after the parent's own initialisers and before its checkpoint
        is loaded, so a checkpoint that holds TIPS weights still wins. A
        TIPS layer's own ``init_cfg`` takes precedence over this.
        """
        if not self._is_init and not self.init_cfg:
            self.reset_parameters()
        super().init_weights()

    def _psi_spec(self, x: torch.Tensor) -> ConvSpec:
        """psi's depthwise conv of ``x`` (circular once a backbone converts
        it)."""
        conv = self.psi_conv
        pad_h, pad_w = conv.padding
        mode = 'circular' if conv.padding_mode == 'circular' else 'zeros'
        return ConvSpec((pad_w, pad_w, pad_h, pad_h), mode, compute_dtype(x),
                        groups=conv.groups)

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        """psi(X) = ReLU(DWConv_3x3(X)) of a padded input ``x``."""
        # In place: the conv's backward needs its input, not its output.
        return F.relu(self._psi_spec(x).forward(x, self.psi_conv.weight),
                      inplace=True)

    def request_undo(self,
                     max_shift: MaxShift = None,
                     mode: str = 'circular',
                     detach: bool = True):
        """Compute L_undo in the next training forward, while psi(X) is at
        hand (see :class:`_PsiStatistics`); :meth:`undo_loss` with the same
        arguments then returns it. TIPSEncoderDecoder asks for it in every
        step where L_undo is on."""
        check_mode(mode)
        if max_shift is not None:
            max_shift = _shift_pair(max_shift)
        self._undo_request = (max_shift, mode, bool(detach))

    def _draw_undo_shift(self, size, max_shift: MaxShift,
                         generator: Optional[torch.Generator] = None):
        h, w = size
        m_h, m_w = (h // 4, w // 4) if max_shift is None else _shift_pair(
            max_shift)
        shift = tuple(
            int(torch.randint(-m, m + 1, (), generator=generator))
            if m > 0 else 0 for m in (m_h, m_w))
        self.last_undo_shift = shift
        return shift

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        weight = self.psi_conv.weight
        if not tracing() and torch.is_grad_enabled() and (
                x.requires_grad or weight.requires_grad):
            undo = None
            request = self._undo_request if self.training else None
            if request is not None:
                max_shift, mode, detach = request
                undo = (self._draw_undo_shift(x.shape[-2:], max_shift), mode,
                        detach)
            quadrant_means, undo_value = _PsiStatistics.apply(
                x, weight, self._psi_spec(x), s, undo)
            self._undo_value = (request, undo_value) if request else None
        else:
            quadrant_means = self._quadrant_means(self.psi(x))
        logits = self.logit_scale(quadrant_means)  # (N, C, s, s)
        if self.tau_pairing == 'release':
            logits = logits.transpose(-2, -1)
        tau = logits.flatten(2).float().softmax(dim=-1)  # (N, C, s*s)
        if self.training and not _in_backward():
            # A checkpointed block (with_cp=True) runs this forward again
            # during backward: the regularizers have read and cleared the
            # caches by then, so that recomputation must not refill them.
            self.tau, self._input = tau, x
        return tau

    def _quadrant_means(self, psi: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if tracing():
            # The exporter cannot size an adaptive pool of a symbolic map;
            # psi's sides are multiples of s, so its quadrants are a
            # reshape away.
            n, c, h, w = psi.shape
            quadrant_means = psi.reshape(n, c, s, h // s, s, w // s).mean(
                dim=(3, 5))
        else:
            # Sides are multiples of s: exact, equal s x s quadrants.
            quadrant_means = F.adaptive_avg_pool2d(psi, s)
        return quadrant_means

    def failure_mode_loss(self) -> torch.Tensor:
        """L_FM = mean over samples and channels of ``1 - ||tau[n, c]||_2``.

        0.5 for a uniform tau (TIPS collapses to average pooling), 0 for a
        one-hot tau (a fixed phase, like strided subsampling).
        """
        tau = self._require_cache('failure_mode_loss', self.tau)
        return (1 - tau.norm(p=2, dim=-1)).mean()

    def undo_loss(self,
                  max_shift: MaxShift = None,
                  mode: str = 'circular',
                  generator: Optional[torch.Generator] = None,
                  detach: bool = True) -> torch.Tensor:
        """L_undo = MSE(psi(X), T(X)) for one random shift T of the input.

        X is this layer's input (padded to even size, as the layer sees it);
        T shifts it by ``(dh, dw)`` drawn uniformly from ``[-m_h, m_h] x
        [-m_w, m_w]`` (one draw per call, the same for the whole batch; kept
        in ``last_undo_shift``).

        Args:
            max_shift (int | tuple[int, int], optional): m, or ``(m_h,
                m_w)``, in this layer's pixels. It may exceed the map: a
                circular shift then wraps around, a zero-fill shift leaves
                an all-zero target (both as the release). Defaults to None
                (``(H // 4, W // 4)`` of this layer's input).
            mode (str): ``'circular'`` (``torch.roll``, as the release
                trains) or ``'standard'`` (zero fill). Defaults to
                ``'circular'``.
            generator (torch.Generator, optional): RNG for the shift.
                Defaults to None (the global one).
            detach (bool): Stop the gradient at the target T(X), so that
                L_undo trains psi only through psi(X) (the release's stated
                intent). False lets it also flow through T(X) into the
                layers before TIPS (the release's code as it runs: its
                ``detach()`` result is discarded). Defaults to True.
        """
        x = self._require_cache('undo_loss', self._input)
        check_mode(mode)
        if max_shift is not None:
            max_shift = _shift_pair(max_shift)
        computed = self._undo_value
        if computed is not None and generator is None and \
                computed[0] == (max_shift, mode, bool(detach)):
            self._undo_value = None  # one value per forward
            return computed[1]
        shift = self._draw_undo_shift(x.shape[-2:], max_shift, generator)
        if not torch.is_grad_enabled():
            return self._undo_mse(x, shift, mode, detach)
        # Not requested before the forward: psi(X) and T(X) are recomputed
        # in backward rather than kept.
        return checkpoint(self._undo_mse, x, shift, mode, detach,
                          use_reentrant=False)

    def _undo_mse(self, x: torch.Tensor, shift: Tuple[int, int], mode: str,
                  detach: bool) -> torch.Tensor:
        target = undo_target(x.detach() if detach else x, shift, mode)
        return F.mse_loss(self.psi(x).float(), target.float())

    def clear_cache(self):
        """Drop the tensors kept for the regularizers and any L_undo
        request."""
        self.tau = self._input = None
        self._undo_request = self._undo_value = None

    def _require_cache(self, what: str, value: Optional[torch.Tensor]):
        if value is None:
            raise RuntimeError(
                f'TIPS.{what}() needs a training-mode forward first (the '
                'regularizers use tau and psi(X) of the last training '
                'forward); call model.train() and run a forward.')
        return value

    def extra_repr(self) -> str:
        extra = ('' if self.tau_pairing == 'aligned' else
                 f', tau_pairing={self.tau_pairing!r}')
        if self.stride != 2:
            extra += f', stride={self.stride}'
        return f'channels={self.channels}{extra}'
