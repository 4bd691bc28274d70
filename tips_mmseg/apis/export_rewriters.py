"""Trace-friendly forwards swapped in while a model is exported to ONNX.

torch's TorchScript exporter records the sizes a module reads from
``x.shape`` as graph ops only while they stay tensors through the trace; a
size that becomes a Python number, or one that torch itself computes in C++,
is written into the graph as a constant, and the graph then fails (or is
wrong) at any other input size. The modules listed here do that; during
:func:`export_rewrites` each instance gets a forward computing the same
values with sizes taken from the traced tensors, and gets its own forward
back afterwards. Classes are never patched, so other models, threads and
the eager model after the export are untouched (in the manner of MMDeploy's
function rewriters, but per instance and only for the export).

Rewritten:

- ``torch.nn.MultiheadAttention`` (used by mmcv's ``MultiheadAttention``,
  hence by mmseg's MiT/SegFormer ``EfficientMultiheadAttention``, ViT and
  others): torch's ``multi_head_attention_forward`` splits the packed
  in-projection with ``unflatten`` and reshapes keys with ``k.shape[0]``,
  which the exporter records as the traced sequence length. The rewrite
  projects q, k, v with three linears and reshapes with ``-1``.
"""
import contextlib
import types
from typing import Callable, Dict, Iterator, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _mha_unsupported(module: nn.MultiheadAttention) -> Optional[str]:
    """Why the rewrite cannot stand in for ``module`` (None: it can)."""
    if module.bias_k is not None or module.bias_v is not None:
        return 'add_bias_kv=True'
    if module.add_zero_attn:
        return 'add_zero_attn=True'
    return None


def _mha_projections(module: nn.MultiheadAttention):
    """(w_q, w_k, w_v), (b_q, b_k, b_v) of a MultiheadAttention."""
    if module._qkv_same_embed_dim:
        weights = module.in_proj_weight.chunk(3)
    else:
        weights = (module.q_proj_weight, module.k_proj_weight,
                   module.v_proj_weight)
    if module.in_proj_bias is None:
        biases = (None, None, None)
    else:
        biases = module.in_proj_bias.chunk(3)
    return weights, biases


def _mha_forward(self: nn.MultiheadAttention,
                 query: torch.Tensor,
                 key: torch.Tensor,
                 value: torch.Tensor,
                 key_padding_mask: Optional[torch.Tensor] = None,
                 need_weights: bool = True,
                 attn_mask: Optional[torch.Tensor] = None,
                 average_attn_weights: bool = True,
                 is_causal: bool = False):
    """``nn.MultiheadAttention.forward`` (eval, no masks) with every size
    taken from the inputs, so a traced graph takes any sequence length."""
    if (key_padding_mask is not None or attn_mask is not None or is_causal
            or self.training or query.dim() != 3):
        # Outside the rewritten case: torch's own forward (the export's
        # dynamic-size check then tells whether its graph is dynamic).
        return type(self).forward(self, query, key, value, key_padding_mask,
                                  need_weights, attn_mask,
                                  average_attn_weights, is_causal)
    if self.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    heads, head_dim = self.num_heads, self.head_dim
    (w_q, w_k, w_v), (b_q, b_k, b_v) = _mha_projections(self)
    # (L, N, E) -> (N * heads, L, head_dim), as torch orders the heads.
    q = F.linear(query, w_q, b_q).reshape(query.shape[0], -1, head_dim)
    k = F.linear(key, w_k, b_k).reshape(key.shape[0], -1, head_dim)
    v = F.linear(value, w_v, b_v).reshape(value.shape[0], -1, head_dim)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    weights = torch.softmax(
        torch.bmm(q * head_dim**-0.5, k.transpose(1, 2)), dim=-1)
    out = torch.bmm(weights, v).transpose(0, 1)
    out = out.reshape(query.shape[0], -1, self.embed_dim)
    out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
    if self.batch_first:
        out = out.transpose(0, 1)
    if not need_weights:
        return out, None
    # (N * heads, L, S) -> (N, heads, L, S)
    weights = weights.reshape(-1, heads, weights.shape[1], weights.shape[2])
    return out, weights.mean(dim=1) if average_attn_weights else weights


#: Module type -> (trace-friendly forward, why an instance is not covered).
REWRITES: Dict[type, tuple] = {
    nn.MultiheadAttention: (_mha_forward, _mha_unsupported),
}

_NO_FORWARD = object()


def _rewrite_for(module: nn.Module) -> Optional[Callable]:
    """The rewritten forward for ``module``, if one covers it: its class
    (or a base) is listed, the class keeps that base's forward, and the
    instance's settings are supported."""
    for base, (forward, unsupported) in REWRITES.items():
        if (isinstance(module, base)
                and type(module).forward is base.forward
                and unsupported(module) is None):
            return forward
    return None


@contextlib.contextmanager
def export_rewrites(model: nn.Module) -> Iterator[List[str]]:
    """Give each module of ``model`` that :data:`REWRITES` covers its
    trace-friendly forward until the block ends.

    Args:
        model (nn.Module): The model about to be traced.

    Yields:
        list[str]: Names of the rewritten modules.
    """
    swapped = []
    try:
        for name, module in model.named_modules():
            forward = _rewrite_for(module)
            if forward is None:
                continue
            # An instance may carry its own forward already (mmcv does that
            # for legacy versions); it is put back as it was.
            swapped.append((name, module,
                            module.__dict__.get('forward', _NO_FORWARD)))
            module.forward = types.MethodType(forward, module)
        yield [name for name, _, _ in swapped]
    finally:
        for _, module, previous in swapped:
            if previous is _NO_FORWARD:
                del module.forward
            else:
                module.forward = previous
