"""Put a shift-invariant downsampler into any mmseg CNN backbone."""
from typing import List, Optional, Tuple, Union

import logging

import torch
import torch.nn as nn
from mmengine.logging import print_log
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


#: What ``_convert`` says of a module it leaves strided on purpose.
NON_OVERLAPPING = 'non-overlapping'


def _convert(name: str, module: nn.Module):
    """Make a stride-s conv/max-pool run at stride 1 (s = 2, 3, 4, ...).

    Returns:
        False (not strided, or not a conv/pool), ``NON_OVERLAPPING`` (a
        kernel = stride, no padding conv, left as it is), else
        ``(channels, stride)`` with channels None for a pool.
    """
    pair = nn.modules.utils._pair
    if isinstance(module, nn.Conv2d):
        stride, kernel = module.stride, module.kernel_size
        padding, dilation = module.padding, module.dilation
        channels = module.out_channels
    elif isinstance(module, nn.MaxPool2d):
        stride = pair(module.stride or module.kernel_size)
        kernel, padding = pair(module.kernel_size), pair(module.padding)
        dilation, channels = pair(module.dilation), None
    else:
        return False
    stride = tuple(stride)
    if stride == (1, 1):
        return False
    if stride[0] != stride[1]:
        raise ValueError(f'ShiftInvariantWrapper converts square strides '
                         f'only; {name} has stride {stride}.')
    if (isinstance(module, nn.Conv2d) and tuple(kernel) == stride
            and tuple(padding) == (0, 0)):
        # At stride 1 such a conv would not keep the map size, so it cannot
        # be split into "stride 1, then downsample".
        return NON_OVERLAPPING
    if isinstance(padding, str) or any(
            2 * p != d * (k - 1)
            for p, d, k in zip(padding, dilation, kernel)):
        raise ValueError(
            f'ShiftInvariantWrapper cannot convert {name} ({module}): at '
            'stride 1 it would not keep the map size (it needs padding = '
            'dilation * (kernel_size - 1) / 2), so the downsampled output '
            'would not match the original one.')
    module.stride = 1 if isinstance(module, nn.MaxPool2d) else (1, 1)
    return channels, stride[0]


@MODELS.register_module()
class ShiftInvariantWrapper(BaseModule):
    """Convert a built mmseg CNN backbone to shift-invariant downsampling.

    Every strided ``nn.Conv2d`` (stride s = 2, 3, 4, ..., square) becomes
    stride 1 followed by a stride-s downsampler (applied to the conv's
    output, before its norm); every strided ``nn.MaxPool2d`` becomes stride
    1 followed by the downsampler (as in antialiased-cnns' MaxBlurPool).
    This covers overlapping patch embeddings such as MiT's (SegFormer:
    7x7 stride 4, then 3x3 stride 2). Output shapes equal the original's.
    Non-overlapping strided convs (kernel = stride, no padding: ViT/Swin
    patch embeddings, MiT's attention spatial reduction of keys and values)
    cannot run at stride 1 with the same output size; they are left as they
    are, listed in ``skipped`` and in a warning. The
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
        self.skipped: List[str] = []
        if downsample_cfg is not None:
            self._convert_all(downsample_cfg)
        if circular_padding:
            use_circular_padding(self.backbone)

    def _convert_all(self, downsample_cfg):
        pools = []
        for name, module in list(self.backbone.named_modules()):
            result = _convert(name, module)
            if result is False:
                continue
            if result == NON_OVERLAPPING:
                self.skipped.append(name)
                continue
            channels, stride = result
            if channels is None:  # a pool: channels known after a forward
                pools.append((name, module, stride))
            else:
                module.add_module('down', build_downsample(
                    downsample_cfg, channels, stride=stride))
                module.register_forward_hook(_apply_down)
            self.converted.append(name)
        for name, module, stride in pools:
            module.add_module('down', build_downsample(
                downsample_cfg, self._pool_input_channels(module),
                stride=stride))
            module.register_forward_hook(_apply_down)
        if self.skipped:
            print_log(
                'ShiftInvariantWrapper left these non-overlapping strided '
                'convs (kernel = stride, no padding) as they are, since at '
                'stride 1 they would not keep the map size: '
                f'{self.skipped}', logger='current', level=logging.WARNING)

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
