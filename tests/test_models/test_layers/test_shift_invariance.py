"""Exact circular-shift properties of APS and LPS (eval)."""
import pytest
import torch

from tips_mmseg.models.layers import (APS, LPS, BlurPool, polyphase_unpool)

SHIFTS = [(0, 1), (1, 0), (1, 1), (3, -5), (-2, 7)]


def _coarse_match(y_shifted, y):
    """True if y_shifted is a circular shift of y on the coarse grid."""
    h, w = y.shape[-2:]
    return any(
        torch.equal(y_shifted, torch.roll(y, (i, j), dims=(-2, -1)))
        for i in range(h) for j in range(w))


@pytest.mark.parametrize('layer', [APS(4), LPS(4).eval()],
                         ids=['APS', 'LPS'])
@pytest.mark.parametrize('shift', SHIFTS)
def test_output_is_circularly_invariant(layer, shift):
    x = torch.randn(2, 4, 12, 16)
    y = layer(x)
    y_shifted = layer(torch.roll(x, shift, dims=(-2, -1)))
    for n in range(2):
        assert _coarse_match(y_shifted[n], y[n])
    # Same values, only moved: sorted values are identical.
    assert torch.equal(y_shifted.flatten(1).sort().values,
                       y.flatten(1).sort().values)


def test_strided_subsampling_is_not_invariant():
    x = torch.randn(1, 4, 12, 16)
    y = x[..., ::2, ::2]
    y_shifted = torch.roll(x, (0, 1), dims=(-2, -1))[..., ::2, ::2]
    assert not _coarse_match(y_shifted[0], y[0])


@pytest.mark.parametrize('shift', SHIFTS)
def test_aps_down_then_unpool_is_circularly_equivariant(shift):
    layer = APS(4)
    x = torch.randn(2, 4, 12, 16)
    x_shifted = torch.roll(x, shift, dims=(-2, -1))
    up = polyphase_unpool(layer(x), layer.last_weights)
    up_shifted = polyphase_unpool(layer(x_shifted), layer.last_weights)
    assert torch.equal(up_shifted, torch.roll(up, shift, dims=(-2, -1)))


def test_aps_keeps_the_largest_norm_component():
    x = torch.zeros(1, 2, 4, 4)
    x[..., 1::2, 0::2] = 3.  # component (1, 0) = index 2
    x[..., 0::2, 0::2] = 1.
    layer = APS(2)
    assert torch.equal(layer(x), torch.full((1, 2, 2, 2), 3.))
    assert layer.last_weights.argmax(-1).item() == 2


def test_shortcut_can_follow_the_main_branch_choice():
    main, shortcut = APS(4), APS(8)
    x_main, x_short = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 8, 8)
    main(x_main)
    followed = shortcut(x_short, weights=main.last_weights)
    index = main.last_weights[:, 0].argmax(-1)
    for n in range(2):
        a, b = divmod(index[n].item(), 2)
        assert torch.equal(followed[n], x_short[n, :, a::2, b::2])


def test_lps_training_samples_soft_weights_and_eval_is_hard():
    layer = LPS(4, temperature=1.0)
    x = torch.randn(3, 4, 8, 8)
    layer.train()(x)
    soft = layer.last_weights
    torch.testing.assert_close(soft.sum(-1), torch.ones(3, 1))
    assert (soft < 1).all()
    layer.eval()(x)
    hard = layer.last_weights
    assert set(hard.unique().tolist()) <= {0., 1.}
    assert torch.equal(hard[:, 0].argmax(-1), layer.last_logits.argmax(-1))


def test_lps_temperature_must_be_positive():
    layer = LPS(4)
    layer.temperature = 0.1
    assert layer.temperature == 0.1
    with pytest.raises(ValueError, match='temperature'):
        layer.temperature = 0


@pytest.mark.parametrize('filter_size', [1, 2, 3, 4, 5])
@pytest.mark.parametrize('size', [(8, 8), (5, 3), (1, 1)])
def test_blurpool_keeps_constants(filter_size, size):
    layer = BlurPool(3, filter_size=filter_size)
    y = layer(torch.full((1, 3, *size), 2.5))
    torch.testing.assert_close(y, torch.full_like(y, 2.5))


def test_blurpool_filter_is_binomial():
    layer = BlurPool(1, filter_size=3)
    expected = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]) / 16
    torch.testing.assert_close(layer.kernel[0, 0], expected)


def _close_coarse_match(y_shifted, y, atol=1e-6):
    h, w = y.shape[-2:]
    return any(
        torch.allclose(y_shifted, torch.roll(y, (i, j), dims=(-2, -1)),
                       atol=atol)
        for i in range(h) for j in range(w))


@pytest.mark.parametrize('cfg, size', [
    (dict(type='APS', channels=6, filter_size=3), (6, 6)),
    (dict(type='LPS', channels=6, filter_size=3), (6, 6)),
    (dict(type='APS', channels=6, filter_size=4), (4, 8)),
    (dict(type='LPS', channels=6, filter_size=4), (8, 6)),
    (dict(type='LPS', channels=6, stride=4), (8, 8)),
    (dict(type='LPS', channels=6, stride=4, filter_size=3), (4, 12)),
    (dict(type='APS', channels=6, stride=4), (12, 8)),
])
def test_every_circular_shift_of_an_even_map(cfg, size):
    """Built from a config, eval, every shift of the map: each
    sample's output is its unshifted output moved on the coarse grid
    (filtered layers pad their low-pass circularly; stride s needs sides
    that are multiples of s)."""
    from tips_mmseg.models.layers import build_downsample
    torch.manual_seed(0)
    cfg = dict(cfg)
    layer = build_downsample(cfg, cfg.pop('channels')).eval()
    x = torch.randn(3, 6, *size)
    with torch.no_grad():
        y = layer(x)
        for dh in range(size[0]):
            for dw in range(size[1]):
                y_shifted = layer(torch.roll(x, (dh, dw), dims=(-2, -1)))
                for n in range(3):
                    assert _close_coarse_match(y_shifted[n], y[n]), (dh, dw)
