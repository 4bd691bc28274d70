"""Check a converted stock mmseg config end to end, small and on the CPU.

:func:`round_trip` converts a config (:func:`convert_config`), builds the
original and the converted model at a small size, loads the original's
state dict into the converted one (every key must land; only the added
downsamplers' parameters may be missing) and takes one training step.
``tools/zoo_coverage.py`` runs it for every mmseg model family; the tests
run it for a few.
"""
import os.path as osp
import tempfile
import time
import traceback
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.structures import PixelData

from .convert import (ConversionError, check_backbone_converts,
                      convert_config, load_config, load_vanilla_state_dict)

#: Norm layers that need a process group, and their single-process twins.
_SYNC_NORMS = {'SyncBN': 'BN', 'MMSyncBN': 'BN'}
#: Outcomes of :func:`round_trip`, in report order.
STATUSES = ('ok', 'ok with non_overlapping=convert', 'refused',
            'no compiled op', 'vanilla fails here',
            'FAILED', 'timeout')


def _offline_small(node, size: int):
    """Copy of a config node without weight downloads or SyncBN, sized for
    ``size`` x ``size`` inputs."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'pretrained' and isinstance(value, str):
                value = None
            elif key == 'init_cfg' and _loads_weights(value):
                value = None
            elif key == 'type' and value in _SYNC_NORMS:
                value = _SYNC_NORMS[value]
            else:
                value = _offline_small(value, size)
            out[key] = value
        if out.get('type') == 'SegDataPreProcessor' and 'size' in out:
            out['size'] = (size, size)
        if 'img_size' in out:
            # Position embeddings / relative position tables sized for the
            # small input (the same in the original and converted model).
            out['img_size'] = size if isinstance(out['img_size'], int) \
                else (size, size)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_offline_small(v, size) for v in node)
    return node


def _loads_weights(init_cfg) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(i, dict) and (
        i.get('type') == 'Pretrained' or 'checkpoint' in i) for i in items)


def small_model_cfg(cfg: Config, size: int = 64) -> dict:
    """The model of ``cfg`` without downloads or SyncBN, for ``size``."""
    return _offline_small(cfg.model.to_dict(), size)


def _build(model_cfg: dict):
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        # ConfigDict: some heads read their train_cfg by attribute.
        return MODELS.build(ConfigDict(model_cfg))


def _num_classes(model) -> int:
    head = model.decode_head
    head = head[-1] if isinstance(head, torch.nn.ModuleList) else head
    return int(getattr(head, 'num_classes', 2))


def train_step(model, size: int = 64, batch: int = 2, seed: int = 0):
    """One SGD step on random images and labels; returns the loss."""
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    classes = _num_classes(model)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                    dtype=torch.uint8))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, classes, (1, size, size), generator=gen))
        sample.gt_edge_map = PixelData(data=torch.randint(
            0, 2, (1, size, size), generator=gen))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    model.train()
    if hasattr(model, 'set_train_progress'):
        model.set_train_progress(1, 1)  # L_undo on
    data = model.data_preprocessor(dict(inputs=inputs,
                                        data_samples=samples), True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    if not torch.isfinite(loss):
        raise FloatingPointError(f'training loss is {loss.item()}')
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-3)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _classify(error: BaseException) -> str:
    from tips_mmseg.compat import is_missing_compiled_op
    return ('no compiled op' if is_missing_compiled_op(error) else
            'vanilla fails here')


def _short(error: BaseException) -> str:
    text = f'{type(error).__name__}: {error}'.replace('\n', ' ')
    return text[:300]


def round_trip(source: str,
               downsample: str = 'TIPS',
               size: int = 64,
               wrapper_options: Optional[dict] = None) -> dict:
    """Convert, build, load the vanilla weights and train one step.

    Args:
        source (str): The original config (path or ``mmseg::...``).
        downsample (str): The downsampler. Defaults to 'TIPS'.
        size (int): Side of the random training images. Defaults to 64.
        wrapper_options (dict, optional): More ShiftInvariantWrapper
            arguments. Defaults to None.

    Returns:
        dict: ``status`` (one of :data:`STATUSES`), ``reason``,
        ``segmentor``, ``backbone``, ``converted`` (names),
        ``skip_reasons`` ({name: why left}), ``missing_keys`` (the
        downsamplers' own, after loading the vanilla state dict), ``loss``
        and ``seconds``.
    """
    start = time.time()
    result = dict(config=source, status=None, reason='', segmentor=None,
                  backbone=None, converted=[], skip_reasons={},
                  missing_keys=[], loss=None)

    def done(status, reason=''):
        result.update(status=status, reason=reason,
                      seconds=round(time.time() - start, 1))
        return result

    try:
        vanilla_cfg = load_config(source)
    except Exception as e:  # noqa: BLE001  (reported, not raised)
        return done('vanilla fails here', _short(e))
    model = vanilla_cfg.get('model') or {}
    result['segmentor'] = model.get('type')
    result['backbone'] = (model.get('backbone') or {}).get('type')
    # The vanilla model first: what does not build here says nothing about
    # the conversion.
    try:
        vanilla = _build(small_model_cfg(vanilla_cfg, size)) \
            if 'backbone' in model else None
    except Exception as e:  # noqa: BLE001
        return done(_classify(e), _short(e))
    try:
        # The backbone is built below, so the conversion need not.
        text, report = convert_config(source, downsample,
                                      wrapper_options=wrapper_options,
                                      check_build=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, 'converted.py')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
            converted_cfg = Config.fromfile(path)
        model_cfg = small_model_cfg(converted_cfg, size)
        try:
            converted = _build(model_cfg)
        except ValueError:
            converted = None  # the check below says why
        if converted is None or not converted.backbone.converted:
            check_backbone_converts(
                model_cfg['backbone']['backbone'],
                model_cfg['backbone']['downsample_cfg'], wrapper_options,
                source)
    except ConversionError as e:
        return done('refused', str(e))
    result.update(segmentor=report['segmentor'],
                  converted=list(converted.backbone.converted),
                  skip_reasons=dict(converted.backbone.skip_reasons))
    try:
        result['missing_keys'] = load_vanilla_state_dict(
            converted, vanilla.state_dict())
        result['loss'] = train_step(converted, size)
    except Exception as e:  # noqa: BLE001
        try:  # is it the conversion, or does the original fail too?
            train_step(vanilla, size)
        except Exception as e2:  # noqa: BLE001
            return done(_classify(e2), 'the vanilla model fails the same '
                        'step: ' + _short(e2))
        return done('FAILED', _short(e) + ' | ' + traceback.format_exc(
            limit=-3).replace('\n', ' ')[-400:])
    return done('ok')
