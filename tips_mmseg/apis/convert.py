"""Turn a stock mmseg config into a shift-invariant one (a short child).

The written config inherits the original (``_base_``) and changes only the
model: its backbone goes into :class:`ShiftInvariantWrapper` by reference
to the base's own backbone (``_base_.model.backbone``, which mmengine's
Python configs can read), the segmentor becomes its TIPS variant when the
downsampler is TIPS, and shift-consistency evaluation and the hooks the
downsampler needs are added. Every original parameter name is kept, so
ImageNet weights (``pretrained`` / ``init_cfg``) and the original
segmentor's checkpoints load (:func:`load_vanilla_state_dict`).
"""
import ast
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config

from ..models.layers.builder import DOWNSAMPLE_LAYERS
from ..models.segmentors import DEFAULT_TIPS_CFG

#: Segmentors the conversion knows, and their TIPS variants (which add the
#: TIPS regularizers to the loss).
TIPS_SEGMENTORS = {
    'EncoderDecoder': 'TIPSEncoderDecoder',
    'CascadeEncoderDecoder': 'TIPSCascadeEncoderDecoder',
}
#: Backbones that are already shift invariant.
CONVERTED_BACKBONES = ('ShiftInvariantWrapper', 'ShiftInvariantResNet',
                       'ShiftInvariantResNetV1c')


class ConversionError(ValueError):
    """A config this tool cannot convert; the message says why."""


def shift_consistency_entries() -> List[dict]:
    """What the converted config adds for shift-consistency evaluation.

    Returns:
        list[dict]: ``custom_hooks`` entries.
    """
    return [dict(type='ShiftConsistencyHook')]


def downsampler_hooks(downsample: str) -> List[dict]:
    """The training hooks a downsampler needs (``custom_hooks`` entries)."""
    if downsample == 'TIPS':
        return [dict(type='TIPSProgressHook')]  # L_undo's switch-on time
    if downsample == 'LPS':
        return [dict(type='LPSTemperatureHook')]  # the Gumbel temperature
    return []


def _refuse(source: str, why: str):
    raise ConversionError(f'Cannot convert {source}: {why}')


def load_config(source: str) -> Config:
    """Load a config from a path or ``package::folder/name.py``."""
    if '::' in source:
        # mmengine's own resolution of the ``mmseg::`` prefix in _base_.
        path, _ = Config._get_cfg_path(source, '')
        return Config.fromfile(path)
    return Config.fromfile(source)


def check_convertible(cfg: Config, source: str, downsample: str) -> str:
    """Refuse (:class:`ConversionError`) what cannot be converted.

    Args:
        cfg (Config): The original config, loaded.
        source (str): Its name, for messages.
        downsample (str): One of :data:`DOWNSAMPLE_LAYERS`.

    Returns:
        str: The segmentor type the converted config uses.
    """
    if downsample not in DOWNSAMPLE_LAYERS:
        raise ConversionError(
            f'Unknown downsampler {downsample!r}; choose one of '
            f'{DOWNSAMPLE_LAYERS}.')
    model = cfg.get('model')
    if not isinstance(model, dict):
        _refuse(source, 'it defines no model (a dataset or runtime '
                'config?); convert a config that has model = dict(...).')
    backbone = model.get('backbone')
    if not isinstance(backbone, dict) or 'type' not in backbone:
        _refuse(source, f"its model ({model.get('type')}) has no backbone "
                'to put shift-invariant downsampling into.')
    if backbone['type'] in CONVERTED_BACKBONES:
        _refuse(source, f"its backbone is already a {backbone['type']}.")
    seg_type = model.get('type')
    if seg_type not in TIPS_SEGMENTORS:
        _refuse(source, f'its segmentor {seg_type!r} is not one of '
                f'{sorted(TIPS_SEGMENTORS)}: the TIPS regularizers and the '
                'shift-consistency evaluation need an encoder-decoder '
                "segmentor's loss and inference.")
    return TIPS_SEGMENTORS[seg_type] if downsample == 'TIPS' else seg_type


def wrapped_backbone_cfg(backbone: dict,
                         pretrained: Optional[str],
                         downsample_cfg: Optional[dict],
                         wrapper_options: Optional[dict] = None) -> dict:
    """The ``ShiftInvariantWrapper`` config around ``backbone`` (as a
    value, for building in Python; the written config refers to the base)."""
    inner = dict(backbone)
    if pretrained is not None:
        inner['pretrained'] = pretrained  # what EncoderDecoder would do
    return dict(type='ShiftInvariantWrapper', backbone=inner,
                downsample_cfg=downsample_cfg, **(wrapper_options or {}))


