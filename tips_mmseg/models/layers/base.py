"""Common machinery of the learnable or adaptive polyphase downsamplers."""
from typing import Optional

import torch
from mmengine.model import BaseModule

from .binomial import BINOMIAL_TAPS
from .polyphase import (STRIDE, check_odd_padding, check_stride,
                        mix_phases, pad_to_even, select_phase, tracing)


def check_input(layer: torch.nn.Module, x: torch.Tensor, channels: int):
    """Raise a clear error for inputs a downsampler cannot take."""
    name = type(layer).__name__
    if x.dim() != 4:
        raise ValueError(f'{name} expects an (N, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)}.')
    if tracing():
        return  # sizes are symbolic; a traced check would be baked in
    if x.shape[1] != channels:
        raise ValueError(
            f'{name}(channels={channels}) got an input with {x.shape[1]} '
            f'channels; build it with channels={x.shape[1]} (e.g. '
            f"build_downsample(dict(type='{name}'), {x.shape[1]})).")
    if x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f'{name} got an empty feature map of size '
                         f'{x.shape[-2]}x{x.shape[-1]}.')


class PolyphaseDownsample(BaseModule):
    """Base of layers that keep a (weighted) choice of the s*s components.

    Subclasses compute ``component_weights``; this class low-passes the map
    (``filter_size > 1``), pads odd maps (``odd_padding``), mixes (or
    selects) the components through a view of the map - no split copy - and
    remembers the weights of the last forward in ``last_weights``
    (N, C or 1, s*s), so that a shortcut branch can follow the same choice and
    analyses (MSB) can read it.

    Args:
        channels (int): Channels of the input map.
        odd_padding (str): How odd maps are padded to even, one of
            ``ODD_PADDING_MODES``: 'reflect-top-left' (ours),
            'circular-bottom-right' (APS's release), 'zero-bottom-right'
            (LPS's release). Also settable after building (layers whose
            ``__init__`` does not take it, e.g. TIPS, get it from
            :func:`build_downsample`). Defaults to 'reflect-top-left'.
        filter_size (int): Taps of a binomial low-pass (BlurPool's filter,
            circular padding, stride 1) applied before the choice, as APS's
            and LPS's releases offer; 1 = none. Defaults to 1.
        stride (int): Downsampling factor s: the layer chooses among the
            s*s polyphase components and outputs ceil(H/s) x ceil(W/s);
            odd_padding pads to a multiple of s. Defaults to 2.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def __init__(self, channels: int, init_cfg: Optional[dict] = None,
                 odd_padding: str = 'reflect-top-left',
                 filter_size: int = 1, stride: int = STRIDE):
        super().__init__(init_cfg=init_cfg)
        self.stride = check_stride(stride)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f'{type(self).__name__} needs a positive int '
                             f'`channels`, got {channels!r}.')
        self.channels = channels
        self.odd_padding = odd_padding
        self.filter_size = filter_size
        self.lowpass = None
        if filter_size not in BINOMIAL_TAPS:
            raise ValueError(
                f'{type(self).__name__} filter_size must be one of '
                f'{sorted(BINOMIAL_TAPS)} (1 = no low-pass), got '
                f'{filter_size!r}.')
        if filter_size != 1:
            # Imported here: blurpool imports check_input from this module.
            from .blurpool import BlurPool

            # Circular, so the filter commutes with circular shifts and the
            # choice after it stays exactly invariant.
            self.lowpass = BlurPool(channels, filter_size,
                                    pad_mode='circular', stride=1)
        self.last_weights: Optional[torch.Tensor] = None
        # (H, W) before padding of the last input: unpooling restores it.
        self.last_input_size: Optional[torch.Size] = None

    @property
    def odd_padding(self) -> str:
        return self._odd_padding

    @odd_padding.setter
    def odd_padding(self, mode: str):
        self._odd_padding = check_odd_padding(mode)

    def polyphase_input(self, x: torch.Tensor) -> torch.Tensor:
        """The even-sized map whose components the layer chooses from: ``x``
        low-passed (``filter_size > 1``), then padded (``odd_padding``)."""
        if self.lowpass is not None:
            x = self.lowpass(x)
        return pad_to_even(x, self.odd_padding, self.stride)

    def make_follower(self, channels: int) -> 'PolyphaseDownsample':
        """A parameter-free layer for a shortcut that keeps this layer's
        choice, with the same low-pass and odd padding (as APS's and LPS's
        releases filter their shortcuts too)."""
        from .follower import PolyphaseFollower
        return PolyphaseFollower(channels, odd_padding=self.odd_padding,
                                 filter_size=self.filter_size,
                                 stride=self.stride)

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Weights (N, C or 1, s*s) of the components of the padded map
        ``x`` (sides multiples of s = ``self.stride``).

        Component ``k`` is ``polyphase_view(x, s)[:, :, :, k // s, :, k % s]``.
        """
        raise NotImplementedError

    def forward(self,
                x: torch.Tensor,
                weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Downsample ``x`` by ``self.stride`` (s).

        Args:
            x (Tensor): (N, C, H, W) map, any H, W >= 1.
            weights (Tensor, optional): (N, 1 or C, s*s) component weights to
                use instead of computing them; a shortcut branch passes the
                ``last_weights`` of its main branch here so both keep the same
                component. Defaults to None.

        Returns:
            Tensor: (N, C, ceil(H/s), ceil(W/s)).
        """
        check_input(self, x, self.channels)
        self.last_input_size = x.shape[-2:]
        x = self.polyphase_input(x)
        if weights is None:
            weights = self.component_weights(x)
        self.last_weights = (weights if self.shares_weight_graph() else
                             weights.detach())
        if self.keeps_one_component():
            # Gathering one component is cheaper than a mix with 0/1 weights.
            return select_phase(x, weights[:, 0].argmax(-1), self.stride)
        return mix_phases(x, weights, self.stride)

    def keeps_one_component(self) -> bool:
        """Whether the weights are one-hot per sample in the current mode."""
        return False

    def shares_weight_graph(self) -> bool:
        """Whether ``last_weights`` keeps its autograd graph, so that the
        layers that reuse it (a shortcut's :class:`PolyphaseFollower`,
        polyphase unpooling) pass their gradient back to whatever computed
        the weights."""
        return False


def one_hot_weights(index: torch.Tensor,
                    stride: int = STRIDE) -> torch.Tensor:
    """(N,) component indices -> (N, 1, s*s) one-hot weights."""
    return torch.nn.functional.one_hot(index, stride * stride).unsqueeze(
        1).float()
