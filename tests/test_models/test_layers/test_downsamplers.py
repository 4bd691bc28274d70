"""Shape, dtype and memory-layout contract shared by every downsampler."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg.registry import MODELS
from tips_mmseg.models.layers import DOWNSAMPLE_LAYERS, build_downsample


@pytest.mark.parametrize('name', DOWNSAMPLE_LAYERS)
@pytest.mark.parametrize('size', [(8, 8), (7, 9), (2, 2), (1, 1)])
@pytest.mark.parametrize('training', [True, False])
def test_output_is_ceil_half(name, size, training):
    layer = build_downsample(dict(type=name), 4).train(training)
    y = layer(torch.randn(2, 4, *size))
    assert y.shape == (2, 4, (size[0] + 1) // 2, (size[1] + 1) // 2)
    assert torch.isfinite(y).all()


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(DOWNSAMPLE_LAYERS),
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    h=st.integers(1, 13),
    w=st.integers(1, 13))
def test_shapes_for_random_sizes(name, n, c, h, w):
    layer = build_downsample(name, c).eval()
    assert layer(torch.randn(n, c, h, w)).shape == (n, c, (h + 1) // 2,
                                                   (w + 1) // 2)


@pytest.mark.parametrize('name', DOWNSAMPLE_LAYERS)
def test_registry_build_and_factory_agree(name):
    # mmseg's MODELS reaches our child registry by its scope prefix.
    from_registry = MODELS.build(dict(type=f'tips_mmseg.{name}', channels=6))
    from_factory = build_downsample(dict(type=name), 6)
    assert type(from_registry) is type(from_factory)
    assert from_factory.channels == 6


@pytest.mark.parametrize('name', DOWNSAMPLE_LAYERS)
def test_memory_layouts_give_the_same_result(name):
    layer = build_downsample(name, 4).eval()
    x = torch.randn(2, 4, 10, 12)
    expected = layer(x)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    non_contiguous = torch.randn(2, 12, 10, 4).permute(0, 3, 2, 1)
    non_contiguous.copy_(x)
    assert not non_contiguous.is_contiguous()
    torch.testing.assert_close(layer(channels_last), expected)
    torch.testing.assert_close(layer(non_contiguous), expected)


@pytest.mark.parametrize('name', DOWNSAMPLE_LAYERS)
def test_bfloat16_autocast(name):
    layer = build_downsample(name, 4).eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = layer(x)
    assert y.shape == (1, 4, 4, 4)
    torch.testing.assert_close(y.float(), layer(x), atol=0.1, rtol=0.05)


@pytest.mark.parametrize('name', DOWNSAMPLE_LAYERS)
def test_wrong_channel_count_names_the_fix(name):
    layer = build_downsample(name, 4)
    with pytest.raises(ValueError, match='channels=8'):
        layer(torch.randn(1, 8, 6, 6))


def test_unknown_layer_name_lists_the_choices():
    with pytest.raises(KeyError, match='TIPS'):
        build_downsample(dict(type='MaxBlur'), 4)


def test_none_means_plain_subsampling():
    assert build_downsample(None, 4) is None


def test_conflicting_channels_in_cfg():
    with pytest.raises(ValueError, match='channels=3'):
        build_downsample(dict(type='TIPS', channels=3), 4)


@pytest.mark.parametrize('name', ['TIPS', 'LPS'])
def test_gradients_reach_parameters(name):
    layer = build_downsample(name, 3).train()
    layer(torch.randn(2, 3, 8, 8)).square().sum().backward()
    for pname, param in layer.named_parameters():
        if pname == 'scorer.conv2.bias':
            # Adds the same constant to every component's logit: the
            # softmax does not see it, its gradient is 0.
            assert param.grad.abs().max() < 1e-6
            continue
        assert param.grad is not None and param.grad.abs().sum() > 0, pname
