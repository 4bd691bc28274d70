"""TIPSEncoderDecoder: loss arithmetic, L_undo switch, told-once warning."""
import warnings

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import tips_mmseg  # noqa: F401
from tips_mmseg.models.backbones import ShiftInvariantBasicBlock
from tips_mmseg.models.layers import TIPS
from tips_mmseg.models.regularization import tips_layers, tips_stages
from tips_mmseg.models.segmentors import DEFAULT_TIPS_CFG
from tips_mmseg.models.segmentors.tips_regularizer import (failure_mode_loss,
                                                           undo_loss)

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
    h, w = (size, size) if isinstance(size, int) else size
    inputs = torch.randn(n, 3, h, w)
    samples = []
    for _ in range(n):
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 3, (1, h, w))))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    return inputs, samples


def losses_of(model, seed=0):
    torch.manual_seed(seed)
    return model.loss(*batch())


def test_loss_arithmetic():
    tips_cfg = dict(lambda_fm=2.0, alpha=0.25, undo_start=0.0)
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

    # loss_fm by hand: mean(1 - ||tau||_2) over the channels of all layers
    # concatenated. This used to be the mean of per-layer means; the default
    # is now the release's aggregation (fm_reduction='channels'), so the
    # test pins that (the per-layer one: test_aggregation_on_a_hand_made_*).
    layers = tips_layers(model)
    assert len(layers) == 3 + 1  # stem conv, max-pool, layer2 + shortcut
    model.extract_feat(inputs)
    by_hand = (1 - torch.cat([m.tau for m in layers], 1).norm(dim=-1)).mean()
    torch.manual_seed(0)
    again = model.add_tips_losses({})
    torch.testing.assert_close(again['loss_fm'], 2.0 * by_hand)
    assert reg['loss_undo'] > 0 and reg['loss_undo'].requires_grad


def test_every_parameter_gets_a_gradient():
    """DDP without find_unused_parameters: nothing may be left out."""
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(undo_start=0.5))).train()
    model.set_train_progress(0, 10)  # L_undo still off
    losses = losses_of(model)
    total, _ = model.parse_losses(losses)
    total.backward()
    unused = [n for n, p in model.named_parameters()
              if p.requires_grad and p.grad is None]
    assert unused == []


def test_undo_switches_on_at_undo_start_of_training():
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(undo_start=0.4))).train()
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
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(undo_start=0.6)))
    assert not model.undo_active()
    hub.update_info('iter', 6)
    assert model.undo_active()


def test_caches_are_cleared_after_the_loss():
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(undo_start=0.0))).train()
    losses_of(model)
    assert all(m.tau is None for m in tips_layers(model))


def test_no_tips_layers_leaves_losses_alone():
    model = MODELS.build(segmentor_cfg(down='APS')).train()
    losses = losses_of(model)
    assert 'loss_fm' not in losses and 'loss_undo' not in losses


@pytest.mark.parametrize('bad, match', [
    (dict(alpha=1.0), 'alpha'), (dict(undo_start=2), 'undo_start'),
    (dict(eps=2), 'undo_start'),
    (dict(lambda_fm=-1), 'lambda_fm'), (dict(undo_mode='x'), 'undo_mode'),
    (dict(undo_range='net'), 'undo_range'),
    (dict(undo_shift=-2), 'undo_shift'), (dict(undo_shift=(1, 2, 3)),
                                          'undo_shift'),
    (dict(undo_detach='yes'), 'undo_detach'),
    (dict(fm_reduction='mean'), 'fm_reduction'),
    (dict(undo_reduction='mean'), 'undo_reduction'),
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
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(undo_start=0.0))).train()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        losses_of(model)
    assert not [w for w in record if 'NOT' in str(w.message)]


def test_cascade_segmentor_adds_terms():
    cfg = segmentor_cfg(seg_type='TIPSCascadeEncoderDecoder',
                        tips_cfg=dict(undo_start=0.0), num_stages=2)
    head = cfg['decode_head']
    cfg['decode_head'] = [
        head, dict(type='OCRHead', in_channels=512, in_index=3, channels=16,
                   ocr_channels=8, num_classes=3, norm_cfg=BN,
                   loss_decode=dict(type='CrossEntropyLoss'))
    ]
    model = MODELS.build(cfg).train()
    losses = losses_of(model)
    assert {'loss_fm', 'loss_undo'} <= set(losses)


