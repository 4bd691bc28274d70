"""TIPS: the layer (METHOD section 4) and its two regularizers (section 5).

References here are written loop by loop from the method's description, not
with the layer's own helpers.
"""
import pytest
import torch
import torch.nn.functional as F

from tips_mmseg.models.layers import TIPS, polyphase_split


def _tips_with_tau(tau_logits_scale=0.):
    layer = TIPS(3)
    torch.nn.init.constant_(layer.logit_scale.weight, tau_logits_scale)
    return layer


def test_parameter_count_is_ten_per_channel_without_bias():
    layer = TIPS(16)
    assert sum(p.numel() for p in layer.parameters()) == 160
    assert layer.psi_conv.bias is None and layer.logit_scale.bias is None


def test_output_is_a_convex_mix_of_components():
    layer = TIPS(3)
    x = torch.randn(4, 3, 10, 10) * 5
    y = layer(x)
    components = polyphase_split(x)
    eps = 1e-5
    assert (y >= components.amin(2) - eps).all()
    assert (y <= components.amax(2) + eps).all()
    tau = layer.last_tau
    assert tau.shape == (4, 3, 4)
    torch.testing.assert_close(tau.sum(-1), torch.ones(4, 3))
    assert (tau >= 0).all()


def test_one_hot_tau_reproduces_that_component_exactly():
    x = torch.randn(2, 3, 8, 8)
    components = polyphase_split(x)
    layer = TIPS(3)
    for k in range(4):
        tau = torch.nn.functional.one_hot(torch.tensor(k), 4).float()
        y = layer(x, weights=tau.expand(2, 3, 4))
        assert torch.equal(y, components[:, :, k])


def test_uniform_tau_is_average_pooling():
    layer = _tips_with_tau(0.)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(layer(x),
                               torch.nn.functional.avg_pool2d(x, 2))
    torch.testing.assert_close(layer.last_tau, torch.full((2, 3, 4), 0.25))


def test_tau_is_softmax_of_scaled_quadrant_means_of_psi():
    layer = TIPS(3)
    x = torch.randn(2, 3, 8, 8)
    layer(x)
    psi = torch.relu(layer.psi_conv(x))
    quadrants = psi.view(2, 3, 2, 4, 2, 4).mean(dim=(3, 5)).flatten(2)
    scale = layer.logit_scale.weight.view(1, 3, 1)
    torch.testing.assert_close(layer.last_tau,
                               (quadrants * scale).softmax(-1))


def test_failure_mode_loss_matches_hand_computation():
    layer = TIPS(3).train()
    layer(torch.randn(2, 3, 8, 8))
    tau = layer.last_tau
    expected = (1 - tau.norm(dim=-1)).mean()
    torch.testing.assert_close(layer.failure_mode_loss(), expected)
    # Uniform tau: 1 - 0.5.
    uniform = _tips_with_tau(0.).train()
    uniform(torch.randn(1, 3, 4, 4))
    torch.testing.assert_close(uniform.failure_mode_loss(),
                               torch.tensor(0.5))


def test_undo_loss_is_mse_between_psi_and_shifted_input():
    layer = TIPS(3).train()
    x = torch.randn(2, 3, 8, 8)
    layer(x)
    # max_shift=0: no shift, so the target is the input itself.
    expected = torch.nn.functional.mse_loss(torch.relu(layer.psi_conv(x)), x)
    torch.testing.assert_close(layer.undo_loss(max_shift=0), expected)
    # The default shift is now circular (it was zero fill); with a random
    # draw this line only checks that L_undo trains psi, in either mode.
    loss = layer.undo_loss()
    loss.backward()
    assert layer.psi_conv.weight.grad.abs().sum() > 0


def test_regularizers_need_a_training_forward():
    layer = TIPS(3).eval()
    layer(torch.randn(1, 3, 4, 4))
    with pytest.raises(RuntimeError, match='training'):
        layer.failure_mode_loss()


def test_same_computation_in_train_and_eval():
    layer = TIPS(3)
    x = torch.randn(2, 3, 9, 7)
    torch.testing.assert_close(layer.train()(x), layer.eval()(x))


# --- L_undo, loop by loop ---------------------------------------------------

