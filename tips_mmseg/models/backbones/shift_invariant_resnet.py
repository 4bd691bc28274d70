"""ResNets whose every stride-2 step is a shift-invariant downsampler.

Placement (METHOD.md section 4): each stride-2 operator runs at stride 1 and
is followed by the downsampler -

* deep stem (ResNetV1c): conv1 (s1)-BN-ReLU-[down]-conv-BN-ReLU-conv-BN-ReLU;
  plain stem: conv1 (s1)-BN-ReLU-[down];
* stem max-pool -> [down];
* BasicBlock: conv1 (s1)-BN-ReLU-[down]-conv2-BN;
  Bottleneck: conv2 (s1)-BN-ReLU-[down]-conv3-BN (``style='caffe'``: conv1);
* shortcut: [down]-conv1x1 (s1)-BN; TIPS/BlurPool give it its own layer,
  APS/LPS keep the main branch's component (:class:`PolyphaseFollower`).

Dilated stages have no stride and stay as they are. Every original module keeps
its name, so mmseg's ImageNet ResNet weights load; only the new layers
(``stem_down``, ``maxpool``, ``*.down``, ``*.shortcut_down``) are missing.
"""
import copy
from collections import OrderedDict
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmseg.registry import MODELS

from ..layers import (APS, LPS, PolyphaseFollower,
                      build_downsample)
from ..circular import use_circular_padding
from ..regularization import warn_if_unregularized
from .input_checks import check_finite_input

DownsampleCfg = Optional[Union[dict, str]]


def _shares_component(down: nn.Module) -> bool:
    """APS/LPS shortcuts must keep the component their main branch chose."""
    return isinstance(down, (APS, LPS))


