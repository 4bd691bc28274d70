"""DOWNSAMPLERS: a child registry of mmseg's MODELS for every backbone and
wrapper; our generic names do not collide with other plugins'."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope, init_default_scope
from mmseg.registry import MODELS

import tips_mmseg  # noqa: F401
from tips_mmseg.models import APS, TIPS, ShiftInvariantResNetV1c
from tips_mmseg.models.layers import build_downsample
from tips_mmseg.registry import DOWNSAMPLERS

BN = dict(type='BN', requires_grad=True)


class ToyDown(nn.Module):
    """Keeps the bottom-right pixel of every stride x stride block."""

    def __init__(self, channels, stride=2):
        super().__init__()
        self.channels, self.stride = channels, stride

    def forward(self, x):
        s = self.stride
        return x[..., s - 1::s, s - 1::s]


@pytest.fixture
def toy_down():
    DOWNSAMPLERS.register_module(module=ToyDown)
    yield 'ToyDown'
    DOWNSAMPLERS._module_dict.pop('ToyDown')


@pytest.fixture
def in_a_runner_scope():
    """The default scope a Runner of an mmseg config sets (mmengine then
    builds from mmseg's MODELS)."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def count(model, cls):
    return sum(type(m) is cls for m in model.modules())


def test_a_user_layer_works_in_the_resnet(toy_down, in_a_runner_scope):
    model = MODELS.build(dict(
        type='ShiftInvariantResNetV1c', depth=18, downsample_cfg=toy_down,
        norm_cfg=BN))
    # stem conv + max-pool + main branch and shortcut of stages 2, 3, 4
    assert count(model, ToyDown) == 2 + 3 + 3
    assert all(m.stride == 2 for m in model.modules()
               if isinstance(m, ToyDown))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]


def test_a_user_layer_works_in_the_wrapper(toy_down, in_a_runner_scope):
    cfg = dict(type='ResNet', depth=18, norm_cfg=BN)
    wrapped = MODELS.build(dict(type='ShiftInvariantWrapper', backbone=cfg,
                                downsample_cfg=dict(type=toy_down)))
    assert count(wrapped, ToyDown) == len(wrapped.converted) == 8
    x = torch.randn(1, 3, 64, 64)
    original = MODELS.build(cfg)
    assert [o.shape for o in wrapped(x)] == [o.shape for o in original(x)]


def test_another_plugin_s_aps_in_mmseg_models_does_not_clash():

    class OtherAPS(nn.Module):

        def __init__(self, **kwargs):
            super().__init__()

    MODELS.register_module(name='APS', module=OtherAPS)  # no KeyError
    try:
        assert type(build_downsample('APS', 4)) is APS
        model = ShiftInvariantResNetV1c(depth=18, downsample_cfg='APS',
                                        norm_cfg=BN)
        assert count(model, APS) == 5 and count(model, OtherAPS) == 0
        assert type(MODELS.build(dict(type='APS'))) is OtherAPS
    finally:
        MODELS._module_dict.pop('APS')


def test_mmseg_models_reaches_ours_by_scope_prefix(in_a_runner_scope):
    layer = MODELS.build(dict(type='tips_mmseg.TIPS', channels=4))
    assert type(layer) is TIPS and layer.channels == 4
    assert 'TIPS' not in MODELS.module_dict  # not in mmseg's own names
    assert type(build_downsample('tips_mmseg.TIPS', 4)) is TIPS


def test_a_layer_registered_only_in_mmseg_models_is_refused():
    MODELS.register_module(name='MMSegOnlyDown', module=ToyDown)
    try:
        with pytest.raises(KeyError, match='DOWNSAMPLERS.register_module'):
            build_downsample('MMSegOnlyDown', 4)
    finally:
        MODELS._module_dict.pop('MMSegOnlyDown')


def test_the_registry_is_a_child_of_mmseg_models():
    assert DOWNSAMPLERS.parent is MODELS
    assert MODELS._children['tips_mmseg'] is DOWNSAMPLERS
    init_default_scope('mmseg')
    assert DOWNSAMPLERS.get('ResNetV1c') is MODELS.get('ResNetV1c')
