"""TIPSEncoderDecoder: loss arithmetic, L_undo switch, told-once warning."""
import warnings

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import tips_mmseg  # noqa: F401
from tips_mmseg.models.regularization import tips_layers

BN = dict(type='BN', requires_grad=True)


def segmentor_cfg(seg_type='TIPSEncoderDecoder', down='TIPS', **kwargs):
    cfg = dict(
        type=seg_type,
        backbone=dict(type='ShiftInvariantResNetV1c', depth=18,
                      downsample_cfg=down, norm_cfg=BN,
                      strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
        decode_head=dict(type='FCNHead', in_channels=512, in_index=3,
                         channels=16, num_convs=1, num_classes=3, dropout_ratio=0.,
                         norm_cfg=BN,
                         loss_decode=dict(type='CrossEntropyLoss')),
        auxiliary_head=dict(type='FCNHead', in_channels=256, in_index=2,
                            channels=8, num_convs=1, num_classes=3, dropout_ratio=0.,
                            norm_cfg=BN,
                            loss_decode=dict(type='CrossEntropyLoss',
                                             loss_weight=0.4)))
    cfg.update(kwargs)
    return cfg


def batch(n=2, size=32):
    inputs = torch.randn(n, 3, size, size)
    samples = []
    for _ in range(n):
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 3, (1, size, size))))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    return inputs, samples


def losses_of(model, seed=0):
    torch.manual_seed(seed)
    return model.loss(*batch())


def test_loss_arithmetic():
    tips_cfg = dict(lambda_fm=2.0, alpha=0.25, eps=0.0)
    model = MODELS.build(segmentor_cfg(tips_cfg=tips_cfg)).train()
    plain = MODELS.build(segmentor_cfg(seg_type='EncoderDecoder')).train()
    plain.load_state_dict(model.state_dict())

    torch.manual_seed(0)
    inputs, samples = batch()
    reg = model.loss(inputs, samples)
    ref = plain.loss(inputs, samples)
    for key in ('decode.loss_ce', 'aux.loss_ce'):
        torch.testing.assert_close(reg[key], 0.75 * ref[key])
    torch.testing.assert_close(reg['decode.acc_seg'], ref['decode.acc_seg'])

    # loss_fm by hand: mean over layers of mean(1 - ||tau||_2).
    layers = tips_layers(model)
    assert len(layers) == 3 + 1  # stem conv, max-pool, layer2 + shortcut
    model.extract_feat(inputs)
    by_hand = torch.stack([(1 - m.tau.norm(dim=-1)).mean()
                           for m in layers]).mean()
    torch.manual_seed(0)
    again = model.add_tips_losses({})
    torch.testing.assert_close(again['loss_fm'], 2.0 * by_hand)
    assert reg['loss_undo'] > 0 and reg['loss_undo'].requires_grad


def test_every_parameter_gets_a_gradient():
    """DDP without find_unused_parameters: nothing may be left out."""
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.5))).train()
    model.set_train_progress(0, 10)  # L_undo still off
    losses = losses_of(model)
    total, _ = model.parse_losses(losses)
    total.backward()
    unused = [n for n, p in model.named_parameters()
              if p.requires_grad and p.grad is None]
    assert unused == []


def test_undo_switches_on_at_eps_of_training():
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.4))).train()
    model.set_train_progress(39, 100)
    before = losses_of(model)
    assert before['loss_undo'].item() == 0
    assert not model.undo_active()
    model.set_train_progress(40, 100)
    after = losses_of(model)
    assert after['loss_undo'].item() > 0


def test_progress_from_message_hub():
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('tips_test_hub')
    hub.update_info('iter', 5)
    hub.update_info('max_iters', 10)
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.6)))
    assert not model.undo_active()
    hub.update_info('iter', 6)
    assert model.undo_active()


def test_caches_are_cleared_after_the_loss():
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.0))).train()
    losses_of(model)
    assert all(m.tau is None for m in tips_layers(model))


def test_no_tips_layers_leaves_losses_alone():
    model = MODELS.build(segmentor_cfg(down='APS')).train()
    losses = losses_of(model)
    assert 'loss_fm' not in losses and 'loss_undo' not in losses


@pytest.mark.parametrize('bad, match', [
    (dict(alpha=1.0), 'alpha'), (dict(eps=2), 'eps'),
    (dict(lambda_fm=-1), 'lambda_fm'), (dict(undo_mode='x'), 'undo_mode'),
])
def test_bad_tips_cfg_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(segmentor_cfg(tips_cfg=bad))
    with pytest.raises(KeyError, match='Unknown tips_cfg keys'):
        MODELS.build(segmentor_cfg(tips_cfg=dict(lamda_fm=1)))


def test_plain_encoder_decoder_tells_once():
    model = MODELS.build(segmentor_cfg(seg_type='EncoderDecoder')).train()
    with pytest.warns(UserWarning, match='TIPSEncoderDecoder') as record:
        losses_of(model)
        losses_of(model)
    told = [w for w in record if 'NOT' in str(w.message)]
    assert len(told) == 1
    assert 'loss_fm' not in losses_of(model)


def test_tips_segmentor_does_not_warn():
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.0))).train()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        losses_of(model)
    assert not [w for w in record if 'NOT' in str(w.message)]


def test_cascade_segmentor_adds_terms():
    cfg = segmentor_cfg(seg_type='TIPSCascadeEncoderDecoder',
                        tips_cfg=dict(eps=0.0), num_stages=2)
    head = cfg['decode_head']
    cfg['decode_head'] = [
        head, dict(type='OCRHead', in_channels=512, in_index=3, channels=16,
                   ocr_channels=8, num_classes=3, norm_cfg=BN,
                   loss_decode=dict(type='CrossEntropyLoss'))
    ]
    model = MODELS.build(cfg).train()
    losses = losses_of(model)
    assert {'loss_fm', 'loss_undo'} <= set(losses)
