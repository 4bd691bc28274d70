"""Translation Invariant Polyphase Sampling (Saha & Gokhale, WACV 2025)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS
from ...utils.shift_ops import shift_image
from .base import PolyphaseDownsample


@MODELS.register_module()
class TIPS(PolyphaseDownsample):
    """Per-channel convex mix of the four polyphase components.

    .. math::
        \\psi(X) = \\mathrm{ReLU}(\\mathrm{DWConv}_{3\\times3}(X)),\\quad
        \\tau = \\mathrm{softmax}_k\\big(s_c \\cdot
            \\mathrm{AvgPool}_{2\\times2}(\\psi(X))\\big),\\quad
        Y = \\sum_k \\tau_{n,c,k}\\, P_k(X)

    The 2x2 average pool's quadrant ``(a, b)`` gives the logit of component
    ``k = 2a + b``. Same computation in train and eval; no bias; ``10 * C``
    parameters (9C depthwise taps, C scales). tau is not exactly shift
    invariant by construction: invariance is learned, helped by the
    regularizers :meth:`failure_mode_loss` (L_FM) and :meth:`undo_loss`
    (L_undo), see ``METHOD.md`` section 5.

    Args:
        channels (int): Channels of the input map.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, init_cfg: Optional[dict] = None):
        super().__init__(channels, init_cfg=init_cfg)
        self.psi_conv = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, bias=False)
        self.logit_scale = nn.Conv2d(
            channels, channels, 1, groups=channels, bias=False)
        # tau, psi(X) and X of the last training forward, kept with their
        # graph for the regularizers.
        self.tau: Optional[torch.Tensor] = None
        self._psi: Optional[torch.Tensor] = None
        self._input: Optional[torch.Tensor] = None

    @property
    def last_tau(self) -> Optional[torch.Tensor]:
        """(N, C, 4) mixing weights of the last forward (detached)."""
        return self.last_weights

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        # In place: the conv's backward needs its input, not its output.
        psi = F.relu(self.psi_conv(x), inplace=True)
        quadrant_means = F.adaptive_avg_pool2d(psi, 2)
        logits = self.logit_scale(quadrant_means).flatten(2)  # (N, C, 4)
        tau = logits.float().softmax(dim=-1)
        if self.training:
            self.tau, self._psi, self._input = tau, psi, x
        return tau

    def failure_mode_loss(self) -> torch.Tensor:
        """L_FM = mean over samples and channels of ``1 - ||tau[n, c]||_2``.

        0.5 for a uniform tau (TIPS collapses to average pooling), 0 for a
        one-hot tau (a fixed phase, like strided subsampling).
        """
        tau = self._require_cache('failure_mode_loss', self.tau)
        return (1 - tau.norm(p=2, dim=-1)).mean()

    def undo_loss(self,
                  max_shift: Optional[int] = None,
                  mode: str = 'standard',
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """L_undo = MSE(psi(X), T(X)) for one random shift T of the input.

        Args:
            max_shift (int, optional): m, shifts drawn from [-m, m]^2.
                Defaults to None (H / 4 of this layer's input).
            mode (str): 'standard' (zero fill) or 'circular'.
                Defaults to 'standard'.
            generator (torch.Generator, optional): RNG for the shift.
                Defaults to None (the global one).
        """
        psi = self._require_cache('undo_loss', self._psi)
        x = self._input
        h, w = x.shape[-2:]
        if max_shift is None:
            max_shift = h // 4
        max_shift = min(max_shift, h - 1, w - 1)
        dh, dw = (torch.randint(-max_shift, max_shift + 1, (2, ),
                                generator=generator).tolist()
                  if max_shift > 0 else (0, 0))
        target = shift_image(x.detach(), (dh, dw), mode=mode)
        return F.mse_loss(psi.float(), target.float())

    def clear_cache(self):
        """Drop the tensors kept for the regularizers."""
        self.tau = self._psi = self._input = None

    def _require_cache(self, what: str, value: Optional[torch.Tensor]):
        if value is None:
            raise RuntimeError(
                f'TIPS.{what}() needs a training-mode forward first (the '
                'regularizers use tau and psi(X) of the last training '
                'forward); call model.train() and run a forward.')
        return value

    def extra_repr(self) -> str:
        return f'channels={self.channels}'