def shifted_by_loops(x, dh, dw, mode):
    """T(X): ``out[i, j] = x[i - dh, j - dw]``; 'circular' wraps the index
    around, 'standard' puts 0 where it falls outside the map."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            si, sj = i - dh, j - dw
            if mode == 'circular':
                out[..., i, j] = x[..., si % h, sj % w]
            elif 0 <= si < h and 0 <= sj < w:
                out[..., i, j] = x[..., si, sj]
    return out


def psi_by_hand(layer, x):
    return torch.relu(F.conv2d(x, layer.psi_conv.weight, padding=1,
                               groups=x.shape[1]))


@pytest.mark.parametrize('mode', ['circular', 'standard'])
def test_undo_target_is_the_shifted_input_not_psi(mode):
    torch.manual_seed(0)
    layer = TIPS(3).train()
    x = torch.randn(2, 3, 8, 6)
    layer(x)
    gen = torch.Generator().manual_seed(3)
    loss = layer.undo_loss(max_shift=3, mode=mode, generator=gen)
    dh, dw = layer.last_undo_shift
    assert (dh, dw) != (0, 0)  # seeded draw: the shift matters here
    psi = psi_by_hand(layer, x)
    want = ((psi - shifted_by_loops(x, dh, dw, mode))**2).mean()
    torch.testing.assert_close(loss, want)
    not_psi = ((psi - shifted_by_loops(psi, dh, dw, mode))**2).mean()
    assert not torch.allclose(loss, not_psi)


def test_undo_shift_is_circular_by_default():
    torch.manual_seed(0)
    layer = TIPS(2).train()
    x = torch.randn(1, 2, 8, 8)
    layer(x)
    loss = layer.undo_loss(max_shift=4,
                           generator=torch.Generator().manual_seed(1))
    dh, dw = layer.last_undo_shift
    assert dh != 0 or dw != 0
    psi = psi_by_hand(layer, x)
    for mode, equal in (('circular', True), ('standard', False)):
        want = ((psi - shifted_by_loops(x, dh, dw, mode))**2).mean()
        assert torch.allclose(loss, want) == equal, mode


def test_undo_target_is_the_padded_input_for_odd_maps():
    """The layer sees its input padded to even size (reflect, top/left):
    psi and the target are both taken of that padded map."""
    torch.manual_seed(0)
    layer = TIPS(2).train()
    x = torch.randn(1, 2, 7, 5)
    layer(x)
    loss = layer.undo_loss(max_shift=2,
                           generator=torch.Generator().manual_seed(5))
    dh, dw = layer.last_undo_shift
    padded = F.pad(x, (1, 0, 1, 0), mode='reflect')
    want = ((psi_by_hand(layer, padded) -
             shifted_by_loops(padded, dh, dw, 'circular'))**2).mean()
    torch.testing.assert_close(loss, want)


@pytest.mark.parametrize('max_shift, size, bound', [
    (None, (16, 8), (4, 2)),      # per layer: H // 4, W // 4
    (3, (16, 8), (3, 3)),
    ((1, 5), (16, 8), (1, 5)),
    (12, (8, 8), (12, 12)),       # beyond the map (the release's range on a
])                                # deep map): drawn as asked, rolls wrap
def test_undo_shift_is_drawn_over_the_whole_stated_range(max_shift, size,
                                                         bound):
    torch.manual_seed(0)
    layer = TIPS(1).train()
    x = torch.randn(1, 1, *size)
    layer(x)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    psi = psi_by_hand(layer, x)
    for _ in range(400):
        loss = layer.undo_loss(max_shift=max_shift, generator=gen)
        seen.add(layer.last_undo_shift)
    dh, dw = layer.last_undo_shift
    want = ((psi - shifted_by_loops(x, dh, dw, 'circular'))**2).mean()
    torch.testing.assert_close(loss, want)
    rows = {s[0] for s in seen}
    cols = {s[1] for s in seen}
    assert rows == set(range(-bound[0], bound[0] + 1))
    assert cols == set(range(-bound[1], bound[1] + 1))


def test_zero_fill_shift_beyond_the_map_leaves_a_zero_target():
    torch.manual_seed(0)
    layer = TIPS(2).train()
    x = torch.randn(1, 2, 4, 4)
    layer(x)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        loss = layer.undo_loss(max_shift=9, mode='standard', generator=gen)
        dh, dw = layer.last_undo_shift
        if abs(dh) >= 4 or abs(dw) >= 4:
            break
    else:
        raise AssertionError('no draw left the map')
    torch.testing.assert_close(loss, (psi_by_hand(layer, x)**2).mean())


@pytest.mark.parametrize('detach', [True, False])
def test_undo_gradient_reaches_earlier_layers_through_the_target_only_if_not_detached(  # noqa: E501
        detach):
    """The release detaches nothing in the code that runs: then the target's
    gradient also reaches the layers before TIPS (here a conv)."""
    torch.manual_seed(0)
    before = torch.nn.Conv2d(2, 2, 3, padding=1)
    layer = TIPS(2).train()
    image = torch.randn(2, 2, 8, 8)
    layer(before(image))
    loss = layer.undo_loss(max_shift=2, detach=detach,
                           generator=torch.Generator().manual_seed(2))
    dh, dw = layer.last_undo_shift
    got = torch.autograd.grad(loss, before.weight)[0]

    def grad_by_hand(detached):
        x = before(image)
        target = shifted_by_loops(x, dh, dw, 'circular')
        if detached:
            target = target.detach()
        loss = ((psi_by_hand(layer, x) - target)**2).mean()
        return torch.autograd.grad(loss, before.weight)[0]

    torch.testing.assert_close(got, grad_by_hand(detach))
    # ... and the two settings really differ.
    assert not torch.allclose(got, grad_by_hand(not detach))


def test_bad_undo_arguments_are_clear_errors():
    layer = TIPS(1).train()
    layer(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match='max_shift'):
        layer.undo_loss(max_shift=-1)
    with pytest.raises(ValueError, match='max_shift'):
        layer.undo_loss(max_shift=(1, 2, 3))
    with pytest.raises(ValueError, match='shift mode'):
        layer.undo_loss(mode='reflect')
    with pytest.raises(ValueError, match='tau_pairing'):
        TIPS(1, tau_pairing='rows')


# --- Which quadrant drives which component ----------------------------------

def tips_by_loops(layer, x, pairing):
    """TIPS written from the method: quadrant means of psi (row-major TL, TR,
    BL, BR), scaled, softmax; each paired with one component. 'aligned':
    quadrant (a, b) with X[a::2, b::2]. 'release': the official code's list
    of components X[0::2,0::2], X[1::2,0::2], X[0::2,1::2], X[1::2,1::2],
    zipped with the row-major quadrants."""
    psi = psi_by_hand(layer, x)
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    quadrants = [psi[:, :, a * h:(a + 1) * h, b * w:(b + 1) * w].mean((2, 3))
                 for a in (0, 1) for b in (0, 1)]   # TL, TR, BL, BR
    scale = layer.logit_scale.weight.view(1, -1)
    tau = torch.stack([q * scale for q in quadrants], -1).softmax(-1)
    offsets = ([(0, 0), (0, 1), (1, 0), (1, 1)] if pairing == 'aligned' else
               [(0, 0), (1, 0), (0, 1), (1, 1)])
    out = 0
    for j, (a, b) in enumerate(offsets):
        out = out + tau[:, :, j, None, None] * x[:, :, a::2, b::2]
    return out, tau, offsets


@pytest.mark.parametrize('pairing', ['aligned', 'release'])
def test_tau_pairing_equals_its_loop_by_loop_definition(pairing):
    torch.manual_seed(0)
    layer = TIPS(4, tau_pairing=pairing)
    torch.nn.init.normal_(layer.logit_scale.weight, std=3.)
    x = torch.randn(2, 4, 8, 10)
    y = layer(x)
    y_ref, tau_ref, offsets = tips_by_loops(layer, x, pairing)
    torch.testing.assert_close(y, y_ref)
    # last_tau is indexed by component k = 2a + b in both pairings.
    for j, (a, b) in enumerate(offsets):
        torch.testing.assert_close(layer.last_tau[..., 2 * a + b],
                                   tau_ref[..., j])


def test_tau_pairing_documented_top_right_quadrant():
    """Same weights, a map whose top-right quadrant is bright: ours gives the
    most weight to component (0, 1) (X[0::2, 1::2], k = 1), the release's
    to component (1, 0) (X[1::2, 0::2], k = 2). The two are different
    functions of the same parameters; we default to the aligned one."""
    x = torch.zeros(1, 1, 8, 8)
    x[:, :, :4, 4:] = 1.  # top-right quadrant
    outputs = {}
    for pairing in ('aligned', 'release'):
        layer = TIPS(1, tau_pairing=pairing)
        torch.nn.init.dirac_(layer.psi_conv.weight)  # psi = ReLU(X)
        torch.nn.init.constant_(layer.logit_scale.weight, 10.)
        outputs[pairing] = layer(x)
        assert layer.last_tau[0, 0].argmax().item() == (
            1 if pairing == 'aligned' else 2)
    assert TIPS(1).tau_pairing == 'aligned'
    assert not torch.equal(outputs['aligned'], outputs['release'])
