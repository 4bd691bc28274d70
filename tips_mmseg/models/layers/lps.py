"""Learnable Polyphase Sampling (Rojas-Gomez et al., NeurIPS 2022)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import DOWNSAMPLERS
from .base import PolyphaseDownsample, one_hot_weights
from .padded_conv import padded_conv2d
from .polyphase import STRIDE, polyphase_view


#: Logits nets: 'lps' = LPS's release, conv3x3(C->hid)-ReLU-conv3x3(hid->hid)
#: then the mean over (hid, h, w); 'compact' = conv3x3(C->hid)-ReLU-
#: conv3x3(hid->1) then the mean over (h, w).
SCORERS = ('lps', 'compact')


class ComponentScorer(nn.Module):
    """Small net that gives each polyphase component one logit.

    conv3x3 - ReLU - conv3x3 - mean over channels and space, shared across
    the s*s components. Circular padding makes each score invariant to
    circular shifts of its component, so the choice is invariant to circular
    shifts of the input.

    Args:
        channels (int): Channels of a component.
        hidden_channels (int): Width of the hidden layer.
        scorer (str): 'lps' (second conv hid -> hid, as LPS's release) or
            'compact' (second conv hid -> 1). Defaults to 'lps'.
    """

    def __init__(self, channels: int, hidden_channels: int,
                 scorer: str = 'lps'):
        super().__init__()
        if scorer not in SCORERS:
            raise ValueError(f'LPS scorer must be one of {SCORERS}, got '
                             f'{scorer!r}.')
        self.conv1 = nn.Conv2d(channels, hidden_channels, 3, padding=1,
                               padding_mode='circular')
        self.conv2 = nn.Conv2d(hidden_channels,
                               hidden_channels if scorer == 'lps' else 1, 3,
                               padding=1, padding_mode='circular')

    def forward(self, x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
        """Logits (N, s*s) of the components of the padded map ``x``.

        A 3x3 conv with circular padding 1 on every component at once is
        the same conv dilated by s, circularly padded by s, on the full
        map: its output at ``(s*i + a, s*j + b)`` is the component conv of
        component ``(a, b)`` at ``(i, j)``. So the components are never
        copied out of the map, and backward keeps no padded copy either.
        """
        hidden = F.relu(self._conv(self.conv1, x, stride), inplace=True)
        scores = self._conv(self.conv2, hidden, stride)
        n = x.shape[0]
        # (N, K, h, s, w, s) -> mean over K, h, w per component (a, b).
        return polyphase_view(scores, stride).mean(dim=(1, 2, 4)).reshape(
            n, stride * stride)

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor, stride: int):
        return padded_conv2d(x, conv.weight, conv.bias, (stride, ) * 4,
                             'circular', dilation=stride)


@DOWNSAMPLERS.register_module()
class LPS(PolyphaseDownsample):
    """Choose the component by learned logits.

    Training: a Gumbel-softmax sample (soft) with temperature
    ``temperature``; eval: the argmax component (hard, exactly invariant to
    circular shifts like APS).

    Args:
        channels (int): Channels of the input map.
        hidden_channels (int): Width of the scoring net. In a backbone's
            ``downsample_cfg`` a sequence (one width per stage, e.g. LPS's
            ``(64, 128, 256, 512)``) is resolved per layer by the backbone.
            Defaults to 32.
        temperature (float): Gumbel-softmax temperature, settable at any time
            (e.g. by :class:`LPSTemperatureHook`). Defaults to 1.0.
        scorer (str): Logits net: 'lps' (conv3x3(C->hid)-ReLU-
            conv3x3(hid->hid)-mean, LPS's release) or 'compact'
            (conv3x3(C->hid)-ReLU-conv3x3(hid->1)-mean). Defaults to 'lps'.
        filter_size (int): Binomial low-pass (circular, stride 1) before the
            choice (LPS's "lpf" runs); the logits see the filtered map, as
            in LPS's release. 1 = none. Defaults to 1.
        odd_padding (str): See :class:`PolyphaseDownsample`; LPS's release
            pads 'zero-bottom-right'. Defaults to 'reflect-top-left'.
        stride (int): Choose among the s*s components (output ceil(H/s));
            in eval exactly invariant to circular shifts when H and W are
            multiples of s. Defaults to 2.
        detach_shared (bool): In training, hand the soft sample to the
            shortcut (:class:`PolyphaseFollower`) and to polyphase unpooling
            detached, so that only the main branch trains the scorer. False
            keeps its graph: the shortcut's and the unpooling's gradients
            reach the scorer too, as in LPS's release (which passes the
            sample itself to both). Defaults to False.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 hidden_channels: int = 32,
                 temperature: float = 1.0,
                 scorer: str = 'lps',
                 filter_size: int = 1,
                 odd_padding: str = 'reflect-top-left',
                 init_cfg: Optional[dict] = None, stride: int = 2,
                 detach_shared: bool = False):
        super().__init__(channels, init_cfg=init_cfg, odd_padding=odd_padding,
                         filter_size=filter_size, stride=stride)
        if not isinstance(detach_shared, bool):
            raise ValueError(f'LPS detach_shared must be True or False, got '
                             f'{detach_shared!r}.')
        self.detach_shared = detach_shared
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(
                f'LPS hidden_channels must be a positive int, got '
                f'{hidden_channels!r}; a per-stage sequence is resolved only '
                'inside a backbone downsample_cfg (ShiftInvariantResNet).')
        self.scorer_type = scorer
        self.scorer = ComponentScorer(channels, hidden_channels, scorer)
        self.temperature = temperature
        self.last_logits: Optional[torch.Tensor] = None

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float):
        if not value > 0:
            raise ValueError(f'LPS temperature must be > 0, got {value}.')
        self._temperature = float(value)

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.scorer(x, self.stride).float()
        self.last_logits = logits.detach()
        if self.training:
            return F.gumbel_softmax(
                logits, tau=self.temperature, hard=False).unsqueeze(1)
        return one_hot_weights(logits.argmax(dim=1), self.stride)

    def keeps_one_component(self) -> bool:
        return not self.training

    def shares_weight_graph(self) -> bool:
        return self.training and not self.detach_shared

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, temperature={self.temperature}, '
                f'scorer={self.scorer_type}, filter_size={self.filter_size}, '
                f'odd_padding={self.odd_padding}, stride={self.stride}'
                + (', detach_shared=True' if self.detach_shared else ''))
