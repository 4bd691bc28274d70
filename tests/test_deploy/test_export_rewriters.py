"""The export-time rewrites: same values as the module they stand in for,
graphs that take any size, and the model as it was afterwards."""
import io

import pytest
import torch
import torch.nn as nn

import tips_mmseg  # noqa: F401
from tips_mmseg.apis.export_rewriters import export_rewrites


def mha_cases():
    # (constructor kwargs, key length differs from the query's)
    return [
        (dict(), False),
        (dict(), True),
        (dict(batch_first=True), True),
        (dict(bias=False), True),
        (dict(kdim=6, vdim=5), True),
        (dict(batch_first=True, kdim=6, vdim=5), False),
    ]


def mha_inputs(mha, kv_len, gen):
    n, length = 3, 7
    q = torch.randn(n, length, mha.embed_dim, generator=gen)
    k = torch.randn(n, kv_len, mha.kdim, generator=gen)
    v = torch.randn(n, kv_len, mha.vdim, generator=gen)
    if not mha.batch_first:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    return q, k, v


@pytest.mark.parametrize('need_weights', [True, False])
@pytest.mark.parametrize('average', [True, False])
@pytest.mark.parametrize('kwargs,cross', mha_cases())
def test_rewritten_attention_equals_torch(kwargs, cross, need_weights,
                                          average):
    gen = torch.Generator().manual_seed(0)
    mha = nn.MultiheadAttention(12, 3, **kwargs).eval()
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        q, k, v = mha_inputs(mha, 4 if cross else 7, gen)
        if not cross and not kwargs.get('kdim'):
            k = v = q
        want, want_w = mha(q, k, v, need_weights=need_weights,
                           average_attn_weights=average)
        with export_rewrites(mha) as names:
            got, got_w = mha(q, k, v, need_weights=need_weights,
                             average_attn_weights=average)
    assert names == ['']
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if need_weights:
        assert got_w.shape == want_w.shape
        torch.testing.assert_close(got_w, want_w, rtol=1e-5, atol=1e-6)
    else:
        assert got_w is None and want_w is None


def test_masks_go_to_torchs_own_forward():
    mha = nn.MultiheadAttention(8, 2).eval()
    q = torch.randn(5, 2, 8)
    mask = torch.rand(5, 5) > 0.5
    mask.fill_diagonal_(False)
    with torch.no_grad():
        want = mha(q, q, q, attn_mask=mask)[0]
        with export_rewrites(mha):
            got = mha(q, q, q, attn_mask=mask)[0]
            unmasked = mha(q, q, q)[0]
    torch.testing.assert_close(got, want)
    assert (unmasked - want).abs().max() > 1e-3  # the mask mattered


class OwnAttention(nn.MultiheadAttention):
    """A subclass with its own forward: the rewrite does not know it."""

    def forward(self, query, key, value, **kwargs):
        return super().forward(query, key, value, **kwargs)


def test_only_covered_instances_are_rewritten_and_all_restored():
    legacy = nn.MultiheadAttention(8, 2)
    own_forward = legacy.forward  # an instance attribute, as mmcv may set
    legacy.forward = own_forward
    model = nn.ModuleDict(dict(
        plain=nn.MultiheadAttention(8, 2),
        legacy=legacy,
        zero_attn=nn.MultiheadAttention(8, 2, add_zero_attn=True),
        bias_kv=nn.MultiheadAttention(8, 2, add_bias_kv=True),
        subclass=OwnAttention(8, 2)))
    outside = nn.MultiheadAttention(8, 2)
    class_forward = nn.MultiheadAttention.forward
    with export_rewrites(model) as names:
        assert sorted(names) == ['legacy', 'plain']
        assert 'forward' in vars(model['plain'])
        assert legacy.forward is not own_forward
        for name in ('zero_attn', 'bias_kv', 'subclass'):
            assert 'forward' not in vars(model[name])
        assert 'forward' not in vars(outside)
        assert nn.MultiheadAttention.forward is class_forward
    assert 'forward' not in vars(model['plain'])
    assert legacy.forward is own_forward
    assert nn.MultiheadAttention.forward is class_forward


def test_restored_after_an_error():
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(RuntimeError, match='during the export'):
        with export_rewrites(mha):
            raise RuntimeError('during the export')
    assert 'forward' not in vars(mha)


class ReducedAttention(nn.Module):
    """Keys and values from a strided conv, as in MiT's attention."""

    def __init__(self):
        super().__init__()
        self.sr = nn.Conv1d(8, 8, 2, stride=2)
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x):  # (L, N, C)
        kv = self.sr(x.permute(1, 2, 0)).permute(2, 0, 1)
        return self.attn(x, kv, kv)[0]


def test_rewritten_attention_exports_for_any_length():
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    model = ReducedAttention().eval()
    buffer = io.BytesIO()
    with torch.no_grad(), export_rewrites(model):
        torch.onnx.export(model, (torch.randn(16, 2, 8), ), buffer,
                          input_names=['x'],
                          dynamic_axes={'x': {0: 'length', 1: 'batch'}},
                          opset_version=17, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(),
                                   providers=['CPUExecutionProvider'])
    for length, batch in ((16, 2), (22, 3), (9, 1)):
        x = torch.randn(length, batch, 8)
        with torch.no_grad():
            want = model(x)
        got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
