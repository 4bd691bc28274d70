"""Build a model from a config and take one real training step on CPU."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData

import tips_mmseg  # noqa: F401  (registers everything)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def _sync_bn_to_bn(cfg):
    """SyncBN -> BN everywhere (the Runner does this for launcher='none';
    models built outside it don't get it)."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        for v in cfg.values():
            _sync_bn_to_bn(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _sync_bn_to_bn(v)


def model_cfg_for_test(cfg: Config, size: int = 32) -> dict:
    """The config's model, CPU-sized: BN, no pretrained weights, small pad."""
    model = copy.deepcopy(cfg.model.to_dict())
    _sync_bn_to_bn(model)
    model['pretrained'] = None
    backbone = model['backbone']
    backbone.pop('init_cfg', None)
    if isinstance(backbone.get('backbone'), dict):  # ShiftInvariantWrapper
        backbone['backbone'].pop('init_cfg', None)
    model['data_preprocessor']['size'] = (size, size)
    return model


def num_classes(model_cfg: dict) -> int:
    return model_cfg['decode_head']['num_classes']


def one_train_step(model_cfg: dict, size: int = 32, batch: int = 2):
    """Build, then one optimizer step through data_preprocessor + loss.

    Returns:
        (model, log_vars): the trained model and the logged losses.
    """
    # No init_weights(): mmengine logs every parameter's init, which costs
    # more than the step; the modules' own initialization is enough here.
    model = MODELS.build(model_cfg)
    model.train()
    classes = num_classes(model_cfg)
    data = dict(inputs=[], data_samples=[])
    for _ in range(batch):
        data['inputs'].append(
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
        label = torch.randint(0, classes, (1, size, size))
        label[:, :4] = 255  # some ignored pixels, as in real annotations
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        data['data_samples'].append(sample)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    before = [p.detach().clone() for p in model.parameters()]
    log_vars = model.train_step(data, optim)
    assert torch.isfinite(log_vars['loss']), log_vars
    changed = any(not torch.equal(b, p.detach())
                  for b, p in zip(before, model.parameters()))
    assert changed, 'the optimizer step changed no parameter'
    return model, log_vars


@pytest.fixture
def load_config():
    return Config.fromfile
