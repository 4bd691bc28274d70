"""ResNets whose every stride-2 step is a shift-invariant downsampler.

Placement (docs/method.md): each stride-2 operator runs at stride 1 and
is followed by the downsampler -

* deep stem (ResNetV1c): conv1 (s1)-BN-ReLU-[down]-conv-BN-ReLU-conv-BN-ReLU;
  plain stem: conv1 (s1)-BN-ReLU-[down];
* stem max-pool -> [down]; ``keep_stem_max=True``: max-pool at stride 1,
  then [down] (antialiased-cnns' MaxBlurPool, APS's and LPS's MaxPool+APS);
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
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmseg.registry import MODELS

from ..layers import APS, LPS, PolyphaseFollower, build_downsample
from ..circular import use_circular_padding
from ..regularization import warn_if_unregularized
from .input_checks import check_finite_input

DownsampleCfg = Optional[Union[dict, str]]

#: Keys of a downsample_cfg that may hold one value per stage.
PER_STAGE_KEYS = ('hidden_channels', )


def stage_downsample_cfg(cfg: DownsampleCfg, stage: int,
                         num_stages: int) -> DownsampleCfg:
    """The downsampler config of one stage.

    A sequence under a key of :data:`PER_STAGE_KEYS` (LPS's
    ``hidden_channels=(64, 128, 256, 512)``) holds one value per stage:
    entry ``i`` goes to the downsamplers of ``layer{i+1}``, entry 0 also to
    the stem's (LPS's ResNets give the stem and its max-pool the first
    width, each later stage its own).

    Args:
        cfg (dict | str | None): The backbone's ``downsample_cfg``.
        stage (int): 0 for the stem and layer1, i for layer{i+1}.
        num_stages (int): The backbone's number of stages.

    Returns:
        dict | str | None: ``cfg`` with per-stage values resolved.
    """
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    for key in PER_STAGE_KEYS:
        value = cfg.get(key)
        if isinstance(value, (list, tuple)):
            if len(value) != num_stages:
                raise ValueError(
                    f'downsample_cfg {key}={tuple(value)} must have one '
                    f'entry per stage ({num_stages}), e.g. (64, 128, 256, '
                    '512) for a 4-stage ResNet.')
            cfg[key] = value[stage]
    return cfg


class StemMaxPool(nn.Module):
    """The stem max-pool at stride 1 (its max kept, the stride moved to the
    downsampler after it): an ``nn.MaxPool2d(k, stride=1)`` (``self.pool``)
    after the padding that keeps the size. No parameters; output size =
    input size.

    Args:
        kernel_size (int): 2 (APS's and antialiased-cnns' released ResNets:
            one row/column padded circularly at the bottom/right, as APS and
            LPS do) or 3 (the stem's own kernel, padding 1).
        circular (bool): For kernel 3, pad circularly instead of with -inf
            (so the pool commutes with circular shifts). Defaults to False.
    """

    def __init__(self, kernel_size: int = 2, circular: bool = False):
        super().__init__()
        if kernel_size not in (2, 3):
            raise ValueError(f'stem_max_kernel must be 2 or 3, got '
                             f'{kernel_size!r}.')
        self.kernel_size = kernel_size
        self.circular = circular or kernel_size == 2
        self.pad = (0, 1, 0, 1) if kernel_size == 2 else (1, 1, 1, 1)
        # -inf padding is the pool's own; circular padding comes before it.
        self.pool = nn.MaxPool2d(
            kernel_size, stride=1,
            padding=0 if self.circular else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.circular:
            x = F.pad(x, self.pad, mode='circular')
        return self.pool(x)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, circular={self.circular}'


def _shares_component(down: nn.Module) -> bool:
    """APS/LPS shortcuts must keep the component their main branch chose
    (a per-channel APS, as the TIPS release's, cannot be followed: its
    shortcut chooses on its own, as there)."""
    return isinstance(down, (APS, LPS)) and not getattr(
        down, 'per_channel', False)


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
            self.down.make_follower(inplanes) if _shares_component(self.down)
            else build_downsample(downsample_cfg, inplanes))

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
            network is mmseg's ResNet. ``hidden_channels`` may be one width
            per stage, e.g. ``(64, 128, 256, 512)`` as LPS's ResNets (see
            :func:`stage_downsample_cfg`). Defaults to None.
        circular_padding (bool): Use ``padding_mode='circular'`` in every
            padded conv (with APS/LPS the pooled features of an eval model
            are then exactly invariant to circular input shifts). Defaults
            to False.
        keep_stem_max (bool): Keep the stem max-pool's max at stride 1
            before its downsampler (:class:`StemMaxPool`; MaxBlurPool with
            BlurPool, MaxPool+APS with APS). False: the downsampler replaces
            the max-pool. Output shapes are the same either way and no
            parameter is added. Defaults to False.
        stem_max_kernel (int): Kernel of that max-pool: 2 (APS's and
            antialiased-cnns' released ResNets; padded circularly at the
            bottom/right) or 3 (the stem max-pool's own kernel, padding 1;
            circular with ``circular_padding``). Defaults to 2.
        stem_down_cfg (dict, optional): Overrides merged into
            ``downsample_cfg`` for the stem's first downsampler only (the one
            replacing the stem conv's stride), e.g. ``dict(filter_size=1)``:
            LPS's ResNets run it without their low-pass. Defaults to None.
        **kwargs: Every other argument of mmseg's ``ResNet`` (strides,
            dilations, contract_dilation, norm_cfg, norm_eval, frozen_stages,
            style, plugins, pretrained, init_cfg, ...).
    """

    def __init__(self,
                 depth: int,
                 downsample_cfg: DownsampleCfg = None,
                 circular_padding: bool = False,
                 keep_stem_max: bool = False,
                 stem_max_kernel: int = 2,
                 stem_down_cfg: Optional[dict] = None,
                 **kwargs):
        if (keep_stem_max or stem_down_cfg) and downsample_cfg is None:
            raise ValueError(
                'keep_stem_max / stem_down_cfg shape the stem downsamplers; '
                'set a downsample_cfg (e.g. dict(type=\'BlurPool\')) or drop '
                'them (None = vanilla ResNet).')
        if stem_down_cfg is not None and not isinstance(stem_down_cfg, dict):
            raise TypeError(f'stem_down_cfg must be a dict of overrides, got '
                            f'{stem_down_cfg!r}.')
        # Read by _make_stem_layer and make_res_layer inside ResNet.__init__.
        for name, value in dict(
                downsample_cfg=copy.deepcopy(downsample_cfg),
                circular_padding=circular_padding,
                keep_stem_max=keep_stem_max, stem_max_kernel=stem_max_kernel,
                stem_down_cfg=copy.deepcopy(stem_down_cfg),
                _stages_made=0).items():
            object.__setattr__(self, name, value)
        super().__init__(depth, **kwargs)
        if circular_padding:
            use_circular_padding(self)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        super()._make_stem_layer(in_channels, stem_channels)
        self.stem_down = None
        if self.downsample_cfg is None:
            return
        first_conv = self.stem[0] if self.deep_stem else self.conv1
        first_conv.stride = (1, 1)
        cfg = self._stage_cfg(0)
        stem_cfg = cfg
        if self.stem_down_cfg:
            stem_cfg = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
            stem_cfg.update(self.stem_down_cfg)
        self.stem_down = build_downsample(stem_cfg, first_conv.out_channels)
        self.stem_max = (StemMaxPool(self.stem_max_kernel,
                                     self.circular_padding)
                         if self.keep_stem_max else None)
        self.maxpool = build_downsample(cfg, stem_channels)

    def _stage_cfg(self, stage: int) -> DownsampleCfg:
        return stage_downsample_cfg(self.downsample_cfg, stage,
                                    len(self.stage_blocks))

    def make_res_layer(self, **kwargs):
        block = kwargs['block']
        if block not in _BLOCKS:
            raise TypeError(f'ShiftInvariantResNet knows BasicBlock and '
                            f'Bottleneck, not {block.__name__}.')
        # ResNet.__init__ makes the stages in order, layer1 first.
        stage = self._stages_made
        object.__setattr__(self, '_stages_made', stage + 1)
        kwargs.update(block=_BLOCKS[block],
                      downsample_cfg=self._stage_cfg(stage))
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
        x = self._stem(x)
        if self.stem_max is not None:
            x = self.stem_max(x)
        x = self.maxpool(x)
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