class _DownsampleBlockMixin:
    """Moves a block's stride into a downsampler (main branch and shortcut).

    Sets ``self.down`` (main branch) and ``self.shortcut_down`` (None when
    the block has no strided shortcut or no downsampler is configured).
    """

    def _install_downsamplers(self, strided_conv: nn.Conv2d, channels: int,
                              inplanes: int, downsample_cfg: DownsampleCfg):
        self.down = None
        self.shortcut_down = None
        if downsample_cfg is None or self.stride == 1:
            return
        if self.stride != 2:
            raise ValueError(
                f'Shift-invariant blocks support stride 2 only, got stride '
                f'{self.stride}; use strides of 1 or 2 in the backbone.')
        strided_conv.stride = (1, 1)
        self.down = build_downsample(downsample_cfg, channels)
        if self.downsample is None:
            return
        for i, m in enumerate(self.downsample):
            if isinstance(m, nn.AvgPool2d):  # avg_down: the pool is the step
                self.downsample[i] = nn.Identity()
            elif isinstance(m, nn.Conv2d):
                m.stride = (1, 1)
        self.shortcut_down = (
            PolyphaseFollower(inplanes) if _shares_component(self.down) else
            build_downsample(downsample_cfg, inplanes))

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is None:
            return x
        if isinstance(self.shortcut_down, PolyphaseFollower):
            x = self.shortcut_down(x, weights=self.down.last_weights)
        elif self.shortcut_down is not None:
            x = self.shortcut_down(x)
        return self.downsample(x)

    def _run(self, inner_forward, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(inner_forward, x, use_reentrant=False)
        else:
            out = inner_forward(x)
        return self.relu(out)


class ShiftInvariantBasicBlock(_DownsampleBlockMixin, BasicBlock):
    """:class:`BasicBlock` with conv1 at stride 1 followed by a downsampler.

    Args:
        downsample_cfg (dict | str | None): Downsampler config (see
            :func:`build_downsample`); None = the original strided block.
            Defaults to None.
        **kwargs: Arguments of mmseg's ``BasicBlock``.
    """

    def __init__(self, *args, downsample_cfg: DownsampleCfg = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._install_downsamplers(self.conv1, self.conv1.out_channels,
                                   self.conv1.in_channels, downsample_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner_forward(x):
            out = self.relu(self.norm1(self.conv1(x)))
            if self.down is not None:
                out = self.down(out)
            out = self.norm2(self.conv2(out))
            return out + self._shortcut(x)

        return self._run(_inner_forward, x)


class ShiftInvariantBottleneck(_DownsampleBlockMixin, Bottleneck):
    """:class:`Bottleneck` whose strided conv runs at stride 1, then a
    downsampler (after conv2-BN-ReLU; after conv1-BN-ReLU for caffe style).

    Args:
        downsample_cfg (dict | str | None): Downsampler config; None = the
            original strided block. Defaults to None.
        **kwargs: Arguments of mmseg's ``Bottleneck``.
    """

    def __init__(self, *args, downsample_cfg: DownsampleCfg = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.down_after_conv1 = self.conv1_stride != 1
        strided = self.conv1 if self.down_after_conv1 else self.conv2
        self._install_downsamplers(strided, strided.out_channels,
                                   self.conv1.in_channels, downsample_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner_forward(x):
            out = self.relu(self.norm1(self.conv1(x)))
            if self.down is not None and self.down_after_conv1:
                out = self.down(out)
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.relu(self.norm2(self.conv2(out)))
            if self.down is not None and not self.down_after_conv1:
                out = self.down(out)
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.norm3(self.conv3(out))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv3_plugin_names)
            return out + self._shortcut(x)

        return self._run(_inner_forward, x)


_BLOCKS = {BasicBlock: ShiftInvariantBasicBlock,
           Bottleneck: ShiftInvariantBottleneck}


@MODELS.register_module()
class ShiftInvariantResNet(ResNet):
    """mmseg's :class:`ResNet` with shift-invariant downsampling.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        downsample_cfg (dict | str | None): The downsampler replacing every
            stride-2 step, e.g. ``dict(type='TIPS')``, ``'APS'``,
            ``dict(type='LPS', hidden_channels=32)``,
            ``dict(type='BlurPool', filter_size=3)``. None = vanilla: the
            network is mmseg's ResNet. Defaults to None.
        circular_padding (bool): Use ``padding_mode='circular'`` in every
            padded conv (with APS/LPS the pooled features of an eval model
            are then exactly invariant to circular input shifts). Defaults
            to False.
        **kwargs: Every other argument of mmseg's ``ResNet`` (strides,
            dilations, contract_dilation, norm_cfg, norm_eval, frozen_stages,
            style, plugins, pretrained, init_cfg, ...).
    """

    def __init__(self,
                 depth: int,
                 downsample_cfg: DownsampleCfg = None,
                 circular_padding: bool = False,
                 **kwargs):
        # Read by _make_stem_layer and make_res_layer inside ResNet.__init__.
        object.__setattr__(self, 'downsample_cfg', copy.deepcopy(
            downsample_cfg))
        super().__init__(depth, **kwargs)
        self.circular_padding = circular_padding
        if circular_padding:
            use_circular_padding(self)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        super()._make_stem_layer(in_channels, stem_channels)
        self.stem_down = None
        if self.downsample_cfg is None:
            return
        first_conv = self.stem[0] if self.deep_stem else self.conv1
        first_conv.stride = (1, 1)
        self.stem_down = build_downsample(self.downsample_cfg,
                                          first_conv.out_channels)
        self.maxpool = build_downsample(self.downsample_cfg, stem_channels)

    def make_res_layer(self, **kwargs):
        block = kwargs['block']
        if block not in _BLOCKS:
            raise TypeError(f'ShiftInvariantResNet knows BasicBlock and '
                            f'Bottleneck, not {block.__name__}.')
        kwargs.update(block=_BLOCKS[block],
                      downsample_cfg=self.downsample_cfg)
        return super().make_res_layer(**kwargs)

    def _freeze_stages(self):
        super()._freeze_stages()
        if self.frozen_stages >= 0 and self.stem_down is not None:
            # The stem's downsamplers belong to the frozen stem.
            for m in (self.stem_down, self.maxpool):
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True):
        # mmseg's ResNet.train returns None; nn.Module's contract is self.
        super().train(mode)
        return self

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.deep_stem:
            x = self.stem[:3](x)  # conv1-BN-ReLU
            x = self.stem_down(x)
            return self.stem[3:](x)
        x = self.relu(self.norm1(self.conv1(x)))
        return self.stem_down(x)

    def forward(self, x: torch.Tensor):
        check_finite_input(self, x)
        if self.training:
            warn_if_unregularized(self)
        if self.stem_down is None:
            return super().forward(x)
        x = self.maxpool(self._stem(x))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def main_downsamplers(self) -> Dict[str, nn.Module]:
        """The downsamplers on the main path, input side first.

        Their order is the order of the resolutions they produce (stride 2,
        4, 8, ...); a decoder undoes them in reverse (polyphase unpooling).
        """
        layers = OrderedDict()
        if self.stem_down is not None:
            layers['stem_down'] = self.stem_down
            layers['maxpool'] = self.maxpool
        for name in self.res_layers:
            for i, block in enumerate(getattr(self, name)):
                if block.down is not None:
                    layers[f'{name}.{i}.down'] = block.down
        return layers


@MODELS.register_module()
class ShiftInvariantResNetV1c(ShiftInvariantResNet):
    """mmseg's :class:`ResNetV1c` (deep stem) with shift-invariant
    downsampling; takes every argument of :class:`ShiftInvariantResNet`."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MODELS.register_module()
class TIPSResNetV1c(ShiftInvariantResNetV1c):
    """:class:`ShiftInvariantResNetV1c` with TIPS by default: a drop-in for
    ``ResNetV1c`` (change only ``backbone.type``).

    Args:
        downsample_cfg (dict | str | None): Defaults to ``dict(type='TIPS')``.
        **kwargs: Every other argument of :class:`ShiftInvariantResNet`.
    """

    def __init__(self, downsample_cfg: DownsampleCfg = dict(type='TIPS'),
                 **kwargs):
        super().__init__(downsample_cfg=downsample_cfg, **kwargs)
