"""What the layers keep for backward, and that keeping less changed nothing.

BlurPool keeps nothing of its input (its gradient is a transposed blur),
TIPS keeps its input and recomputes psi(X), LPS scores the components with
dilated convs on the map instead of stacked copies. Outputs and gradients
are checked against plain autograd versions; what is saved is counted with
saved-tensor hooks (deterministic, no timing).
"""
import itertools

import pytest
import torch
import torch.nn.functional as F

from tips_mmseg.models.circular import use_circular_padding
from tips_mmseg.models.layers import LPS, TIPS, BlurPool
from tips_mmseg.models.layers.padded_conv import padded_conv2d, pad_map


def saved_tensors(fn, *args):
    """(output, list of the tensors autograd saves while running fn)."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    return out, saved


def full_size_storages(saved, x):
    """Storages of saved tensors at least as large as ``x``."""
    return {t.untyped_storage().data_ptr() for t in saved
            if t.numel() >= x.numel()}


def grads(out, inputs, grad):
    return torch.autograd.grad(out, inputs, grad, allow_unused=True)


CASES = list(itertools.product(
    ['zeros', 'reflect', 'replicate', 'circular'],
    [(1, 1, 1, 1), (1, 2, 0, 1)],  # symmetric, asymmetric
    [1, 2],  # stride
    [1, 2],  # dilation
))


@pytest.mark.parametrize('mode,padding,stride,dilation', CASES)
def test_padded_conv_equals_pad_then_conv(mode, padding, stride, dilation):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 7, 9, requires_grad=True)
    weight = torch.randn(6, 2, 3, 3, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    y = padded_conv2d(x, weight, bias, padding, mode, stride, dilation, 2)
    want = F.conv2d(pad_map(x, padding, mode), weight, bias, stride, 0,
                    dilation, 2)
    torch.testing.assert_close(y, want)
    grad = torch.randn_like(y)
    for g, r in zip(grads(y, [x, weight, bias], grad),
                    grads(want, [x, weight, bias], grad)):
        torch.testing.assert_close(g, r)


def test_circular_padding_wider_than_the_map_wraps_in_backward_too():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 2, requires_grad=True)
    weight = torch.randn(2, 1, 3, 3, requires_grad=True)
    pad = (5, 4, 4, 6)
    y = padded_conv2d(x, weight, None, pad, 'circular', dilation=3, groups=2)
    want = F.conv2d(pad_map(x, pad, 'circular'), weight, None, 1, 0, 3, 2)
    grad = torch.randn_like(y)
    for g, r in zip(grads(y, [x, weight], grad), grads(want, [x, weight],
                                                         grad)):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize('pad_mode', ['reflect', 'zeros', 'circular'])
@pytest.mark.parametrize('stride,size', [(2, (8, 8)), (2, (7, 5)),
                                         (4, (9, 10)), (2, (1, 3))])
def test_blurpool_keeps_nothing_of_its_input(pad_mode, stride, size):
    torch.manual_seed(0)
    layer = BlurPool(3, filter_size=4, pad_mode=pad_mode, stride=stride)
    x = torch.randn(2, 3, *size, requires_grad=True)
    y, saved = saved_tensors(layer, x)
    assert all(t.numel() <= layer.kernel.numel() for t in saved)
    # Against the plain pad + conv, gradients included.
    mode = pad_mode
    if mode == 'reflect' and min(size) <= max(layer.padding):
        mode = 'replicate'
    want = F.conv2d(pad_map(x, layer.padding, mode), layer.kernel,
                    stride=stride, groups=3)
    torch.testing.assert_close(y, want)
    grad = torch.randn_like(y)
    torch.testing.assert_close(grads(y, [x], grad)[0],
                               grads(want, [x], grad)[0])


@pytest.mark.parametrize('circular', [False, True])
def test_tips_keeps_only_its_input_and_gradients_are_unchanged(circular):
    torch.manual_seed(0)
    layer = TIPS(4).train()
    if circular:  # as a circular-padding backbone converts it
        use_circular_padding(layer)
    torch.nn.init.normal_(layer.logit_scale.weight, std=3.)
    x = torch.randn(2, 4, 8, 6, requires_grad=True)
    y, saved = saved_tensors(layer, x)
    # psi(X), its pre-activation, the padded copy: none is kept.
    assert full_size_storages(saved, x) == {x.untyped_storage().data_ptr()}
    # Plain autograd: psi kept, as the layer did before.
    conv = layer.psi_conv
    psi = F.relu(conv(x))
    means = F.adaptive_avg_pool2d(psi, 2)
    tau = layer.logit_scale(means).flatten(2).softmax(-1)
    want = sum(tau[:, :, 2 * a + b, None, None] * x[:, :, a::2, b::2]
               for a in range(2) for b in range(2))
    torch.testing.assert_close(y, want)
    grad = torch.randn_like(y)
    params = [x, conv.weight, layer.logit_scale.weight]
    for g, r in zip(grads(y, params, grad), grads(want, params, grad)):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize('detach', [True, False])
@pytest.mark.parametrize('mode', ['circular', 'standard'])
def test_tips_undo_loss_recomputes_psi_with_the_same_gradients(detach, mode):
    torch.manual_seed(0)
    before = torch.nn.Conv2d(3, 3, 3, padding=1)
    layer = TIPS(3).train()
    image = torch.randn(2, 3, 8, 8)
    x = before(image)
    layer(x)
    loss, saved = saved_tensors(
        lambda: layer.undo_loss(max_shift=3, mode=mode, detach=detach,
                                generator=torch.Generator().manual_seed(1)))
    assert not full_size_storages(saved, x) - {x.untyped_storage().data_ptr()}
    dh, dw = layer.last_undo_shift
    from tips_mmseg.utils.shift_ops import shift_image
    source = x.detach() if detach else x
    target = shift_image(source, (dh % 8, dw % 8) if mode == 'circular'
                         else (dh, dw), mode=mode)
    want = F.mse_loss(F.relu(layer.psi_conv(x)), target)
    torch.testing.assert_close(loss, want)
    params = [before.weight, layer.psi_conv.weight]
    for g, r in zip(torch.autograd.grad(loss, params, retain_graph=True),
                    torch.autograd.grad(want, params)):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize('stride', [2, 4])
def test_lps_scores_without_copies_of_its_components(stride):
    torch.manual_seed(0)
    layer = LPS(4, hidden_channels=2, stride=stride).train()
    x = torch.randn(2, 4, 4 * stride, 3 * stride, requires_grad=True)
    _, saved = saved_tensors(layer, x)
    # The mix keeps x; the scorer keeps only its 2-channel hidden map.
    assert full_size_storages(saved, x) == {x.untyped_storage().data_ptr()}


@pytest.mark.parametrize('name', ['TIPS', 'BlurPool', 'LPS', 'APS'])
def test_layers_train_under_autocast(name):
    """AMP: the custom backward passes run outside autocast, in the dtype
    their forward ran in, and return gradients in the parameters' dtype
    (bfloat16 autocast on CPU stands in for float16 on a GPU)."""
    from tips_mmseg.models.layers import build_downsample
    torch.manual_seed(0)
    layer = build_downsample(name, 4).train()
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = layer(torch.nn.functional.conv2d(x, torch.ones(4, 1, 1, 1),
                                             groups=4))
        loss = y.float().square().mean()
        if name == 'TIPS':
            loss = loss + layer.undo_loss(max_shift=2)
    loss.backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype
        assert torch.isfinite(p.grad).all()
    # And close to the float32 result.
    x32 = x.detach().clone().requires_grad_()
    torch.manual_seed(0)
    layer.zero_grad()
    loss32 = layer(x32).square().mean()
    if name == 'TIPS':
        loss32 = loss32 + layer.undo_loss(max_shift=2)
    if name != 'LPS':  # LPS draws new Gumbel noise
        torch.testing.assert_close(loss.float(), loss32, rtol=0.05,
                                   atol=0.05)


@pytest.mark.parametrize('detach', [True, False])
@pytest.mark.parametrize('mode,max_shift', [('circular', 3), ('standard', 3),
                                            ('circular', 11),
                                            ('standard', 11)])
def test_tips_undo_requested_before_the_forward_equals_plain_autograd(
        detach, mode, max_shift):
    """TIPSEncoderDecoder asks for L_undo before the forward; the layer then
    computes it from psi(X) in its forward and their joint backward must
    give the plain-autograd gradients (psi through its conv, the target
    through X when not detached; shifts past the 8x8 map included)."""
    from tips_mmseg.models.layers.tips import undo_target
    torch.manual_seed(0)
    before = torch.nn.Conv2d(3, 3, 3, padding=1)
    layer = TIPS(3).train()
    torch.nn.init.normal_(layer.logit_scale.weight, std=2.)
    image = torch.randn(2, 3, 8, 8)
    layer.request_undo(max_shift, mode, detach)
    x = before(image)
    (y, undo), saved = saved_tensors(
        lambda: (layer(x), layer.undo_loss(max_shift, mode, detach=detach)))
    assert full_size_storages(saved, x) == {x.untyped_storage().data_ptr()}
    shift = layer.last_undo_shift
    assert max(abs(d) for d in shift) <= max_shift
    # Plain autograd, psi kept.
    psi = F.relu(layer.psi_conv(x))
    tau = layer.logit_scale(F.adaptive_avg_pool2d(psi, 2)).flatten(
        2).softmax(-1)
    y_ref = sum(tau[:, :, 2 * a + b, None, None] * x[:, :, a::2, b::2]
                for a in range(2) for b in range(2))
    target = undo_target(x.detach() if detach else x, shift, mode)
    undo_ref = F.mse_loss(psi, target)
    torch.testing.assert_close(undo, undo_ref)
    torch.testing.assert_close(y, y_ref)
    grad = torch.randn_like(y)
    params = [before.weight, layer.psi_conv.weight, layer.logit_scale.weight]
    got = torch.autograd.grad((y * grad).sum() + 3 * undo, params,
                              retain_graph=True)
    want = torch.autograd.grad((y_ref * grad).sum() + 3 * undo_ref, params)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)


def test_tips_undo_request_is_used_once_and_only_for_its_arguments():
    def from_forward(loss):
        return type(loss.grad_fn).__name__.startswith('_PsiStatistics')

    torch.manual_seed(0)
    layer = TIPS(2).train()
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    layer.request_undo(2, 'circular', True)
    layer(x)
    # Other arguments than the request's: computed anew, after the forward.
    assert not from_forward(layer.undo_loss(3, 'circular', detach=True))
    assert not from_forward(layer.undo_loss(2, 'standard', detach=True))
    assert not from_forward(layer.undo_loss(
        2, 'circular', detach=True, generator=torch.Generator()))
    # The requested one comes from the forward, once.
    assert from_forward(layer.undo_loss(2, 'circular', detach=True))
    assert not from_forward(layer.undo_loss(2, 'circular', detach=True))
    layer.clear_cache()
    assert layer._undo_request is None