# --- Fidelity to the release (shift, range, detach, aggregation) ------------

def shifted_by_loops(x, dh, dw, mode='circular'):
    """T(X)[i, j] = X[i - dh, j - dw], wrapping ('circular') or 0 outside."""
    h, w = x.shape[-2:]
    rows = [(i - dh) % h for i in range(h)]
    cols = [(j - dw) % w for j in range(w)]
    out = x[..., rows, :][..., cols]
    if mode == 'standard':
        keep = torch.tensor([[0 <= i - dh < h and 0 <= j - dw < w
                              for j in range(w)] for i in range(h)])
        out = out * keep
    return out


def psi_by_hand(layer, x):
    return torch.relu(torch.nn.functional.conv2d(
        x, layer.psi_conv.weight, padding=1, groups=x.shape[1]))


def record_inputs(module):
    """Every TIPS layer's input of the next forward (with its graph)."""
    seen = {}
    for m in tips_layers(module):
        m.register_forward_pre_hook(
            lambda mod, args: seen.__setitem__(mod, args[0]))
    return seen


def test_default_tips_cfg_follows_the_release():
    assert DEFAULT_TIPS_CFG == dict(
        lambda_fm=1.0, alpha=0.35,
        undo_start=0.21,          # the release wakes L_undo at epoch 100/480
        undo_mode='circular',     # transform_type='circular' in its script
        undo_range='input',       # max shift H/4 of the network input
        undo_shift=None,
        undo_detach=True,         # its stated intent (a comment + detach())
        fm_reduction='channels',  # tau of all layers concatenated
        undo_reduction='stages')  # main+shortcut concatenated, 1/num_down


def test_stages_pair_main_branch_and_shortcut_of_a_block():
    model = MODELS.build(segmentor_cfg())
    names = {m: n for n, m in model.named_modules()}
    stages = sorted(sorted(names[m] for m in s) for s in tips_stages(model))
    assert stages == [['backbone.layer2.0.down',
                       'backbone.layer2.0.shortcut_down'],
                      ['backbone.maxpool'], ['backbone.stem_down']]
    wrapped = MODELS.build(dict(
        type='ShiftInvariantWrapper', downsample_cfg=dict(type='TIPS'),
        backbone=dict(type='ResNetV1c', depth=18, strides=(1, 2, 1, 1),
                      dilations=(1, 1, 2, 4))))
    names = {m: n for n, m in wrapped.named_modules()}
    stages = sorted(sorted(names[m] for m in s) for s in tips_stages(wrapped))
    assert stages == [['backbone.layer2.0.conv1.down',
                       'backbone.layer2.0.downsample.0.down'],
                      ['backbone.maxpool.down'], ['backbone.stem.0.down']]


class HandMade(torch.nn.Module):
    """A 3-channel TIPS, then a block whose main branch (6 channels) and
    shortcut (3 channels) each downsample with TIPS."""

    def __init__(self):
        super().__init__()
        self.stem = TIPS(3)
        self.block = ShiftInvariantBasicBlock(
            3, 6, stride=2, downsample_cfg=dict(type='TIPS'),
            downsample=torch.nn.Sequential(torch.nn.Conv2d(3, 6, 1),
                                           torch.nn.BatchNorm2d(6)))

    def forward(self, x):
        return self.block(self.stem(x))


