"""APS/LPS as their authors ship them: low-pass before the choice, odd
padding modes, LPS's logits net - against loop-by-loop references written
here from the method description (no helper of the layers is used)."""
import pytest
import torch
import torch.nn.functional as F

from tips_mmseg.models.layers import (APS, LPS, TIPS, BlurPool,
                                      PolyphaseFollower, build_downsample,
                                      pad_to_even, polyphase_unpool)

TAPS = {1: [1.], 2: [1., 1.], 3: [1., 2., 1.], 4: [1., 3., 3., 1.],
        5: [1., 4., 6., 4., 1.]}


def ref_lowpass(x, k):
    """Binomial low-pass, circular, stride 1, pixel by pixel: taps t, filter
    t t^T / sum, window from (k-1)//2 before to k//2 after each pixel."""
    t = torch.tensor(TAPS[k], dtype=torch.float64)
    f = torch.outer(t, t) / t.sum()**2
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h, w, dtype=torch.float64)
    before = (k - 1) // 2
    for i in range(h):
        for j in range(w):
            for u in range(k):
                for v in range(k):
                    out[:, :, i, j] += f[u, v] * x[:, :, (i - before + u) % h,
                                                   (j - before + v) % w]
    return out


def ref_pad(x, mode):
    """One row/column added where H/W is odd, written out per mode."""
    n, c, h, w = x.shape
    # ours reflects; a map with a side of 1 is replicated (both sides)
    reflect = min(h, w) > 1
    if h % 2:
        if mode == 'reflect-top-left':
            row = x[:, :, 1:2] if reflect else x[:, :, :1]
            x = torch.cat([row, x], dim=2)
        elif mode == 'circular-bottom-right':
            x = torch.cat([x, x[:, :, :1]], dim=2)
        else:
            x = torch.cat([x, torch.zeros_like(x[:, :, :1])], dim=2)
    if w % 2:
        if mode == 'reflect-top-left':
            col = x[..., 1:2] if reflect else x[..., :1]
            x = torch.cat([col, x], dim=3)
        elif mode == 'circular-bottom-right':
            x = torch.cat([x, x[..., :1]], dim=3)
        else:
            x = torch.cat([x, torch.zeros_like(x[..., :1])], dim=3)
    return x