def check_backbone_converts(backbone: dict, downsample_cfg: dict,
                            wrapper_options: Optional[dict],
                            source: str):
    """Build the wrapped backbone once (no weights loaded) and refuse if
    it does not build or has nothing to convert.

    Returns:
        ShiftInvariantWrapper: The built wrapper (``converted``,
        ``skipped``, ``skip_reasons`` say what was done).
    """
    from mmseg.registry import MODELS

    from tips_mmseg.compat import is_missing_compiled_op

    inner = dict(backbone)
    # Building must not fetch weights: only the structure is looked at.
    for key in ('pretrained', 'init_cfg'):
        if key in inner:
            inner[key] = None
    cfg = wrapped_backbone_cfg(inner, None, downsample_cfg, wrapper_options)
    try:
        wrapper = MODELS.build(cfg)
    except Exception as e:  # noqa: B902 (each kind refused by name below)
        if is_missing_compiled_op(e):
            _refuse(source, f"its backbone {backbone['type']} needs a "
                    f'compiled mmcv op that this mmcv lacks ({e}).')
        if isinstance(e, KeyError) and 'is not in the' in str(e):
            _refuse(source, f"its backbone type {backbone['type']!r} is not "
                    f'registered here ({e}); install the package that '
                    'provides it (e.g. mmpretrain).')
        if isinstance(e, ValueError):
            _refuse(source, f"ShiftInvariantWrapper cannot wrap its "
                    f"backbone {backbone['type']}: {e}")
        raise
    if not wrapper.converted:
        left = ''.join(f'\n  {n}: {r}'
                       for n, r in wrapper.skip_reasons.items())
        hint = ''
        if any(r.startswith('non-overlapping') for r in
               wrapper.skip_reasons.values()):
            hint = ("\nTo convert its non-overlapping patch embedding too "
                    '(stride**2 times its multiply-adds), pass '
                    '--wrapper-option non_overlapping=convert.')
        _refuse(source, f"its backbone {backbone['type']} has no strided "
                'conv or max-pool that ShiftInvariantWrapper converts '
                '(it downsamples otherwise, or only with modules it leaves '
                f'as they are){left or "."}{hint}')
    return wrapper