def test_aggregation_on_a_hand_made_two_width_case():
    torch.manual_seed(0)
    model = HandMade().train()
    for m in tips_layers(model):
        torch.nn.init.normal_(m.logit_scale.weight, std=5.)
    inputs = record_inputs(model)
    model(torch.randn(2, 3, 16, 16))
    stem, main, short = model.stem, model.block.down, model.block.shortcut_down
    assert [m.channels for m in (stem, main, short)] == [3, 6, 3]
    assert [set(s) for s in tips_stages(model)] == [{stem}, {main, short}]

    # L_FM: 1 - ||tau[n, c]||_2 for every sample and channel of every layer.
    terms = {m: [1 - sum(t**2 for t in m.last_tau[n, c].tolist())**0.5
                 for n in range(2) for c in range(m.channels)]
             for m in (stem, main, short)}
    all_channels = sum(terms.values(), [])
    by_channels = sum(all_channels) / len(all_channels)
    by_layers = sum(sum(t) / len(t) for t in terms.values()) / 3
    assert abs(by_channels - by_layers) > 1e-4  # the weights matter here
    for reduction, want in (('channels', by_channels),
                            ('layers', by_layers)):
        got = failure_mode_loss([stem, main, short], reduction)
        assert abs(got.item() - want) < 1e-6, reduction

    # L_undo: the stage of the block pools main and shortcut into one MSE.
    for reduction in ('stages', 'layers'):
        got = undo_loss(tips_stages(model), reduction, max_shift=3,
                        mode='circular', detach=True)
        sq = {}
        for m in (stem, main, short):
            x = inputs[m]
            diff = psi_by_hand(m, x) - shifted_by_loops(x, *m.last_undo_shift)
            sq[m] = (diff.pow(2).sum().item(), diff.numel())
        if reduction == 'stages':
            block = ((sq[main][0] + sq[short][0]) /
                     (sq[main][1] + sq[short][1]))
            want = (sq[stem][0] / sq[stem][1] + block) / 2
        else:
            want = sum(s / n for s, n in sq.values()) / 3
        assert abs(got.item() - want) < 1e-5 * want, reduction
        if reduction == 'stages':
            # Per-layer weights would give another number for these shifts.
            per_layer = sum(s / n for s, n in sq.values()) / 3
            assert abs(got.item() - per_layer) > 1e-3


