"""Placement, shapes, state-dict compatibility and exact circular
invariance of the shift-invariant ResNets."""
import pytest
import torch
from mmseg.models.backbones import ResNet, ResNetV1c

import tips_mmseg  # noqa: F401
from tips_mmseg.models import (APS, LPS, TIPS, BlurPool, PolyphaseFollower,
                               ShiftInvariantResNet, ShiftInvariantResNetV1c,
                               TIPSResNetV1c)

BN = dict(type='BN', requires_grad=True)
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)
D16 = dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
           contract_dilation=True)
LAYERS = dict(TIPS=TIPS, APS=APS, LPS=LPS, BlurPool=BlurPool)


def count(model, cls):
    return sum(type(m) is cls for m in model.modules())


@pytest.mark.parametrize('down', ['TIPS', 'BlurPool', 'APS', 'LPS'])
@pytest.mark.parametrize('depth', [18, 50])
def test_downsampler_count_and_placement(down, depth):
    model = ShiftInvariantResNetV1c(depth=depth, downsample_cfg=down,
                                    norm_cfg=BN)
    # stem conv + max-pool + one per strided stage (2, 3, 4).
    main, shortcut = 2 + 3, 3
    cls = LAYERS[down]
    if down in ('APS', 'LPS'):  # shortcuts follow the main branch
        assert count(model, cls) == main
        assert count(model, PolyphaseFollower) == shortcut
    else:
        assert count(model, cls) == main + shortcut
        assert count(model, PolyphaseFollower) == 0
    assert model.stem[0].stride == (1, 1)
    assert isinstance(model.maxpool, cls)
    strided = [m for m in model.modules()
               if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert strided == []
    assert list(model.main_downsamplers()) == [
        'stem_down', 'maxpool', 'layer2.0.down', 'layer3.0.down',
        'layer4.0.down'
    ]


@pytest.mark.parametrize('down', ['TIPS', 'APS'])
def test_dilated_stages_untouched(down):
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    norm_cfg=BN, **D8)
    assert model.layer3[0].down is None and model.layer4[0].down is None
    assert model.layer3[0].conv1.dilation == (1, 1)  # contracted
    assert model.layer4[1].conv1.dilation == (4, 4)
    assert len(model.main_downsamplers()) == 3


@pytest.mark.parametrize('down', [None, 'TIPS', 'BlurPool', 'APS', 'LPS'])
@pytest.mark.parametrize('arch', [D8, D16, {}], ids=['d8', 'd16', 'd32'])
@pytest.mark.parametrize('size', [(64, 64), (37, 50)])
def test_output_shapes_match_vanilla(down, arch, size):
    vanilla = ResNetV1c(depth=18, norm_cfg=BN, **arch)
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    norm_cfg=BN, **arch)
    x = torch.randn(2, 3, *size)
    assert [o.shape for o in model(x)] == [o.shape for o in vanilla(x)]


@pytest.mark.parametrize('style', ['pytorch', 'caffe'])
def test_bottleneck_styles_and_plain_stem(style):
    vanilla = ResNet(depth=50, style=style, norm_cfg=BN)
    model = ShiftInvariantResNet(depth=50, style=style, norm_cfg=BN,
                                 downsample_cfg='BlurPool')
    block = model.layer2[0]
    assert block.down_after_conv1 == (style == 'caffe')
    assert (block.conv1 if style == 'caffe' else block.conv2).stride == (1, 1)
    x = torch.randn(1, 3, 45, 45)
    assert [o.shape for o in model(x)] == [o.shape for o in vanilla(x)]


