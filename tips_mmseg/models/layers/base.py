"""Common machinery of the learnable or adaptive polyphase downsamplers."""
from typing import Optional

import torch
from mmengine.model import BaseModule

from .polyphase import NUM_COMPONENTS, mix_phases, pad_to_even, select_phase


def check_input(layer: torch.nn.Module, x: torch.Tensor, channels: int):
    """Raise a clear error for inputs a downsampler cannot take."""
    name = type(layer).__name__
    if x.dim() != 4:
        raise ValueError(f'{name} expects an (N, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)}.')
    if x.shape[1] != channels:
        raise ValueError(
            f'{name}(channels={channels}) got an input with {x.shape[1]} '
            f'channels; build it with channels={x.shape[1]} (e.g. '
            f"build_downsample(dict(type='{name}'), {x.shape[1]})).")
    if x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f'{name} got an empty feature map of size '
                         f'{x.shape[-2]}x{x.shape[-1]}.')


class PolyphaseDownsample(BaseModule):
    """Base of layers that keep a (weighted) choice of the four components.

    Subclasses compute ``component_weights``; this class pads odd maps, mixes
    (or selects) the components through a view of the map - no split copy -
    and remembers the weights of the last forward in ``last_weights``
    (N, C or 1, 4), so that a shortcut branch can follow the same choice and
    analyses (MSB) can read it.

    Args:
        channels (int): Channels of the input map.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """


    def __init__(self, channels: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f'{type(self).__name__} needs a positive int '
                             f'`channels`, got {channels!r}.')
        self.channels = channels
        self.last_weights: Optional[torch.Tensor] = None
        # (H, W) before padding of the last input: unpooling restores it.
        self.last_input_size: Optional[torch.Size] = None

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Weights (N, C or 1, 4) of the components of the even map ``x``.

        Component ``k`` is ``polyphase_view(x)[:, :, :, k // 2, :, k % 2]``.
        """
        raise NotImplementedError

    def forward(self,
                x: torch.Tensor,
                weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Downsample ``x`` by 2.

        Args:
            x (Tensor): (N, C, H, W) map, any H, W >= 1.
            weights (Tensor, optional): (N, 1 or C, 4) component weights to
                use instead of computing them; a shortcut branch passes the
                ``last_weights`` of its main branch here so both keep the same
                component. Defaults to None.

        Returns:
            Tensor: (N, C, ceil(H/2), ceil(W/2)).
        """
        check_input(self, x, self.channels)
        self.last_input_size = x.shape[-2:]
        x = pad_to_even(x)
        if weights is None:
            weights = self.component_weights(x)
        self.last_weights = weights.detach()
        if self.keeps_one_component():
            # Gathering one component is cheaper than a mix with 0/1 weights.
            return select_phase(x, weights[:, 0].argmax(-1))
        return mix_phases(x, weights)

    def keeps_one_component(self) -> bool:
        """Whether the weights are one-hot per sample in the current mode."""
        return False


def one_hot_weights(index: torch.Tensor) -> torch.Tensor:
    """(N,) component indices -> (N, 1, 4) one-hot weights."""
    return torch.nn.functional.one_hot(index, NUM_COMPONENTS).unsqueeze(1).float()