@pytest.mark.parametrize('undo_range', ['input', 'layer'])
def test_undo_range_relative_to_network_input_or_layer(undo_range):
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(
        undo_start=0.0, undo_range=undo_range))).train()
    torch.manual_seed(1)
    model.loss(*batch(size=(32, 48)))
    layers = tips_layers(model)
    sizes = {m: tuple(m.last_input_size) for m in layers}
    assert sorted(sizes.values()) == [(8, 12), (8, 12), (16, 24), (32, 48)]
    if undo_range == 'input':
        # m = (H/4, W/4) of the 32x48 network input for EVERY layer, in its
        # own pixels: on the 8x12 maps the roll may wrap around.
        assert model.undo_max_shift() == (8, 12)
        bounds = {m: (8, 12) for m in layers}
    else:
        assert model.undo_max_shift() is None
        bounds = {m: (h // 4, w // 4) for m, (h, w) in sizes.items()}
    for m in layers:
        dh, dw = m.last_undo_shift
        assert abs(dh) <= bounds[m][0] and abs(dw) <= bounds[m][1]
    if undo_range == 'input':
        # Seeded: some deep layer drew a shift its per-layer range forbids.
        assert any(abs(m.last_undo_shift[0]) > sizes[m][0] // 4 or
                   abs(m.last_undo_shift[1]) > sizes[m][1] // 4
                   for m in layers)
    fixed = MODELS.build(segmentor_cfg(tips_cfg=dict(
        undo_range=undo_range, undo_shift=(1, 2))))
    assert fixed.undo_max_shift() == (1, 2)


@pytest.mark.parametrize('detach', [True, False])
def test_segmentor_loss_undo_equals_the_release_formula(detach):
    """loss_undo = alpha * mean over stages of MSE(psi(X), T(X)) with main
    branch and shortcut pooled, T a circular shift of the layer's INPUT;
    with undo_detach=False the target's gradient reaches the stem."""
    model = MODELS.build(segmentor_cfg(tips_cfg=dict(
        undo_start=0.0, alpha=0.25, undo_detach=detach))).train()
    inputs = record_inputs(model)
    torch.manual_seed(2)
    losses = model.loss(*batch())
    stem_weight = model.backbone.stem[0].weight
    got = torch.autograd.grad(losses['loss_undo'], stem_weight,
                              retain_graph=True)[0]

    def by_hand(detached):
        per_stage = []
        for stage in tips_stages(model):
            sq = n = 0
            for m in stage:
                x = inputs[m]
                assert max(abs(d) for d in m.last_undo_shift) <= 8
                target = shifted_by_loops(x, *m.last_undo_shift)
                if detached:
                    target = target.detach()
                diff = psi_by_hand(m, x) - target
                sq, n = sq + diff.pow(2).sum(), n + diff.numel()
            per_stage.append(sq / n)
        return 0.25 * sum(per_stage) / len(per_stage)

    want = by_hand(detach)
    torch.testing.assert_close(losses['loss_undo'], want)
    want_grad = torch.autograd.grad(want, stem_weight, retain_graph=True)[0]
    torch.testing.assert_close(got, want_grad)
    other = torch.autograd.grad(by_hand(not detach), stem_weight)[0]
    assert not torch.allclose(got, other)


def test_pooling_a_stage_of_unequal_maps_is_a_clear_error():
    a, b = TIPS(2).train(), TIPS(3).train()
    a(torch.randn(1, 2, 8, 8))
    b(torch.randn(1, 3, 6, 6))
    with pytest.raises(ValueError, match="undo_reduction='layers'"):
        undo_loss([[a, b]], 'stages')
    # Per layer it is defined.
    assert undo_loss([[a, b]], 'layers') > 0


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages_leave_their_tips_layers_out(frozen_stages):
    """Frozen stages run in eval mode without gradients: their TIPS layers
    keep nothing for the regularizers, which take the trained ones only."""
    cfg = segmentor_cfg(tips_cfg=dict(undo_start=0.0))
    cfg['backbone'].update(frozen_stages=frozen_stages, strides=(1, 2, 2, 1),
                           dilations=(1, 1, 1, 2))
    model = MODELS.build(cfg).train()
    backbone = model.backbone
    frozen = [backbone.stem_down, backbone.maxpool]
    if frozen_stages >= 2:
        frozen += [backbone.layer2[0].down, backbone.layer2[0].shortcut_down]
    trained = [m for m in tips_layers(model)
               if all(m is not f for f in frozen)]
    assert trained and all(not m.training for m in frozen)
    assert tips_layers(model, training_only=True) == trained
    assert [m for s in tips_stages(model, training_only=True) for m in s] \
        == trained
    losses = losses_of(model)
    # L_FM of the trained layers alone, from their tau of this forward.
    model.train()
    torch.manual_seed(0)
    inputs, samples = batch()
    model.extract_feat(inputs)
    want = failure_mode_loss(trained)
    torch.testing.assert_close(losses['loss_fm'], want)
    assert losses['loss_undo'] > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for m in frozen:
        assert m.psi_conv.weight.grad is None
    for m in trained:
        assert m.psi_conv.weight.grad.abs().sum() > 0


def test_every_tips_layer_frozen_leaves_the_losses_alone():
    cfg = segmentor_cfg(tips_cfg=dict(undo_start=0.0))
    cfg['backbone'].update(frozen_stages=4)
    model = MODELS.build(cfg).train()
    plain_cfg = segmentor_cfg(seg_type='EncoderDecoder')
    plain_cfg['backbone'].update(frozen_stages=4)
    plain = MODELS.build(plain_cfg).train()
    plain.load_state_dict(model.state_dict())
    losses, plain_losses = losses_of(model), losses_of(plain)
    assert 'loss_fm' not in losses and 'loss_undo' not in losses
    for k, v in plain_losses.items():
        torch.testing.assert_close(losses[k], v)


def test_eps_is_a_deprecated_alias_of_undo_start():
    with pytest.warns(DeprecationWarning, match='rename it to undo_start'):
        model = MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.4)))
    assert model.tips_cfg['undo_start'] == 0.4 and 'eps' not in model.tips_cfg
    model.set_train_progress(39, 100)
    assert not model.undo_active()
    model.set_train_progress(40, 100)
    assert model.undo_active()
    with pytest.raises(ValueError, match="both 'eps' and 'undo_start'"):
        MODELS.build(segmentor_cfg(tips_cfg=dict(eps=0.4, undo_start=0.4)))


