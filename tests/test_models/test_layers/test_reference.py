"""The optimized layers against plain, loop-by-loop reference versions.

The layers mix and select through a strided view (no split copy), take the
APS norm in one reduction and batch LPS's scorer; these references spell the
method out component by component (METHOD.md sections 3-4) and must give the
same outputs and gradients.
"""
import pytest
import torch
import torch.nn.functional as F

from tips_mmseg.models.layers import APS, LPS, TIPS, COMPONENT_OFFSETS


def components_of(x):
    """The four components, one strided slice each, in the documented order."""
    return [x[:, :, a::2, b::2] for a, b in COMPONENT_OFFSETS]


def reference_tips(layer, x):
    psi = F.relu(F.conv2d(x, layer.psi_conv.weight, padding=1,
                          groups=x.shape[1]))
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    quadrant_means = torch.stack([
        psi[:, :, a * h:(a + 1) * h, b * w:(b + 1) * w].mean(dim=(2, 3))
        for a, b in COMPONENT_OFFSETS
    ], dim=-1)  # (N, C, 4)
    scale = layer.logit_scale.weight.view(1, -1, 1)
    tau = (quadrant_means * scale).softmax(dim=-1)
    out = 0
    for k, component in enumerate(components_of(x)):
        out = out + tau[:, :, k, None, None] * component
    return out, tau


def reference_aps_index(x, p=2.0):
    norms = torch.stack([
        component.abs().pow(p).sum(dim=(1, 2, 3))
        for component in components_of(x)
    ], dim=1)
    return norms.argmax(dim=1)


def reference_lps_logits(layer, x):
    scorer = layer.scorer
    logits = []
    for component in components_of(x):
        hidden = F.relu(scorer.conv1(component))
        logits.append(scorer.conv2(hidden).mean(dim=(1, 2, 3)))
    return torch.stack(logits, dim=1)


@pytest.mark.parametrize('size', [(8, 8), (9, 6)])
def test_tips_equals_reference_with_gradients(size):
    torch.manual_seed(0)
    layer = TIPS(5).train()
    torch.nn.init.normal_(layer.logit_scale.weight, std=3.)
    x = torch.randn(3, 5, *size, requires_grad=True)
    y = layer(x)
    padded = F.pad(x, (size[1] % 2, 0, size[0] % 2, 0), mode='reflect')
    y_ref, tau_ref = reference_tips(layer, padded)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(layer.last_tau, tau_ref.detach())
    grad = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, *layer.parameters()], grad)
    want = torch.autograd.grad(y_ref, [x, *layer.parameters()], grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)


def test_aps_equals_reference_with_gradients():
    torch.manual_seed(0)
    layer = APS(4)
    x = torch.randn(6, 4, 10, 12, requires_grad=True)
    y = layer(x)
    index = reference_aps_index(x.detach())
    y_ref = torch.stack([components_of(x)[k][n]
                         for n, k in enumerate(index.tolist())])
    assert torch.equal(layer.last_weights[:, 0].argmax(-1), index)
    assert torch.equal(y, y_ref)
    grad = torch.randn_like(y)
    torch.testing.assert_close(
        torch.autograd.grad(y, x, grad)[0],
        torch.autograd.grad(y_ref, x, grad)[0])


@pytest.mark.parametrize('training', [True, False])
def test_lps_equals_reference_with_gradients(training):
    torch.manual_seed(0)
    layer = LPS(4, hidden_channels=6).train(training)
    x = torch.randn(3, 4, 8, 10, requires_grad=True)
    y = layer(x)
    logits_ref = reference_lps_logits(layer, x)
    torch.testing.assert_close(layer.last_logits, logits_ref.detach())
    weights = layer.last_weights  # Gumbel sample (training) or one-hot
    y_ref = sum(weights[:, :, k, None, None] * component
                for k, component in enumerate(components_of(x)))
    torch.testing.assert_close(y, y_ref)
    if not training:
        return
    # Same Gumbel noise: re-run both with the generator reset.
    grad = torch.randn_like(y)
    torch.manual_seed(1)
    y = layer(x)
    got = torch.autograd.grad(y, [x, *layer.parameters()], grad)
    torch.manual_seed(1)
    logits = reference_lps_logits(layer, x)
    weights = F.gumbel_softmax(logits, tau=layer.temperature).unsqueeze(1)
    y_ref = sum(weights[:, :, k, None, None] * component
                for k, component in enumerate(components_of(x)))
    want = torch.autograd.grad(y_ref, [x, *layer.parameters()], grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)