def test_vanilla_is_resnetv1c():
    torch.manual_seed(1)
    vanilla = ResNetV1c(depth=18, norm_cfg=BN, **D8)
    vanilla.eval()  # mmseg's ResNet.train() returns None
    model = ShiftInvariantResNetV1c(depth=18, norm_cfg=BN, **D8).eval()
    model.load_state_dict(vanilla.state_dict())
    x = torch.randn(1, 3, 48, 48)
    for a, b in zip(model(x), vanilla(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('depth', [18, 50, 101])
def test_resnetv1c_state_dict_loads(depth):
    vanilla = ResNetV1c(depth=depth, norm_cfg=BN, **D8).state_dict()
    model = TIPSResNetV1c(depth=depth, norm_cfg=BN, **D8)
    result = model.load_state_dict(vanilla, strict=False)
    assert result.unexpected_keys == []
    new = {k for k in model.state_dict() if k not in vanilla}
    assert set(result.missing_keys) == new
    assert new and all(
        k.startswith(('stem_down.', 'maxpool.')) or '.down.' in k
        or '.shortcut_down.' in k for k in new)
    # every original parameter was loaded
    for k, v in vanilla.items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_tips_default_and_frozen_stem():
    model = TIPSResNetV1c(depth=18, norm_cfg=BN, frozen_stages=1)
    assert isinstance(model.stem_down, TIPS)
    assert not any(p.requires_grad for p in model.stem_down.parameters())
    assert not any(p.requires_grad for p in model.maxpool.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())


def test_unknown_downsampler_is_a_clear_error():
    with pytest.raises(KeyError, match='Unknown downsampling layer'):
        ShiftInvariantResNetV1c(depth=18, downsample_cfg='MaxPool')


def roll(x, dh, dw):
    return torch.roll(x, (dh, dw), dims=(-2, -1))


@pytest.mark.parametrize('down', ['APS', 'LPS'])
def test_circular_model_exactly_invariant_in_pooled_features(down):
    """Circular padding + APS/LPS (eval): a circular shift of the input
    moves every feature map by a circular shift (on its own grid), so the
    global average of the last stage does not change, for ANY shift."""
    torch.manual_seed(0)
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg=down,
                                    circular_padding=True, norm_cfg=BN,
                                    **D8).eval()
    vanilla = ShiftInvariantResNetV1c(depth=18, circular_padding=True,
                                      norm_cfg=BN, **D8).eval()
    x = torch.randn(2, 3, 64, 64)

    def pooled(net, inp):
        with torch.no_grad():
            return net(inp)[-1].mean(dim=(2, 3))

    ref, ref_vanilla = pooled(model, x), pooled(vanilla, x)
    worst_vanilla = 0.
    for dh, dw in [(1, 0), (0, 1), (1, 1), (3, 5), (-7, 2)]:
        shifted = roll(x, dh, dw)
        torch.testing.assert_close(pooled(model, shifted), ref,
                                   rtol=1e-4, atol=1e-5)
        worst_vanilla = max(worst_vanilla, (pooled(vanilla, shifted) -
                                            ref_vanilla).abs().max().item())
    # the property is not trivial: the strided vanilla net changes
    assert worst_vanilla > 1e-3


def test_shortcut_follows_main_branch_choice():
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg='APS',
                                    norm_cfg=BN).eval()
    model(torch.randn(2, 3, 32, 32))
    block = model.layer2[0]
    torch.testing.assert_close(block.shortcut_down.last_weights,
                               block.down.last_weights)


def test_lps_shortcut_trains_the_scorer_unless_detached():
    """In a residual block the shortcut's gradient reaches the main
    branch's scorer through the shared soft sample (LPS's release);
    ``detach_shared=True`` cuts exactly that path."""
    x = torch.randn(2, 3, 32, 32)
    grads = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = ShiftInvariantResNetV1c(
            depth=18, norm_cfg=BN,
            downsample_cfg=dict(type='LPS', detach_shared=detach)).train()
        block = model.layer2[0]
        seen = {}
        block.shortcut_down.register_forward_hook(
            lambda m, i, o: seen.update(short=o))
        torch.manual_seed(1)  # the same Gumbel noise in both runs
        model(x)
        # The shortcut's output only: the main branch adds nothing here.
        seen['short'].sum().backward()
        grads[detach] = block.down.scorer.conv1.weight.grad
    assert grads[False] is not None and grads[False].abs().sum() > 0
    assert grads[True] is None


def test_lps_eval_is_one_hot_and_train_is_soft():
    model = ShiftInvariantResNetV1c(depth=18, downsample_cfg='LPS',
                                    norm_cfg=BN)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    model(x)
    w = model.layer2[0].down.last_weights
    assert ((w > 0) & (w < 1)).any()
    model.eval()
    model(x)
    w = model.layer2[0].down.last_weights
    assert set(w.unique().tolist()) <= {0., 1.}


# --- the baselines as their authors ship them (keep_stem_max, per-stage LPS
# width, low-pass in residual blocks) ---

