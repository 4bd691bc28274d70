import torch

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
    loss = layer.undo_loss()
    loss.backward()
    assert layer.psi_conv.weight.grad.abs().sum() > 0


def test_regularizers_need_a_training_forward():
    layer = TIPS(3).eval()
    layer(torch.randn(1, 3, 4, 4))
    import pytest
    with pytest.raises(RuntimeError, match='training'):
        layer.failure_mode_loss()


def test_same_computation_in_train_and_eval():
    layer = TIPS(3)
    x = torch.randn(2, 3, 9, 7)
    torch.testing.assert_close(layer.train()(x), layer.eval()(x))
