"""Put a shift-invariant downsampler into any mmseg CNN backbone."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ..layers import build_downsample
from ..regularization import warn_if_unregularized
from ..circular import use_circular_padding
from .input_checks import check_finite_input


def _apply_down(module: nn.Module, args, output: torch.Tensor):
    # A module-level forward hook (not a closure) so deep copies of the
    # backbone use their own ``module.down``.
    return module.down(output)


def _convert(name: str, module: nn.Module, downsample_cfg) -> bool:
    """Make a stride-2 conv/max-pool run at stride 1 and add ``.down``.

    Returns whether ``module`` was converted.
    """
    if isinstance(module, nn.Conv2d):
        stride, kernel = module.stride, module.kernel_size
        padding, dilation = module.padding, module.dilation
        channels = module.out_channels
    elif isinstance(module, nn.MaxPool2d):
        pair = nn.modules.utils._pair
        stride = pair(module.stride or module.kernel_size)
        kernel, padding = pair(module.kernel_size), pair(module.padding)
        dilation, channels = pair(module.dilation), None
    else:
        return False
    if tuple(stride) == (1, 1):
        return False
    if tuple(stride) != (2, 2):
        raise ValueError(f'ShiftInvariantWrapper converts stride 2 only; '
                         f'{name} has stride {tuple(stride)}.')
    if isinstance(padding, str) or any(
            2 * p != d * (k - 1)
            for p, d, k in zip(padding, dilation, kernel)):
        raise ValueError(
            f'ShiftInvariantWrapper cannot convert {name} ({module}): at '
            'stride 1 it would not keep the map size (it needs padding = '
            'dilation * (kernel_size - 1) / 2), so the downsampled output '
            'would not match the original one.')
    module.stride = 1 if isinstance(module, nn.MaxPool2d) else (1, 1)
    return channels



@MODELS.register_module()
class ShiftInvariantWrapper(BaseModule):
    """Convert a built mmseg CNN backbone to shift-invariant downsampling.

    Every stride-2 ``nn.Conv2d`` becomes stride 1 followed by the downsampler
    (applied to the conv's output, before its norm); every stride-2
    ``nn.MaxPool2d`` becomes stride 1 followed by the downsampler (as in
    antialiased-cnns' MaxBlurPool). Output shapes equal the original's. The
    downsampler of a conv/pool ``m`` is ``m.down``, so all original
    parameter names stay (behind the ``backbone.`` prefix).

    Works with ResNet, ResNetV1c/V1d, MobileNetV2 and similar CNNs. Each
    layer chooses on its own: with APS/LPS a ResNet shortcut does not follow
    its main branch, so exact invariance needs
    :class:`ShiftInvariantResNet` / :class:`ShiftInvariantResNetV1c`.

    Args:
        backbone (dict): Config of the mmseg backbone to convert.
        downsample_cfg (dict | str | None): The downsampler (see
            :func:`build_downsample`); None leaves the backbone as it is.
            Defaults to ``dict(type='TIPS')``.
        circular_padding (bool): Circular padding in every padded conv.
            Defaults to False.
        init_cfg (dict, optional): Defaults to None (the wrapped backbone
            initializes itself).
    """

    def __init__(self,
                 backbone: dict,
                 downsample_cfg: Optional[Union[dict, str]] = dict(
                     type='TIPS'),
                 circular_padding: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.converted: List[str] = []
        if downsample_cfg is not None:
            self._convert_all(downsample_cfg)
        if circular_padding:
            use_circular_padding(self.backbone)

    def _convert_all(self, downsample_cfg):
        pools = []
        for name, module in list(self.backbone.named_modules()):
            channels = _convert(name, module, downsample_cfg)
            if channels is False:
                continue
            if channels is None:  # a pool: channels known after a forward
                pools.append((name, module))
            else:
                module.add_module('down',
                                  build_downsample(downsample_cfg, channels))
                module.register_forward_hook(_apply_down)
            self.converted.append(name)
        for name, module in pools:
            module.add_module('down', build_downsample(
                downsample_cfg, self._pool_input_channels(module)))
            module.register_forward_hook(_apply_down)

    def _pool_input_channels(self, pool: nn.Module) -> int:
        """Channels reaching ``pool``, from a tiny forward of the backbone."""
        seen = []
        handle = pool.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].shape[1]))
        first_conv = next(m for m in self.backbone.modules()
                          if isinstance(m, nn.Conv2d))
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                self.backbone(torch.zeros(1, first_conv.in_channels, 64, 64))
        finally:
            handle.remove()
            self.backbone.train(was_training)
        return seen[0]

    def init_weights(self):
        self.backbone.init_weights()

    def train(self, mode: bool = True):
        # The wrapped backbone's own train() (norm_eval, frozen stages).
        super().train(mode)
        self.backbone.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_finite_input(self, x)
        if self.training:
            warn_if_unregularized(self)
        return self.backbone(x)
