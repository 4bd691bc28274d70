"""LPS in training: the soft sample reaches the shortcut and the unpooling
with its graph (LPS's release), so their gradients train the scorer too.

The reference below is written loop by loop from the method (components,
logits net per component, Gumbel-softmax, weighted sums), in float64; only
autograd is shared with the layer."""
import pytest
import torch
import torch.nn.functional as F

from tips_mmseg.models.layers import LPS, PolyphaseUnpool


def ref_components(x):
    """Component k = 2a + b holds x[2i + a, 2j + b] (even map)."""
    n, c, h, w = x.shape
    return [torch.stack([torch.stack([x[:, :, 2 * i + a, 2 * j + b]
                                      for j in range(w // 2)], dim=-1)
                         for i in range(h // 2)], dim=-2)
            for a in range(2) for b in range(2)]


def ref_scores(params, comps):
    """LPS's logits net on each component: conv3x3 (circular) - ReLU -
    conv3x3 (circular) - mean over (channels, h, w)."""
    w1, b1, w2, b2 = params
    logits = []
    for comp in comps:
        hidden = F.relu(F.conv2d(F.pad(comp, (1, 1, 1, 1), mode='circular'),
                                 w1, b1))
        out = F.conv2d(F.pad(hidden, (1, 1, 1, 1), mode='circular'), w2, b2)
        logits.append(out.mean(dim=(1, 2, 3)))
    return torch.stack(logits, dim=1)  # (N, 4)


def ref_mix(comps, weights):
    out = torch.zeros_like(comps[0])
    for n in range(out.shape[0]):
        for k, comp in enumerate(comps):
            out[n] += weights[n, k] * comp[n]
    return out


def ref_scorer_grads(layer, x_main, x_short, g_main, g_short, noise,
                     detach_shared):
    """Gradient of <y_main, g_main> + <y_short, g_short> w.r.t. the scorer's
    parameters, the shortcut keeping the main branch's soft sample."""
    s = layer.scorer
    params = [p.detach().double().requires_grad_()
              for p in (s.conv1.weight, s.conv1.bias, s.conv2.weight,
                        s.conv2.bias)]
    comps = ref_components(x_main.double())
    logits = ref_scores(params, comps)
    weights = torch.softmax((logits + noise.double()) / layer.temperature,
                            dim=1)
    y_main = ref_mix(comps, weights)
    shared = weights.detach() if detach_shared else weights
    y_short = ref_mix(ref_components(x_short.double()), shared)
    loss = (y_main * g_main).sum() + (y_short * g_short).sum()
    return torch.autograd.grad(loss, params)


def gumbel_noise(seed, shape):
    """The Gumbel noise F.gumbel_softmax draws after torch.manual_seed."""
    torch.manual_seed(seed)
    return -torch.empty(shape).exponential_().log()


@pytest.mark.parametrize('detach_shared', [False, True])
def test_scorer_gradient_includes_the_shortcut(detach_shared):
    torch.manual_seed(0)
    layer = LPS(3, hidden_channels=5, temperature=0.7,
                detach_shared=detach_shared).train()
    follower = layer.make_follower(4)
    x_main, x_short = torch.randn(2, 3, 6, 8), torch.randn(2, 4, 6, 8)
    g_main, g_short = torch.randn(2, 3, 3, 4), torch.randn(2, 4, 3, 4)

    torch.manual_seed(7)
    y_main = layer(x_main)
    y_short = follower(x_short, weights=layer.last_weights)
    ((y_main * g_main).sum() + (y_short * g_short).sum()).backward()
    sc = layer.scorer
    got = [p.grad for p in (sc.conv1.weight, sc.conv1.bias, sc.conv2.weight,
                            sc.conv2.bias)]

    noise = gumbel_noise(7, (2, 4))
    want = ref_scorer_grads(layer, x_main, x_short, g_main, g_short, noise,
                            detach_shared)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-6)
    # The other setting gives another gradient: the shortcut's share is
    # real, so the comparison above tells the two apart.
    other = ref_scorer_grads(layer, x_main, x_short, g_main, g_short, noise,
                             not detach_shared)
    assert not torch.allclose(other[0], want[0], rtol=1e-3, atol=1e-6)
    assert layer.last_weights.requires_grad is not detach_shared


def test_unpooling_trains_the_scorer_unless_detached():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    ups = {}
    for detach in (False, True):
        layer = LPS(3, hidden_channels=4, detach_shared=detach).train()
        y = layer(x).detach()  # only the unpooling path reaches the scorer
        ups[detach] = (layer, PolyphaseUnpool(layer)(y))
    layer, up = ups[False]
    up.pow(2).sum().backward()
    assert layer.scorer.conv1.weight.grad.abs().sum() > 0
    assert not ups[True][1].requires_grad  # nothing to carry back


def test_eval_and_analysis_weights_carry_no_graph():
    layer = LPS(3, hidden_channels=4).eval()
    layer(torch.randn(1, 3, 4, 4))
    assert not layer.last_weights.requires_grad
    with pytest.raises(ValueError, match='detach_shared'):
        LPS(3, detach_shared='yes')