def ref_components(x):
    """Component k = 2a + b holds x[2i + a, 2j + b]."""
    n, c, h, w = x.shape
    comps = torch.zeros(4, n, c, h // 2, w // 2, dtype=x.dtype)
    for a in range(2):
        for b in range(2):
            for i in range(h // 2):
                for j in range(w // 2):
                    comps[2 * a + b, :, :, i, j] = x[:, :, 2 * i + a,
                                                     2 * j + b]
    return comps


def ref_aps(x, k, mode):
    z = ref_pad(ref_lowpass(x.double(), k) if k > 1 else x.double(), mode)
    comps = ref_components(z)
    out = []
    for n in range(x.shape[0]):
        norms = [comps[c, n].pow(2).sum() for c in range(4)]
        out.append(comps[int(torch.stack(norms).argmax()), n])
    return torch.stack(out)


def test_odd_padding_values_on_a_tiny_odd_map():
    x = torch.arange(1., 10.).view(1, 1, 3, 3)
    expected = {
        'reflect-top-left': [[5, 4, 5, 6], [2, 1, 2, 3], [5, 4, 5, 6],
                             [8, 7, 8, 9]],
        'circular-bottom-right': [[1, 2, 3, 1], [4, 5, 6, 4], [7, 8, 9, 7],
                                  [1, 2, 3, 1]],
        'zero-bottom-right': [[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 9, 0],
                              [0, 0, 0, 0]],
    }
    for mode, values in expected.items():
        got = pad_to_even(x, mode)
        assert got[0, 0].tolist() == values, mode
        assert torch.equal(got, ref_pad(x, mode))
    # 1-wide maps: reflect falls back to replicate, the others still work
    for mode in expected:
        y = torch.randn(1, 2, 1, 5)
        assert torch.equal(pad_to_even(y, mode), ref_pad(y, mode))
    with pytest.raises(ValueError, match='odd_padding must be one of'):
        pad_to_even(x, 'reflect')


def test_lowpass_is_the_hand_computed_binomial_filter():
    layer = APS(1, filter_size=3)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 0] = 16.  # an impulse at a corner: wraps around circularly
    y = layer.lowpass(x)[0, 0]
    expected = torch.zeros(5, 5)
    for (i, j), v in {(0, 0): 4, (0, 1): 2, (1, 0): 2, (1, 1): 1, (4, 0): 2,
                      (0, 4): 2, (4, 4): 1, (1, 4): 1, (4, 1): 1}.items():
        expected[i, j] = v
    assert torch.equal(y, expected)
    for k in (2, 3, 4, 5):
        x = torch.randn(2, 3, 7, 6)
        torch.testing.assert_close(
            APS(3, filter_size=k).lowpass(x).double(), ref_lowpass(x, k))


@pytest.mark.parametrize('mode', ['reflect-top-left', 'circular-bottom-right',
                                  'zero-bottom-right'])
@pytest.mark.parametrize('k', [1, 3, 4])
@pytest.mark.parametrize('size', [(6, 8), (5, 7)])
def test_aps_matches_loop_reference(mode, k, size):
    torch.manual_seed(0)
    x = torch.randn(3, 4, *size)
    layer = APS(4, filter_size=k, odd_padding=mode)
    torch.testing.assert_close(layer(x).double(), ref_aps(x, k, mode))


def test_filter_size_one_is_bit_for_bit_the_plain_layer():
    x = torch.randn(2, 4, 9, 10)
    assert APS(4, filter_size=1).lowpass is None
    assert torch.equal(APS(4, filter_size=1)(x), APS(4)(x))
    assert torch.equal(APS(4)(x), ref_aps(x, 1, 'reflect-top-left').float())
    assert APS(4, filter_size=3).state_dict().keys() == set()  # no params


@pytest.mark.parametrize('name', ['APS', 'LPS'])
@pytest.mark.parametrize('k', [3, 4])
@pytest.mark.parametrize('shift', [(0, 1), (1, 0), (1, 1), (3, -5)])
def test_filtered_choice_stays_exactly_circularly_invariant(name, k, shift):
    torch.manual_seed(1)
    layer = build_downsample(dict(type=name, filter_size=k), 4).eval()
    x = torch.randn(2, 4, 12, 16)
    with torch.no_grad():
        y = layer(x)
        y_shifted = layer(torch.roll(x, shift, dims=(-2, -1)))
    h, w = y.shape[-2:]
    for n in range(2):
        assert any(
            torch.allclose(y_shifted[n], torch.roll(y[n], (i, j), (-2, -1)),
                           atol=1e-6)
            for i in range(h) for j in range(w))
    # The low-pass really acts (else the test proves nothing new).
    plain = build_downsample(name, 4).eval()
    plain.load_state_dict(layer.state_dict())
    with torch.no_grad():
        assert not torch.allclose(plain(x), y)


def ref_lps_logits(layer, x, hid_out):
    """LPS's logits net per component: conv3x3 (circular) - ReLU - conv3x3
    (circular) - mean over (channels, h, w)."""
    s = layer.scorer
    assert s.conv2.out_channels == hid_out
    logits = []
    comps = ref_components(pad_to_even(x))
    for k in range(4):
        h = F.relu(F.conv2d(F.pad(comps[k].float(), (1, 1, 1, 1),
                                  mode='circular'), s.conv1.weight,
                            s.conv1.bias))
        o = F.conv2d(F.pad(h, (1, 1, 1, 1), mode='circular'), s.conv2.weight,
                     s.conv2.bias)
        logits.append(o.mean(dim=(1, 2, 3)))
    return torch.stack(logits, dim=1)


def test_lps_scorer_as_the_authors_ship_it():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, 6)
    layer = LPS(5, hidden_channels=7).eval()  # default: the authors' head
    assert layer.scorer_type == 'lps'
    assert layer.scorer.conv1.in_channels == 5
    assert layer.scorer.conv1.out_channels == 7
    assert layer.scorer.conv2.in_channels == 7
    layer(x)
    torch.testing.assert_close(layer.last_logits, ref_lps_logits(layer, x, 7))
    compact = LPS(5, hidden_channels=7, scorer='compact').eval()
    compact(x)
    torch.testing.assert_close(compact.last_logits,
                               ref_lps_logits(compact, x, 1))
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(layer) - params(compact) == 7 * 7 * 9 + 7 - (7 * 9 + 1)
    with pytest.raises(ValueError, match='scorer must be one of'):
        LPS(5, scorer='mlp')
    with pytest.raises(ValueError, match='per-stage sequence'):
        LPS(5, hidden_channels=(8, 16))


def test_lps_logits_see_the_filtered_map():
    torch.manual_seed(0)
    layer = LPS(3, hidden_channels=4, filter_size=3).eval()
    x = torch.randn(2, 3, 8, 8)
    layer(x)
    filtered = ref_lowpass(x, 3).float()
    torch.testing.assert_close(layer.last_logits,
                               ref_lps_logits(layer, filtered, 4))


def test_every_polyphase_layer_takes_odd_padding_through_the_builder():
    x = torch.randn(1, 3, 5, 5)
    tips = build_downsample(dict(type='TIPS', odd_padding='zero-bottom-right'),
                            3)
    assert isinstance(tips, TIPS) and tips.odd_padding == 'zero-bottom-right'
    assert tips(x).shape[-2:] == (3, 3)
    # TIPS takes it directly too: the zero row/column at the bottom/right
    # is what its mix sees (component (1, 1)'s last row/column).
    direct = TIPS(3, odd_padding='zero-bottom-right')
    direct.load_state_dict(tips.state_dict())
    torch.testing.assert_close(direct(x), tips(x))
    assert direct(x).shape[-2:] == (3, 3)
    for name in ('APS', 'LPS'):
        layer = build_downsample(
            dict(type=name, odd_padding='circular-bottom-right'), 3)
        assert layer.odd_padding == 'circular-bottom-right'
    with pytest.raises(ValueError, match='odd_padding must be one of'):
        build_downsample(dict(type='APS', odd_padding='edge'), 3)
    with pytest.raises(ValueError, match="BlurPool pads by its 'pad_mode'"):
        build_downsample(dict(type='BlurPool', odd_padding='zero-bottom-right'
                              ), 3)


@pytest.mark.parametrize('mode', ['reflect-top-left', 'circular-bottom-right',
                                  'zero-bottom-right'])
def test_unpool_crops_the_side_that_was_padded(mode):
    x = torch.randn(1, 2, 5, 7)
    layer = APS(2, odd_padding=mode)
    y = layer(x)
    up = polyphase_unpool(y, layer.last_weights, (5, 7), mode)
    padded = ref_pad(x, mode)
    full = polyphase_unpool(y, layer.last_weights)  # 6 x 8, padded frame
    assert up.shape[-2:] == (5, 7)
    if mode == 'reflect-top-left':
        assert torch.equal(up, full[..., 1:, 1:])
    else:
        assert torch.equal(up, full[..., :5, :7])
    # the kept pixels land where they came from in the padded map
    kept = full != 0
    assert torch.equal(full[kept], padded[kept])


def test_follower_copies_filter_and_padding():
    main = LPS(4, filter_size=3, odd_padding='zero-bottom-right')
    follower = main.make_follower(6)
    assert isinstance(follower, PolyphaseFollower)
    assert (follower.filter_size, follower.odd_padding) == (
        3, 'zero-bottom-right')
    assert isinstance(follower.lowpass, BlurPool)
    assert follower.lowpass.stride == 1


def ref_aps_per_channel(x):
    """The TIPS release's APS: odd maps padded by reflection at the
    top/left, then per sample AND channel the component of largest l2 norm
    over (h, w)."""
    z = ref_pad(x.double(), 'reflect-top-left')
    comps = ref_components(z)
    n, c = x.shape[:2]
    out = torch.zeros_like(comps[0])
    for i in range(n):
        for j in range(c):
            norms = [comps[k, i, j].pow(2).sum() for k in range(4)]
            out[i, j] = comps[int(torch.stack(norms).argmax()), i, j]
    return out


@pytest.mark.parametrize('size', [(6, 8), (5, 7)])
def test_per_channel_aps_matches_the_tips_release(size):
    torch.manual_seed(0)
    x = torch.randn(2, 5, *size)
    layer = APS(5, per_channel=True)
    y = layer(x)
    torch.testing.assert_close(y.double(), ref_aps_per_channel(x))
    # Channels really choose differently (else per sample would do).
    assert layer.last_weights.shape == (2, 5, 4)
    assert len(set(layer.last_weights.argmax(-1).flatten().tolist())) > 1
    assert not torch.allclose(y, APS(5)(x))
    with pytest.raises(ValueError, match='its own APS'):
        layer.make_follower(3)


def test_per_channel_aps_shortcut_chooses_on_its_own():
    from tips_mmseg.models import ShiftInvariantResNetV1c
    model = ShiftInvariantResNetV1c(
        depth=18, norm_cfg=dict(type='BN'),
        downsample_cfg=dict(type='APS', per_channel=True)).eval()
    block = model.layer2[0]
    assert type(block.shortcut_down) is APS
    assert block.shortcut_down.per_channel
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert block.shortcut_down.last_weights.shape == (1, 64, 4)
    assert block.down.last_weights.shape == (1, 128, 4)
