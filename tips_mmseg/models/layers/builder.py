"""One factory for every downsampling layer (tips_mmseg.registry's
``DOWNSAMPLERS``)."""
from typing import Optional, Union

import torch.nn as nn

from ...registry import DOWNSAMPLERS
from .base import PolyphaseDownsample
from .polyphase import check_stride

#: The downsamplers of tips_mmseg (``DOWNSAMPLERS`` also holds
#: ``PolyphaseFollower`` and whatever users register there).
DOWNSAMPLE_LAYERS = ('TIPS', 'BlurPool', 'APS', 'LPS')


def build_downsample(cfg: Optional[Union[dict, str]],
                     channels: int,
                     stride: Optional[int] = None) -> Optional[nn.Module]:
    """Build a downsampler for ``channels`` channels (stride 2 by default).

    Args:
        cfg (dict | str | None): ``dict(type='TIPS', ...)``, a bare name like
            ``'TIPS'``, or None (no layer: plain strided subsampling). The
            type is looked up in ``DOWNSAMPLERS`` only (not in mmseg's
            ``MODELS``): our layers, or yours registered there. The layer
            gets ``channels`` and ``stride``. Any polyphase layer (TIPS,
            APS, LPS) takes ``odd_padding`` here.
        channels (int): Channels of the maps it will downsample.
        stride (int, optional): Downsampling factor of the place it goes
            to, passed to the layer (a cfg that says another stride is an
            error). Defaults to None (the cfg's ``stride``, else 2).

    Returns:
        nn.Module | None: The layer.
    """
    if cfg is None:
        return None
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'downsample cfg must be a dict with a "type" key, '
                        f'a layer name or None, got {cfg!r}.')
    layer_type = cfg['type']
    layer_cls = _registered(layer_type)
    cfg = dict(cfg)
    if 'channels' in cfg and cfg['channels'] != channels:
        raise ValueError(f'{layer_type} cfg says channels={cfg["channels"]} '
                         f'but it is placed on a {channels}-channel map.')
    cfg['channels'] = channels
    if stride is not None:
        check_stride(stride)
        if 'stride' in cfg and cfg['stride'] != stride:
            raise ValueError(f'{layer_type} cfg says stride={cfg["stride"]} '
                             f'but it is placed where the stride is {stride}; '
                             'drop stride from the cfg.')
        cfg['stride'] = stride
    if 'odd_padding' in cfg and not issubclass(layer_cls, PolyphaseDownsample):
        raise ValueError(
            f'{layer_type} has no odd_padding (only the polyphase layers '
            "TIPS, APS, LPS do); BlurPool pads by its 'pad_mode'.")
    # _scope_: inside a Runner the default scope is 'mmseg', and mmengine
    # would build from mmseg's MODELS, which does not hold our names.
    cfg['_scope_'] = DOWNSAMPLERS.scope
    return DOWNSAMPLERS.build(cfg)


def _registered(layer_type) -> type:
    """The class ``layer_type`` names in ``DOWNSAMPLERS`` (a class is taken
    as it is)."""
    if isinstance(layer_type, type):
        return layer_type
    name = str(layer_type)
    prefix = DOWNSAMPLERS.scope + '.'
    if name.startswith(prefix):
        name = name[len(prefix):]
    DOWNSAMPLERS.import_from_location()
    if name not in DOWNSAMPLERS.module_dict:
        raise KeyError(
            f'Unknown downsampling layer {layer_type!r}; choose one of '
            f'{DOWNSAMPLE_LAYERS} (or None for plain strided subsampling), '
            'or register a layer of your own with '
            'tips_mmseg.registry.DOWNSAMPLERS.register_module() (registered '
            f'there now: {sorted(DOWNSAMPLERS.module_dict)}).')
    return DOWNSAMPLERS.module_dict[name]