def ref_stem_max(x, kernel):
    """Max over a k x k window at stride 1, written out: k=2 pads one
    row/column circularly at the bottom/right (APS/LPS), k=3 pads 1 with
    -inf (the stem max-pool's own padding)."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            if kernel == 2:
                window = [x[:, :, (i + u) % h, (j + v) % w]
                          for u in range(2) for v in range(2)]
            else:
                window = [x[:, :, i + u, j + v] for u in (-1, 0, 1)
                          for v in (-1, 0, 1)
                          if 0 <= i + u < h and 0 <= j + v < w]
            out[:, :, i, j] = torch.stack(window).amax(dim=0)
    return out


@pytest.mark.parametrize('kernel', [2, 3])
@pytest.mark.parametrize('down', ['BlurPool', 'APS', 'TIPS'])
def test_keep_stem_max_structure(down, kernel):
    torch.manual_seed(0)
    kw = dict(depth=18, norm_cfg=BN, keep_stem_max=True,
              stem_max_kernel=kernel)
    model = (TIPSResNetV1c(**kw) if down == 'TIPS' else
             ShiftInvariantResNetV1c(downsample_cfg=down, **kw)).eval()
    plain = ShiftInvariantResNetV1c(depth=18, norm_cfg=BN,
                                    downsample_cfg=down).eval()
    # no new parameter or buffer: mmseg's ResNetV1c names all still load
    assert set(model.state_dict()) == set(plain.state_dict())
    assert set(ResNetV1c(depth=18, norm_cfg=BN).state_dict()) <= set(
        model.state_dict())
    assert not list(model.stem_max.parameters())
    seen = {}
    model.stem_max.register_forward_hook(
        lambda m, i, o: seen.update(max_in=i[0], max_out=o))
    model.maxpool.register_forward_hook(
        lambda m, i, o: seen.update(down_in=i[0]))
    x = torch.randn(2, 3, 37, 50)
    with torch.no_grad():
        outs = model(x)
        ref_outs = plain(x)
    # max at stride 1 (same size), then the downsampler on its output
    assert seen['max_out'].shape == seen['max_in'].shape
    assert seen['down_in'] is seen['max_out']
    torch.testing.assert_close(seen['max_out'],
                               ref_stem_max(seen['max_in'], kernel))
    assert [o.shape for o in outs] == [o.shape for o in ref_outs]


def test_keep_stem_max_needs_a_downsampler():
    with pytest.raises(ValueError, match='keep_stem_max'):
        ShiftInvariantResNetV1c(depth=18, keep_stem_max=True)
    with pytest.raises(ValueError, match='stem_max_kernel'):
        ShiftInvariantResNetV1c(depth=18, downsample_cfg='APS',
                                keep_stem_max=True, stem_max_kernel=4)


def test_lps_hidden_width_per_stage():
    """LPS's ResNets: the stem's two layers get the first width, the
    downsampler of layer{i+1} the i-th; shortcuts have no scorer."""
    model = ShiftInvariantResNetV1c(
        depth=18, norm_cfg=BN,
        downsample_cfg=dict(type='LPS', hidden_channels=(8, 16, 24, 32)))
    hid = {name: m.scorer.conv1.out_channels
           for name, m in model.main_downsamplers().items()}
    assert hid == {'stem_down': 8, 'maxpool': 8, 'layer2.0.down': 16,
                   'layer3.0.down': 24, 'layer4.0.down': 32}
    assert model.layer3[0].down.scorer.conv2.out_channels == 24  # 'lps' head
    assert isinstance(model.layer3[0].shortcut_down, PolyphaseFollower)
    with pytest.raises(ValueError, match='one entry per stage'):
        ShiftInvariantResNetV1c(
            depth=18, norm_cfg=BN,
            downsample_cfg=dict(type='LPS', hidden_channels=(8, 16)))


def test_stem_down_cfg_overrides_only_the_first_stem_layer():
    model = ShiftInvariantResNetV1c(
        depth=18, norm_cfg=BN, downsample_cfg=dict(type='LPS', filter_size=3),
        stem_down_cfg=dict(filter_size=1))
    assert model.stem_down.filter_size == 1
    assert model.maxpool.filter_size == 3
    assert model.layer2[0].down.filter_size == 3


@pytest.mark.parametrize('down', ['APS', 'LPS'])
def test_filtered_shortcut_follows_main_branch(down):
    """Paper-protocol stem and blocks stay exactly circularly invariant."""
    model = ShiftInvariantResNetV1c(
        depth=18, norm_cfg=BN, circular_padding=True, keep_stem_max=True,
        downsample_cfg=dict(type=down, filter_size=3,
                            odd_padding='circular-bottom-right')).eval()
    block = model.layer2[0]
    assert (block.shortcut_down.filter_size,
            block.shortcut_down.odd_padding) == (3, 'circular-bottom-right')
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)[-1].mean(dim=(2, 3))
        torch.testing.assert_close(block.shortcut_down.last_weights,
                                   block.down.last_weights)
        for shift in [(1, 0), (0, 1), (3, 5)]:
            torch.testing.assert_close(
                model(roll(x, *shift))[-1].mean(dim=(2, 3)), ref,
                rtol=1e-4, atol=1e-4)  # float sums in another order


# --- TIPS initialisation (the release's Kaiming fan_out) whatever the
# backbone's init_cfg ---

def tips_weight_spread(model):
    """Std of every TIPS weight divided by the release's std for it
    (Kaiming normal, fan_out, ReLU): sqrt(2 / (9 C)) for psi's taps,
    sqrt(2 / C) for the scales; about 1 under the release's init."""
    psi, scale = [], []
    for m in model.modules():
        if isinstance(m, TIPS):
            c = m.channels
            psi.append(m.psi_conv.weight.flatten() / (2 / (9 * c))**0.5)
            scale.append(m.logit_scale.weight.flatten() / (2 / c)**0.5)
    return torch.cat(psi).std().item(), torch.cat(scale).std().item()


