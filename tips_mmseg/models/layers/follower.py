"""A parameter-free polyphase layer that keeps a choice made elsewhere."""
import torch

from mmseg.registry import MODELS
from .base import PolyphaseDownsample


@MODELS.register_module()
class PolyphaseFollower(PolyphaseDownsample):
    """Keep the component(s) another polyphase layer chose.

    A residual shortcut must keep the same component as its main branch
    (APS, LPS), else the branches are misaligned and exact invariance is lost.
    This layer has no parameters and no choice of its own: its forward needs
    ``weights`` (the main branch's ``last_weights``).

    Args:
        channels (int): Channels of the input map.
        init_cfg (dict, optional): mmengine initialization config.
            Defaults to None.
    """

    def component_weights(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            'PolyphaseFollower keeps the choice of another layer: call it '
            'with weights=<main branch layer>.last_weights.')