def parse_options(items: Sequence[str], what: str) -> dict:
    """``['k=v', ...]`` -> ``{k: literal(v)}`` (plain strings stay
    strings)."""
    options = {}
    for item in items or ():
        key, sep, text = item.partition('=')
        if not sep or not key.isidentifier():
            raise ConversionError(f'{what} option {item!r} is not KEY=VALUE.')
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def convert_config(source: str,
                   downsample: str = 'TIPS',
                   downsample_options: Optional[dict] = None,
                   wrapper_options: Optional[dict] = None,
                   check_build: bool = True,
                   out_dir: Optional[str] = None) -> Tuple[str, Dict]:
    """Write the text of a converted config.

    Args:
        source (str): The original config: a path or ``mmseg::folder/
            name.py``.
        downsample (str): 'TIPS', 'BlurPool', 'APS' or 'LPS'. Defaults to
            'TIPS'.
        downsample_options (dict, optional): More keys of the downsampler's
            config (e.g. ``tau_pairing='release'``). Defaults to None.
        wrapper_options (dict, optional): More :class:`ShiftInvariantWrapper`
            arguments (e.g. ``patch_embed_placement='conv'``). Defaults to
            None.
        check_build (bool): Build the wrapped backbone once to refuse one
            that cannot be converted. Defaults to True.
        out_dir (str, optional): Folder the config will be written to (a
            file ``source`` is named relative to it). Defaults to None (as
            given).

    Returns:
        tuple[str, dict]: The config text, and a report: ``segmentor``,
        ``converted`` and ``skip_reasons`` (empty without ``check_build``).
    """
    try:
        cfg = load_config(source)
    except FileNotFoundError as e:
        raise ConversionError(f'Cannot read {source}: {e}') from e
    seg_type = check_convertible(cfg, source, downsample)
    model = cfg.model
    downsample_cfg = dict(type=downsample, **(downsample_options or {}))
    wrapper_options = dict(wrapper_options or {})
    report = dict(segmentor=seg_type, converted=[], skip_reasons={})
    if check_build:
        wrapper = check_backbone_converts(
            model.backbone.to_dict(), downsample_cfg, wrapper_options, source)
        report.update(converted=list(wrapper.converted),
                      skip_reasons=dict(wrapper.skip_reasons))
    pretrained = model.get('pretrained')
    base = source
    if '::' not in source and out_dir is not None:
        # A file: named relative to where the converted config goes.
        base = osp.relpath(osp.abspath(source), osp.abspath(out_dir))
    inner = ('dict(_base_.model.backbone, pretrained=_base_.model.'
             'pretrained)' if pretrained is not None else
             '_base_.model.backbone')
    lines = [
        f'# {downsample} in place of every strided conv / max-pool of the '
        'backbone of',
        f'# {base} (tools/convert_config.py).',
        '# Parameter names are unchanged: its checkpoints and ImageNet '
        'weights load.',
        f'_base_ = [{base!r}]',
        "custom_imports = dict(imports=['tips_mmseg'], "
        'allow_failed_imports=False)',
        'model = dict(',
    ]
    if seg_type != model.type:
        lines.append(f'    type={seg_type!r},')
    if downsample == 'TIPS':
        lines.append('    # L = (1 - alpha) L_task + lambda_fm L_FM + alpha '
                     'L_undo (docs/method.md)')
        lines.append(f'    tips_cfg={_call(DEFAULT_TIPS_CFG)},')
    if pretrained is not None:
        lines.append('    pretrained=None,  # given to the wrapped backbone')
    lines += [
        '    backbone=dict(',
        '        _delete_=True,',
        "        type='ShiftInvariantWrapper',",
        f'        backbone={inner},',
        f'        downsample_cfg={_call(downsample_cfg)},',
    ]
    lines += [f'        {k}={v!r},' for k, v in wrapper_options.items()]
    lines[-1] = lines[-1].rstrip(',') + '))'
    hooks = downsampler_hooks(downsample) + shift_consistency_entries()
    lines.append("custom_hooks = _base_.get('custom_hooks', []) + [")
    lines += [f'    {_call(h)},' for h in hooks]
    lines[-1] = lines[-1].rstrip(',') + ']'
    # Resume on torch >= 2.6 and atomic checkpoints, also under mmseg's own
    # tools (docs/compatibility.md); a key of default_hooks merges into the
    # base's.
    lines.append("default_hooks = dict(checkpoint_safety=dict("
                 "type='CheckpointSafetyHook'))")
    # Long lines (tips_cfg) wrap at commas; the config stays valid Python.
    return _wrap_long_lines('\n'.join(lines)), report


def _call(d: dict) -> str:
    return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in d.items()) + ')'


def _wrap_long_lines(text: str, width: int = 79) -> str:
    out = []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip()) + 4
        while len(line) > width and ', ' in line[:width]:
            cut = line.rindex(', ', 0, width) + 1
            out.append(line[:cut])
            line = ' ' * indent + line[cut:].lstrip()
        out.append(line)
    return '\n'.join(out) + '\n'


def downsampler_state_keys(model: nn.Module) -> List[str]:
    """State-dict keys of the downsamplers a conversion added."""
    from ..models.layers.base import PolyphaseDownsample
    from ..models.layers import BlurPool
    keys = []
    for name, module in model.named_modules():
        if isinstance(module, (PolyphaseDownsample, BlurPool)):
            keys += [f'{name}.{k}' for k in module.state_dict()]
    return keys


def load_vanilla_state_dict(model: nn.Module, state_dict: dict):
    """Load the original model's state dict into the converted one.

    Every original key must land, and only the added downsamplers' own
    parameters and buffers may stay missing; anything else is an error.

    Returns:
        list[str]: The missing keys (the downsamplers').
    """
    result = model.load_state_dict(state_dict, strict=False)
    allowed = set(downsampler_state_keys(model))
    missing = [k for k in result.missing_keys if k not in allowed]
    if result.unexpected_keys or missing:
        raise RuntimeError(
            f'The original state dict does not fit the converted model: '
            f'unexpected keys {result.unexpected_keys[:10]}, missing keys '
            f'(not of the added downsamplers) {missing[:10]}.')
    return list(result.missing_keys)