@pytest.mark.parametrize('init_cfg', [
    'pretrained', None, dict(type='Normal', layer='Conv2d', std=0.01)])
def test_tips_layers_get_the_release_init(tmp_path, init_cfg):
    torch.manual_seed(0)
    if init_cfg == 'pretrained':
        # A tiny ImageNet-style checkpoint: mmseg's ResNetV1c, no TIPS.
        vanilla = ResNetV1c(depth=18, norm_cfg=BN)
        torch.save({'state_dict': vanilla.state_dict()}, tmp_path / 'r18.pth')
        init_cfg = dict(type='Pretrained',
                        checkpoint=str(tmp_path / 'r18.pth'))
    model = TIPSResNetV1c(depth=18, norm_cfg=BN, init_cfg=init_cfg)
    # PyTorch's default init would leave both ratios 3-15x too large.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TIPS):
                torch.nn.init.uniform_(m.psi_conv.weight, -1, 1)
                torch.nn.init.uniform_(m.logit_scale.weight, -1, 1)
    assert min(tips_weight_spread(model)) > 2
    model.init_weights()
    psi, scale = tips_weight_spread(model)
    assert 0.9 < psi < 1.1 and 0.85 < scale < 1.15, (psi, scale)
    if isinstance(init_cfg, dict) and init_cfg['type'] == 'Pretrained':
        # ... while the backbone's own weights come from the checkpoint.
        torch.testing.assert_close(model.layer3[0].conv2.weight,
                                   vanilla.layer3[0].conv2.weight)
        torch.testing.assert_close(model.stem[0].weight,
                                   vanilla.stem[0].weight)


def test_a_checkpoint_with_tips_weights_wins_over_the_init(tmp_path):
    torch.manual_seed(0)
    trained = TIPSResNetV1c(depth=18, norm_cfg=BN)
    with torch.no_grad():
        trained.layer2[0].down.logit_scale.weight.fill_(3.)
    torch.save({'state_dict': trained.state_dict()}, tmp_path / 'tips.pth')
    model = TIPSResNetV1c(depth=18, norm_cfg=BN, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'tips.pth')))
    model.init_weights()
    assert (model.layer2[0].down.logit_scale.weight == 3.).all()
    torch.testing.assert_close(model.maxpool.psi_conv.weight,
                               trained.maxpool.psi_conv.weight)


def test_a_tips_layer_built_alone_has_the_release_init():
    torch.manual_seed(0)
    layer = TIPS(2048)
    assert abs(layer.psi_conv.weight.std().item() /
               (2 / (9 * 2048))**0.5 - 1) < 0.05
    assert abs(layer.logit_scale.weight.std().item() / (2 / 2048)**0.5
               - 1) < 0.1


def test_max_blur_pool_stem_as_the_issue_builds_it():
    """MaxBlurPool: the stem max-pool is an nn.MaxPool2d of stride 1,
    visible as a module, followed by the downsampler."""
    from mmseg.registry import MODELS
    model = MODELS.build(dict(type='ShiftInvariantResNetV1c', depth=18,
                              downsample_cfg=dict(type='BlurPool'),
                              keep_stem_max=True)).eval()
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 1 and pools[0] is model.stem_max.pool
    assert pools[0].stride == 1 and pools[0].kernel_size == 2
    assert isinstance(model.maxpool, BlurPool)
    seen = []
    for m in (model.stem_max, model.maxpool):
        m.register_forward_hook(lambda m, i, o: seen.append((m, i[0], o)))
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    (pool, _, pooled), (blur, blur_in, blurred) = seen
    assert blur_in is pooled and blurred.shape[-2:] == (16, 16)
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
