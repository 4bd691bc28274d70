"""TIPS in checkpointed blocks (``with_cp=True``): the same losses and
gradients as without, regularizers included."""
import pytest
import torch
from mmseg.registry import MODELS

import tips_mmseg  # noqa: F401
from tests.test_models.test_regularized_segmentor import batch, segmentor_cfg
from tips_mmseg.models.backbones import shift_invariant_resnet
from tips_mmseg.models.regularization import tips_layers


def build_pair(eps):
    """TIPSEncoderDecoder with and without with_cp, the same weights."""
    models = []
    for with_cp in (False, True):
        cfg = segmentor_cfg(tips_cfg=dict(eps=eps))
        cfg['backbone']['with_cp'] = with_cp
        torch.manual_seed(0)
        models.append(MODELS.build(cfg).train())
    models[1].load_state_dict(models[0].state_dict())
    return models


def step(model, progress):
    """Losses and gradients of one training step on a fixed batch."""
    model.set_train_progress(*progress)
    torch.manual_seed(1)  # the same batch and the same L_undo shift
    losses = model.loss(*batch())
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return losses, grads


@pytest.fixture
def checkpointed(monkeypatch):
    """Counts the blocks that really run under torch's checkpoint."""
    calls = []
    real = shift_invariant_resnet.cp.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(fn)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(shift_invariant_resnet.cp, 'checkpoint', counting)
    return calls


@pytest.mark.parametrize('progress,undo_on', [((0, 10), False),
                                              ((5, 10), True)])
def test_with_cp_gives_the_same_losses_and_gradients(checkpointed, progress,
                                                     undo_on):
    plain, with_cp = build_pair(eps=0.5)
    ref_losses, ref_grads = step(plain, progress)
    assert checkpointed == []
    losses, grads = step(with_cp, progress)
    assert len(checkpointed) == 8  # every BasicBlock of the ResNet-18
    assert set(losses) == set(ref_losses) >= {'loss_fm', 'loss_undo'}
    for key in ref_losses:
        torch.testing.assert_close(losses[key], ref_losses[key])
    assert (ref_losses['loss_undo'].item() > 0) == undo_on
    assert set(grads) == set(ref_grads)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name],
                                   rtol=1e-5, atol=1e-6)


def test_regularizers_reach_the_tips_layers_inside_checkpointed_blocks():
    _, model = build_pair(eps=0.0)
    tips = tips_layers(model)
    inner = [m for name, m in model.backbone.named_modules()
             if name.startswith('layer') and any(m is t for t in tips)]
    assert len(inner) == 2  # layer2's main branch and shortcut
    model.set_train_progress(5, 10)
    torch.manual_seed(1)
    losses = model.loss(*batch())
    for key in ('loss_fm', 'loss_undo'):
        assert losses[key].item() > 0
        for layer in inner:
            model.zero_grad()
            grad, = torch.autograd.grad(
                losses[key], layer.psi_conv.weight, retain_graph=True)
            assert grad.abs().sum() > 0, (key, layer)


def test_caches_stay_cleared_after_a_checkpointed_backward():
    """The backward recomputation of a checkpointed block runs TIPS.forward
    again; it must not refill the tau/_input caches the loss cleared (they
    would hold tensors until the next step, and a later regularizer call
    would read stale values instead of failing)."""
    _, model = build_pair(eps=0.0)
    step(model, (5, 10))
    assert all(m.tau is None and m._input is None
               for m in tips_layers(model))