def loss_and_grad(tips_cfg):
    """Total loss and the stem conv's gradient of one training step (same
    weights, data and L_undo shifts for every tips_cfg)."""
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg(tips_cfg=tips_cfg)).train()
    with torch.no_grad():  # tau far from uniform: layers' L_FM differ
        for m in tips_layers(model):
            m.logit_scale.weight.normal_(0, 20)
    model.set_train_progress(50, 100)  # L_undo on (undo_start 0.21)
    losses = losses_of(model, seed=1)
    total, _ = model.parse_losses(losses)
    total.backward()
    return total.detach(), model.backbone.stem[0].weight.grad.clone()


@pytest.mark.parametrize('key, default, other', [
    ('lambda_fm', 1.0, 2.0),
    ('alpha', 0.35, 0.2),
    ('undo_start', 0.21, 0.6),
    ('undo_mode', 'circular', 'standard'),
    ('undo_range', 'input', 'layer'),
    ('undo_shift', None, 1),
    ('undo_detach', True, False),
    ('fm_reduction', 'channels', 'layers'),
    ('undo_reduction', 'stages', 'layers'),
])
def test_every_tips_cfg_key_reaches_the_loss(key, default, other):
    """The training step changes when, and only when, the key's value
    changes: a key the segmentor ignored would fail the second check."""
    base = loss_and_grad({})
    same = loss_and_grad({key: default})
    changed = loss_and_grad({key: other})
    assert torch.equal(same[0], base[0]) and torch.equal(same[1], base[1])
    if key == 'undo_detach':
        # Same value; the target's gradient reaches the layers before TIPS.
        torch.testing.assert_close(changed[0], base[0])
        assert not torch.allclose(changed[1], base[1])
    else:
        assert not torch.allclose(changed[0], base[0])


MIT = dict(type='MixVisionTransformer', in_channels=3, embed_dims=64,
           num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
           patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
           out_indices=(0, 1, 2, 3), mlp_ratio=1)


def release_init_ratio(model):
    """psi's std over the release's (Kaiming fan_out) std, all layers."""
    psi = [m.psi_conv.weight.flatten() / (2 / (9 * m.channels))**0.5
           for m in tips_layers(model)]
    return torch.cat(psi).std().item()


@pytest.mark.parametrize('pretrained', [False, True])
def test_release_init_also_under_a_backbone_that_inits_itself(
        tmp_path, pretrained):
    """MiT's init_weights sets every conv itself (no child's init): the
    segmentor puts the release's init back on its TIPS layers, unless a
    checkpoint may have loaded them."""
    torch.manual_seed(0)
    mit = dict(MIT)
    if pretrained:
        trained = MODELS.build(dict(type='ShiftInvariantWrapper',
                                    backbone=MIT,
                                    downsample_cfg=dict(type='TIPS')))
        with torch.no_grad():
            for m in tips_layers(trained):
                m.psi_conv.weight.fill_(0.25)
        torch.save({'state_dict': trained.backbone.state_dict()},
                   tmp_path / 'mit.pth')
        mit['init_cfg'] = dict(type='Pretrained',
                               checkpoint=str(tmp_path / 'mit.pth'))
    model = MODELS.build(dict(
        type='TIPSEncoderDecoder',
        backbone=dict(type='ShiftInvariantWrapper', backbone=mit,
                      downsample_cfg=dict(type='TIPS')),
        decode_head=dict(type='SegformerHead', in_channels=[64] * 4,
                         in_index=[0, 1, 2, 3], channels=8, num_classes=3,
                         norm_cfg=BN,
                         loss_decode=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    if pretrained:
        assert all((m.psi_conv.weight == 0.25).all()
                   for m in tips_layers(model))
    else:
        assert 0.85 < release_init_ratio(model) < 1.15
