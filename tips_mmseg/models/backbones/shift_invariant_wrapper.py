"""Put a shift-invariant downsampler into any mmseg backbone."""
import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks.transformer import PatchEmbed as MMCVPatchEmbed
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.utils import PatchEmbed
from mmseg.registry import MODELS

from ..circular import use_circular_padding
from ..layers import build_downsample
from ..regularization import warn_if_unregularized
from .input_checks import check_finite_input

#: Where the downsampler of an overlapping patch embedding (a strided conv
#: followed by a token norm, as in MiT) goes: right after the conv, before
#: the norm ('conv'), or after the norm, on the normalised tokens ('norm').
PATCH_EMBED_PLACEMENTS = ('conv', 'norm')
#: What to do with a non-overlapping strided conv (kernel = stride, no
#: padding: ViT/Swin patch embeddings, MiT's key/value reduction).
NON_OVERLAPPING_MODES = ('keep', 'convert')
#: Patch embeddings whose forward returns ``(tokens, (H, W))`` with the
#: tokens normalised by ``norm`` after ``projection``.
_PATCH_EMBEDS = (PatchEmbed, MMCVPatchEmbed)

#: What ``_convert`` says of a module it leaves strided on purpose.
NON_OVERLAPPING = 'non-overlapping'


def _apply_down(module: nn.Module, args, output: torch.Tensor):
    # A module-level forward hook (not a closure) so deep copies of the
    # backbone use their own ``module.down``.
    return module.down(output)


def _apply_down_to_tokens(module: nn.Module, args, output):
    """Downsample the (normalised) token map a patch embedding returns."""
    tokens, (h, w) = output
    n, _, c = tokens.shape
    x = module.down(tokens.transpose(1, 2).reshape(n, c, h, w))
    return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


def _accept_original_keys(module: nn.Module, state_dict: dict, prefix: str,
                          *args):
    """Load-state-dict pre-hook: a state dict of the original backbone
    (``<prefix>conv1.weight``, as in the original segmentor's checkpoints)
    loads into the wrapper (``<prefix>backbone.conv1.weight``)."""
    ours = set(module.state_dict())
    theirs = [k for k in state_dict if k.startswith(prefix)]
    as_is = sum(k[len(prefix):] in ours for k in theirs)
    moved = sum('backbone.' + k[len(prefix):] in ours for k in theirs)
    if moved > as_is:
        for key in theirs:
            state_dict[prefix + 'backbone.' + key[len(prefix):]] = \
                state_dict.pop(key)


def _strided(module: nn.Module):
    """``(stride, kernel, padding, dilation, channels)`` of a strided
    conv / max-pool (channels None for a pool), else None."""
    pair = nn.modules.utils._pair
    if isinstance(module, nn.Conv2d):
        spec = (tuple(module.stride), tuple(module.kernel_size),
                module.padding, tuple(module.dilation), module.out_channels)
    elif isinstance(module, nn.MaxPool2d):
        spec = (pair(module.stride or module.kernel_size),
                pair(module.kernel_size), pair(module.padding),
                pair(module.dilation), None)
    else:
        return None
    return None if spec[0] == (1, 1) else spec


def _convert(name: str, module: nn.Module, non_overlapping: str = 'keep'):
    """Make a stride-s conv/max-pool run at stride 1 (s = 2, 3, 4, ...).

    At stride 1 a conv with kernel k, padding p and dilation d gives
    ``L = H + 2p - d(k - 1)`` rows; a stride-s downsampler of them gives
    ``ceil(L / s)``, the strided conv's own output size, and its phase 0 is
    the strided conv's output. So every padding works, including none.

    Returns:
        False (not a strided conv/pool), ``NON_OVERLAPPING`` (kernel =
        stride, no padding, left as it is with ``non_overlapping='keep'``),
        else ``(channels, stride)`` with channels None for a pool.
    """
    spec = _strided(module)
    if spec is None:
        return False
    stride, kernel, padding, _, channels = spec
    if stride[0] != stride[1]:
        raise ValueError(f'ShiftInvariantWrapper converts square strides '
                         f'only; {name} has stride {stride}.')
    if isinstance(padding, str):
        raise ValueError(f"ShiftInvariantWrapper cannot convert {name} "
                         f"({module}): padding '{padding}' is not numeric.")
    if (non_overlapping == 'keep' and isinstance(module, nn.Conv2d)
            and kernel == stride and tuple(padding) == (0, 0)):
        # Converting it costs stride**2 times the conv's multiply-adds at
        # the input resolution (a ViT-B's 16x16 patch embedding: 256x).
        return NON_OVERLAPPING
    module.stride = 1 if isinstance(module, nn.MaxPool2d) else (1, 1)
    return channels, stride[0]


