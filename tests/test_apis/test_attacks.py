"""FGSM / PGD in pixel space on a trained toy mmseg segmentor."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData

from tips_mmseg.apis import build_attack, fgsm_attack, pgd_attack
from tips_mmseg.apis.attacks import segmentation_loss
from tips_mmseg.apis.robustness import (build_test_dataloader,
                                        evaluate_segmentor)


@pytest.fixture(scope='module')
def test_loader(toy_cfg):
    return build_test_dataloader(toy_cfg)


@pytest.fixture
def batch(test_loader):
    return next(iter(test_loader))


def _miou(model, cfg, loader, attack=None):
    return evaluate_segmentor(model, loader, cfg.test_evaluator,
                              attack)['mIoU']


def test_toy_model_is_not_trivial(trained_toy_model, toy_cfg, test_loader):
    # Otherwise the attack tests below would prove nothing.
    assert _miou(trained_toy_model, toy_cfg, test_loader) > 60


@pytest.mark.parametrize('name', ['fgsm', 'pgd'])
def test_eps_zero_leaves_predictions_and_miou_unchanged(
        name, trained_toy_model, toy_cfg, test_loader, batch):
    model = trained_toy_model
    attacked = build_attack(name, eps=0)(model, copy.deepcopy(batch))
    with torch.no_grad():
        clean_pred = model.test_step(copy.deepcopy(batch))
        adv_pred = model.test_step(attacked)
    for c, a in zip(clean_pred, adv_pred):
        assert torch.equal(c.seg_logits.data, a.seg_logits.data)
    assert _miou(model, toy_cfg, test_loader, build_attack(name, 0)) == \
        _miou(model, toy_cfg, test_loader)


def test_pgd_never_raises_miou_over_clean(trained_toy_model, toy_cfg,
                                          test_loader):
    clean = _miou(trained_toy_model, toy_cfg, test_loader)
    attacked = {
        eps: _miou(trained_toy_model, toy_cfg, test_loader,
                   build_attack('pgd', eps, pgd_steps=5))
        for eps in (2, 8)
    }
    assert attacked[2] <= clean
    assert attacked[8] <= attacked[2]
    assert attacked[8] < clean - 5, (clean, attacked)  # it does attack


@pytest.mark.parametrize('random_start', [False, True])
def test_perturbation_within_eps_and_pixel_range(trained_toy_model, batch,
                                                 random_start):
    eps = 6.0
    clean = [img.float() for img in batch['inputs']]
    assert any((img == 255).any() for img in clean)  # clamp is exercised
    adv = pgd_attack(trained_toy_model, copy.deepcopy(batch), eps, steps=3,
                     random_start=random_start)['inputs']
    for a, c in zip(adv, clean):
        assert a.shape == c.shape and a.dtype == torch.float32
        assert (a - c).abs().max() <= eps + 1e-4
        assert a.min() >= 0 and a.max() <= 255
        assert (a - c).abs().max() > eps / 2  # it moved


def test_fgsm_is_one_full_step(trained_toy_model, batch):
    eps = 3.0
    adv = fgsm_attack(trained_toy_model, copy.deepcopy(batch), eps)['inputs']
    for a, c in zip(adv, batch['inputs']):
        delta = (a - c.float()).abs()
        # Every pixel moves by eps unless the clamp to [0, 255] stops it or
        # its gradient is exactly zero.
        inside = (c.float() >= eps) & (c.float() <= 255 - eps)
        assert (delta[inside] == eps).float().mean() > 0.9


def test_attack_leaves_model_and_samples_alone(trained_toy_model, batch):
    model = trained_toy_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    samples = copy.deepcopy(batch['data_samples'])
    pgd_attack(model, dict(batch, data_samples=samples), 4.0, steps=2)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # BN running stats frozen
    assert all('pred_sem_seg' not in s for s in samples)


def test_loss_works_with_slide_inference(trained_toy_model, batch):
    model = copy.deepcopy(trained_toy_model)
    model.test_cfg = ConfigDict(
        mode='slide', crop_size=(16, 16), stride=(12, 12))
    images = [img.float().requires_grad_() for img in batch['inputs']]
    loss = segmentation_loss(model, images, batch['data_samples'])
    grads = torch.autograd.grad(loss, images)
    assert all(g.abs().sum() > 0 for g in grads)


def test_unknown_attack_and_negative_eps():
    with pytest.raises(ValueError, match='fgsm, pgd'):
        build_attack('cw', 1.0)
    with pytest.raises(ValueError, match='eps'):
        pgd_attack(None, dict(inputs=[], data_samples=[]), -1.0)


def test_test_time_padding(trained_toy_model, batch):
    # 26x30 images padded to 32x32 by the preprocessor's test_cfg: the attack
    # must differentiate through the padding and return the unpadded size.
    model = copy.deepcopy(trained_toy_model)
    model.data_preprocessor.test_cfg = dict(size_divisor=16)
    data = copy.deepcopy(batch)
    data['inputs'] = [img[:, :26, :30] for img in data['inputs']]
    for sample in data['data_samples']:
        sample.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data[:, :26, :30])
        sample.set_metainfo(dict(ori_shape=(26, 30), img_shape=(26, 30)))
    adv = pgd_attack(model, copy.deepcopy(data), 4.0, steps=2)['inputs']
    for a, c in zip(adv, data['inputs']):
        assert a.shape == c.shape
        assert 0 < (a - c.float()).abs().max() <= 4.0 + 1e-4
