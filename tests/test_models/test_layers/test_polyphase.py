import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tips_mmseg.models.layers import (COMPONENT_OFFSETS, mix_phases,
                                      pad_to_even, polyphase_merge,
                                      polyphase_split, polyphase_view,
                                      select_phase)


def test_split_follows_documented_component_order():
    x = torch.arange(2 * 3 * 6 * 8, dtype=torch.float).view(2, 3, 6, 8)
    components = polyphase_split(x)
    assert components.shape == (2, 3, 4, 3, 4)
    for k, (a, b) in enumerate(COMPONENT_OFFSETS):
        assert torch.equal(components[:, :, k], x[:, :, a::2, b::2])


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 3))
def test_merge_inverts_split(h, w, c):
    x = torch.randn(1, c, 2 * h, 2 * w)
    assert torch.equal(polyphase_merge(polyphase_split(x)), x)


def test_split_rejects_odd_maps_with_a_hint():
    with pytest.raises(ValueError, match='pad_to_even'):
        polyphase_split(torch.zeros(1, 1, 3, 4))


@pytest.mark.parametrize('size', [(1, 1), (1, 4), (3, 5), (7, 2)])
def test_pad_to_even_pads_top_left(size):
    x = torch.randn(1, 2, *size)
    padded = pad_to_even(x)
    assert padded.shape[-2] % 2 == 0 and padded.shape[-1] % 2 == 0
    # The original map sits at the bottom/right, untouched.
    assert torch.equal(padded[..., -size[0]:, -size[1]:], x)


def test_pad_to_even_leaves_even_maps_alone():
    x = torch.randn(1, 2, 4, 6)
    assert pad_to_even(x) is x


def test_view_follows_documented_component_order_without_copy():
    x = torch.randn(2, 3, 6, 8)
    view = polyphase_view(x)
    assert view.data_ptr() == x.data_ptr()
    for a, b in COMPONENT_OFFSETS:
        assert torch.equal(view[:, :, :, a, :, b], x[:, :, a::2, b::2])
    with pytest.raises(ValueError, match='pad_to_even'):
        polyphase_view(torch.zeros(1, 1, 4, 3))


def test_mix_with_one_hot_equals_select():
    x = torch.randn(3, 4, 10, 10)
    index = torch.tensor([0, 3, 2])
    weights = torch.nn.functional.one_hot(index, 4).float().unsqueeze(1)
    assert torch.equal(mix_phases(x, weights), select_phase(x, index))
    for n, k in enumerate(index.tolist()):
        a, b = COMPONENT_OFFSETS[k]
        assert torch.equal(select_phase(x, index)[n], x[n, :, a::2, b::2])


@pytest.mark.parametrize('weight_channels', [1, 3])
def test_mix_gradients_pass_gradcheck(weight_channels):
    x = torch.randn(2, 3, 4, 6, dtype=torch.double, requires_grad=True)
    weights = torch.rand(2, weight_channels, 4, dtype=torch.double,
                         requires_grad=True)
    assert torch.autograd.gradcheck(mix_phases, (x, weights))
    assert torch.autograd.gradgradcheck(mix_phases, (x, weights))