#: Strided modules left as they are: what they are, and why.
_KINDS = {
    NON_OVERLAPPING:
    ('non-overlapping strided convs',
     "kernel = stride, no padding: at stride 1 they would cost stride**2 "
     "times as much; non_overlapping='convert' converts them"),
    'avgpool':
    ('strided average pools',
     'a box low-pass filter, not a strided conv or max-pool'),
    'unfold':
    ('strided nn.Unfold patch mergings',
     's x s patches stacked into channels, as in Swin'),
    'unused':
    ('strided max-pools', 'the forward does not run them'),
}
#: Why a strided module was left as it is (``skip_reasons``).
_REASONS = {kind: f'{label} ({why}); not converted'
            for kind, (label, why) in _KINDS.items()}


@MODELS.register_module()
class ShiftInvariantWrapper(BaseModule):
    """Convert a built mmseg backbone to shift-invariant downsampling.

    Every strided ``nn.Conv2d`` (stride s = 2, 3, 4, ..., square, any
    padding) becomes stride 1 followed by a stride-s downsampler (applied
    to the conv's output, before its norm); every strided ``nn.MaxPool2d``
    becomes stride 1 followed by the downsampler (as in antialiased-cnns'
    MaxBlurPool). Output shapes equal the original's. The downsampler of a
    conv/pool ``m`` is ``m.down``, so all original parameter names stay
    (behind the ``backbone.`` prefix): ImageNet weights load into the
    wrapped backbone as before, and a state dict of the original backbone
    (or a checkpoint of the original segmentor) loads into the wrapper,
    whose keys it maps (only the downsamplers' parameters are then
    missing).

    Overlapping patch embeddings (mmseg's / mmcv's ``PatchEmbed`` with a
    norm, e.g. MiT's 7x7 stride 4 and 3x3 stride 2) normalise each token
    after the conv. With ``patch_embed_placement='norm'`` the downsampler
    sits after that norm, as ``embed.down``: a token norm commutes with
    picking a polyphase component, so without mixing nothing changes, and
    TIPS's psi and L_undo then see normalised maps, whose scale the
    network cannot inflate (before the norm it can, at no cost to the
    task: L_undo grows with it). ``'conv'`` puts it right after the conv
    (before the norm, ``embed.projection.down``), as for a CNN.

    Non-overlapping strided convs (kernel = stride, no padding: ViT/Swin
    patch embeddings, MiT's attention spatial reduction of keys and values)
    are left as they are by default (``non_overlapping='keep'``; at stride
    1 they cost stride**2 times as much); ``'convert'`` converts them too.
    Strided average pools are left. What is left is listed in ``skipped``,
    with the reason in ``skip_reasons``, and in a warning.

    Each layer chooses on its own: with APS/LPS a ResNet shortcut does not
    follow its main branch, so exact invariance needs
    :class:`ShiftInvariantResNet` / :class:`ShiftInvariantResNetV1c`.

    Args:
        backbone (dict): Config of the mmseg backbone to convert.
        downsample_cfg (dict | str | None): The downsampler (see
            :func:`build_downsample`); None leaves the backbone as it is.
            Defaults to ``dict(type='TIPS')``.
        circular_padding (bool): Circular padding in every padded conv.
            Defaults to False.
        patch_embed_placement (str): 'conv' or 'norm', see above. Defaults
            to 'norm'.
        non_overlapping (str): 'keep' or 'convert', see above. Defaults to
            'keep'.
        init_cfg (dict, optional): Defaults to None (the wrapped backbone
            initializes itself).
    """

    def __init__(self,
                 backbone: dict,
                 downsample_cfg: Optional[Union[dict, str]] = dict(
                     type='TIPS'),
                 circular_padding: bool = False,
                 patch_embed_placement: str = 'norm',
                 non_overlapping: str = 'keep',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if patch_embed_placement not in PATCH_EMBED_PLACEMENTS:
            raise ValueError(
                f'ShiftInvariantWrapper(patch_embed_placement='
                f'{patch_embed_placement!r}): use one of '
                f'{PATCH_EMBED_PLACEMENTS}.')
        if non_overlapping not in NON_OVERLAPPING_MODES:
            raise ValueError(
                f'ShiftInvariantWrapper(non_overlapping={non_overlapping!r})'
                f': use one of {NON_OVERLAPPING_MODES}.')
        self.patch_embed_placement = patch_embed_placement
        self.non_overlapping = non_overlapping
        self.backbone = MODELS.build(backbone)
        self._register_load_state_dict_pre_hook(
            _accept_original_keys, with_module=True)
        #: Names of the converted convs/pools (relative to ``backbone``).
        self.converted: List[str] = []
        #: Names of the strided modules left as they are.
        self.skipped: List[str] = []
        #: Why each of ``skipped`` was left.
        self.skip_reasons: Dict[str, str] = {}
        if downsample_cfg is not None:
            self._convert_all(downsample_cfg)
        if circular_padding:
            use_circular_padding(self.backbone)

    def _token_embeds(self) -> Dict[str, nn.Module]:
        """Patch embeddings (by their conv's name) that get the
        downsampler after their norm."""
        if self.patch_embed_placement != 'norm':
            return {}
        return {
            f'{name}.projection' if name else 'projection': m
            for name, m in self.backbone.named_modules()
            if isinstance(m, _PATCH_EMBEDS) and m.norm is not None
        }

    def _skip(self, name: str, reason: str):
        self.skipped.append(name)
        self.skip_reasons[name] = _REASONS[reason]

    def _convert_all(self, downsample_cfg):
        # A pool's channels are known from a forward only, made while the
        # backbone is still the original (half-converted, its branches
        # would not meet at the same size).
        pool_channels = self._pool_input_channels()
        embeds = self._token_embeds()
        for name, module in list(self.backbone.named_modules()):
            if (isinstance(module, nn.AvgPool2d) and nn.modules.utils._pair(
                    module.stride or module.kernel_size) != (1, 1)):
                self._skip(name, 'avgpool')
                continue
            if isinstance(module, nn.Unfold) and nn.modules.utils._pair(
                    module.stride) != (1, 1):
                self._skip(name, 'unfold')
                continue
            if isinstance(module, nn.MaxPool2d) and _strided(module) and \
                    module not in pool_channels:
                self._skip(name, 'unused')
                continue
            result = _convert(name, module, self.non_overlapping)
            if result is False:
                continue
            if result == NON_OVERLAPPING:
                self._skip(name, NON_OVERLAPPING)
                continue
            channels, stride = result
            owner, hook = module, _apply_down
            if channels is None:  # a pool
                channels = pool_channels[module]
            elif name in embeds and embeds[name].projection is module:
                # After the token norm of the patch embedding.
                owner, hook = embeds[name], _apply_down_to_tokens
            owner.add_module('down', build_downsample(
                downsample_cfg, channels, stride=stride))
            owner.register_forward_hook(hook)
            self.converted.append(name)
        for kind, (label, why) in _KINDS.items():
            names = [n for n in self.skipped
                     if self.skip_reasons[n] == _REASONS[kind]]
            if names:
                print_log(f'ShiftInvariantWrapper left these {label} as '
                          f'they are ({why}): {names}', logger='current',
                          level=logging.WARNING)

    def _pool_input_channels(self) -> Dict[nn.Module, int]:
        """Channels reaching each strided max-pool, from a tiny forward of
        the (still original) backbone."""
        pools = [m for m in self.backbone.modules()
                 if isinstance(m, nn.MaxPool2d) and _strided(m)]
        if not pools:
            return {}
        seen = {}

        def record(module, args):
            seen.setdefault(module, args[0].shape[1])

        handles = [pool.register_forward_pre_hook(record) for pool in pools]
        first_conv = next(m for m in self.backbone.modules()
                          if isinstance(m, nn.Conv2d))
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                self.backbone(torch.zeros(1, first_conv.in_channels, 64, 64))
        finally:
            for handle in handles:
                handle.remove()
            self.backbone.train(was_training)
        return seen

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
