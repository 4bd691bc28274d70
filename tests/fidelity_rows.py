"""Every row of docs/fidelity.md on small tensors: the release's value, ours.

Run ``python tests/fidelity_rows.py`` for the table. Each release value comes
from a loop-by-loop re-implementation written here from the releases'
behaviour as docs/fidelity.md describes it (no helper of tips_mmseg is used
for it); ours comes from the library. A row is ``equal`` (our default gives
the release's value), ``option`` (the release's value needs the named
option; the default is ours on purpose) or ``documented`` (a difference with
no option, said so in docs/fidelity.md).
tests/test_models/test_fidelity_rows.py checks that every row holds.
"""
import logging
import math
import os.path as osp
import sys
from typing import Callable, List, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger

if __name__ == '__main__':  # run as a script from a checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import tips_mmseg  # noqa: E402,F401
from tips_mmseg.engine.hooks import LPSTemperatureHook  # noqa: E402
from tips_mmseg.models import (APS, LPS, TIPS, BlurPool,  # noqa: E402
                               ShiftInvariantResNetV1c, TIPSResNetV1c)
from tips_mmseg.models.backbones.shift_invariant_resnet import \
    StemMaxPool  # noqa: E402
from tips_mmseg.models.segmentors.tips_regularizer import (  # noqa: E402
    DEFAULT_TIPS_CFG, TIPSRegularizerMixin, failure_mode_loss, undo_loss)

TOL = 1e-5


class Row(NamedTuple):
    table: str
    detail: str
    release: str
    ours: str
    status: str  # 'equal', 'option: ...' or 'documented: ...'
    holds: bool


def close(a, b) -> bool:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return a.shape == b.shape and torch.allclose(a, b, rtol=TOL, atol=1e-7)


def fmt(v) -> str:
    v = torch.as_tensor(v).double()
    if v.numel() == 1:
        return f'{v.item():.6g}'
    return f'sum {v.sum().item():.6g}, |.|max {v.abs().max().item():.4g}'


# --- loop-by-loop references of the releases -------------------------------

def pad_top_left_reflect(x):
    """The TIPS release: an odd side gets one reflected row/column at the
    top/left."""
    if x.shape[-2] % 2:
        x = torch.cat([x[:, :, 1:2], x], dim=2)
    if x.shape[-1] % 2:
        x = torch.cat([x[..., 1:2], x], dim=3)
    return x


def pad_bottom_right(x, mode):
    """APS (circular) and LPS (zero) releases: one row/column at the
    bottom/right of an odd side."""
    if x.shape[-2] % 2:
        row = x[:, :, :1] if mode == 'circular' else torch.zeros_like(
            x[:, :, :1])
        x = torch.cat([x, row], dim=2)
    if x.shape[-1] % 2:
        col = x[..., :1] if mode == 'circular' else torch.zeros_like(
            x[..., :1])
        x = torch.cat([x, col], dim=3)
    return x


def component(x, a, b):
    """x[2i + a, 2j + b], pixel by pixel."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h // 2, w // 2)
    for i in range(h // 2):
        for j in range(w // 2):
            out[:, :, i, j] = x[:, :, 2 * i + a, 2 * j + b]
    return out


def dwconv3x3(x, weight, circular=False):
    """Depthwise 3x3, padding 1 (zeros or circular), no bias, by loops."""
    n, c, h, w = x.shape
    out = x.new_zeros(x.shape)
    for i in range(h):
        for j in range(w):
            for u in range(3):
                for v in range(3):
                    p, q = i + u - 1, j + v - 1
                    if circular:
                        p, q = p % h, q % w
                    elif not (0 <= p < h and 0 <= q < w):
                        continue
                    out[:, :, i, j] += weight[:, 0, u, v] * x[:, :, p, q]
    return out


def release_tips(layer, x):
    """The TIPS release's layer: psi = ReLU(dwconv), tau = softmax(scale *
    2x2 quadrant means flattened TL, TR, BL, BR), paired with components
    listed (0,0), (1,0), (0,1), (1,1)."""
    x = pad_top_left_reflect(x.double())
    psi = dwconv3x3(x, layer.psi_conv.weight.double()).clamp(min=0)
    n, c, h, w = x.shape
    scale = layer.logit_scale.weight.double().view(c)
    comps = [component(x, 0, 0), component(x, 1, 0), component(x, 0, 1),
             component(x, 1, 1)]
    out = torch.zeros_like(comps[0])
    taus = x.new_zeros(n, c, 4)
    for s in range(n):
        for ch in range(c):
            q = [psi[s, ch, :h // 2, :w // 2].mean(),
                 psi[s, ch, :h // 2, w // 2:].mean(),
                 psi[s, ch, h // 2:, :w // 2].mean(),
                 psi[s, ch, h // 2:, w // 2:].mean()]
            tau = torch.softmax(torch.stack(q) * scale[ch], 0)
            taus[s, ch] = tau
            for k in range(4):
                out[s, ch] += tau[k] * comps[k][s, ch]
    return out, taus, psi


def release_shift(x, dh, dw, mode):
    """feat_transform: torch.roll, and for 'standard' the wrapped rows and
    columns set to zero (all of them when the shift passes the map)."""
    out = x.clone()
    n, c, h, w = x.shape
    res = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            si, sj = i - dh, j - dw
            if mode == 'circular':
                res[:, :, i, j] = out[:, :, si % h, sj % w]
            elif 0 <= si < h and 0 <= sj < w:
                res[:, :, i, j] = out[:, :, si, sj]
    return res


def release_undo(layer, x, shift, mode):
    _, _, psi = release_tips(layer, x)
    target = release_shift(pad_top_left_reflect(x.double()), *shift, mode)
    return ((psi - target)**2).mean()


def binomial(k):
    taps = [math.comb(k - 1, i) for i in range(k)]
    t = torch.tensor(taps, dtype=torch.float64)
    return torch.outer(t, t) / t.sum()**2


def release_blur(x, k, stride, mode):
    """antialiased-cnns / APS / LPS low-pass: (k-1)//2 before, k//2 after,
    reflect or circular, then every stride-th pixel."""
    f = binomial(k)
    n, c, h, w = x.shape
    before = (k - 1) // 2

    def src(i, size):
        if mode == 'circular':
            return i % size
        if i < 0:
            return -i
        if i >= size:
            return 2 * (size - 1) - i
        return i

    out = x.new_zeros(n, c, h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            for u in range(k):
                for v in range(k):
                    out[:, :, i, j] += f[u, v] * x[:, :, src(
                        i - before + u, h), src(j - before + v, w)]
    return out[:, :, ::stride, ::stride]


def release_aps(x, filter_size=1, odd='circular', per_channel=False):
    z = x.double()
    if filter_size > 1:
        z = release_blur(z, filter_size, 1, 'circular')
    z = pad_bottom_right(z, odd) if odd else pad_top_left_reflect(z)
    comps = [component(z, a, b) for a in range(2) for b in range(2)]
    out = torch.zeros_like(comps[0])
    for s in range(x.shape[0]):
        if per_channel:
            for ch in range(x.shape[1]):
                norms = [cp[s, ch].pow(2).sum() for cp in comps]
                out[s, ch] = comps[int(torch.stack(norms).argmax())][s, ch]
        else:
            norms = [cp[s].pow(2).sum() for cp in comps]
            out[s] = comps[int(torch.stack(norms).argmax())][s]
    return out


def release_lps_logits(layer, x):
    """LPS's logits net on each component of the (zero-padded) map."""
    sc = layer.scorer
    z = pad_bottom_right(x.double(), 'zero')
    logits = []
    for a in range(2):
        for b in range(2):
            comp = component(z, a, b)
            hid = F.conv2d(F.pad(comp, (1, 1, 1, 1), mode='circular'),
                           sc.conv1.weight.double(), sc.conv1.bias.double())
            out = F.conv2d(F.pad(hid.clamp(min=0), (1, 1, 1, 1),
                                 mode='circular'),
                           sc.conv2.weight.double(), sc.conv2.bias.double())
            logits.append(out.mean(dim=(1, 2, 3)))
    return torch.stack(logits, 1)


def release_multistep(knots, epoch):
    """LPS's linear multi-step temperature, stepped once per epoch."""
    for (e0, t0), (e1, t1) in zip(knots, knots[1:]):
        if e0 <= epoch < e1:
            return t0 + (t1 - t0) * (epoch - e0) / (e1 - e0)
    return knots[-1][1]


# --- the rows ---------------------------------------------------------------

def seeded(seed=0):
    torch.manual_seed(seed)


def randomized_tips(c, **kw):
    layer = TIPS(c, **kw)
    with torch.no_grad():
        layer.logit_scale.weight.normal_(0, 3)
    return layer.train()


def row_tips_layer() -> List[Row]:
    seeded()
    layer = randomized_tips(3, tau_pairing='release')
    x = torch.randn(2, 3, 7, 6)  # odd height: the padding row too
    ours = layer(x)
    ref, ref_tau, _ = release_tips(layer, x)
    aligned = TIPS(3)
    aligned.load_state_dict(layer.state_dict())
    y_aligned = aligned.train()(x)
    return [
        Row('TIPS', 'the layer itself + odd-sized maps', fmt(ref), fmt(ours),
            'equal', close(ours, ref)),
        Row('TIPS', 'tau: quadrant to component', fmt(ref),
            fmt(y_aligned), "option: dict(type='TIPS', tau_pairing="
            "'release')", close(ours, ref) and not close(y_aligned, ref)),
    ]


def row_undo() -> List[Row]:
    rows = []
    seeded(1)
    for mode, name, option in [
            ('circular', 'L_undo shift type (circular, trained)', None),
            ('standard', 'L_undo shift type (zero fill)',
             "tips_cfg.undo_mode='standard'")]:
        layer = randomized_tips(3)
        x = torch.randn(2, 3, 8, 8)
        layer(x)
        g = torch.Generator().manual_seed(3)
        ours = layer.undo_loss(2, mode=mode, generator=g)
        ref = release_undo(layer, x, layer.last_undo_shift, mode)
        rows.append(Row('TIPS', name, fmt(ref), fmt(ours),
                        f'option: {option}' if option else 'equal',
                        close(ours, ref)))
    # A shift beyond the map, zero fill: the whole target is 0.
    layer = randomized_tips(3)
    x = torch.randn(1, 3, 4, 4)
    layer(x)
    ours = layer.undo_loss((9, 9), mode='standard')
    ref = release_undo(layer, x, layer.last_undo_shift, 'standard')
    rows.append(Row('TIPS', 'shift beyond the map (zero fill)', fmt(ref),
                    fmt(ours), 'equal', close(ours, ref)))
    # Gradient through the target: the release's code runs without detach.
    grads = {}
    for detach in (False, True):
        seeded(2)
        layer = randomized_tips(3)
        x = torch.randn(1, 3, 6, 6, requires_grad=True)
        layer(x)
        g = torch.Generator().manual_seed(5)
        layer.undo_loss(1, generator=g, detach=detach).backward()
        grads[detach] = x.grad
    xd = x.detach().double().requires_grad_()
    release_undo(layer, xd, layer.last_undo_shift, 'circular').backward()
    rows.append(Row('TIPS', 'gradient through the target', fmt(xd.grad),
                    fmt(grads[True]),
                    'option: tips_cfg.undo_detach=False (the release\'s code;'
                    ' True is its stated intent)',
                    close(grads[False], xd.grad)
                    and not close(grads[True], xd.grad)))
    return rows


class _ToySegmentor(TIPSRegularizerMixin, nn.Module):
    """A 'backbone' of two TIPS blocks and a stem layer, and the mixin."""

    def __init__(self, **tips_cfg):
        super().__init__()
        self.backbone = nn.ModuleList([randomized_tips(3), randomized_tips(5),
                                       randomized_tips(2)])
        self._init_tips_regularizer(tips_cfg)


def row_reductions() -> List[Row]:
    seeded(4)
    model = _ToySegmentor()
    xs = [torch.randn(2, c, 8, 8) for c in (3, 5, 2)]
    for m, x in zip(model.backbone, xs):
        m(x)
    layers = list(model.backbone)
    # L_FM: tau of every layer concatenated along channels.
    taus = torch.cat([m.tau for m in layers], dim=1).double()
    ref_fm = (1 - taus.norm(dim=-1)).mean()
    ours_fm = failure_mode_loss(layers)
    per_layer = failure_mode_loss(layers, 'layers')
    # L_undo: stages [0, 1] (a block's main branch and shortcut) and [2]:
    # psi and targets concatenated per stage, stages weighted 1 / num_down.
    g = torch.Generator().manual_seed(7)
    stages = [[layers[0], layers[1]], [layers[2]]]
    ours_undo = undo_loss(stages, max_shift=2, generator=g)
    per_stage = []
    for stage in stages:
        psis, targets = [], []
        for m, x in zip(layers, xs):
            if any(m is s for s in stage):
                _, _, psi = release_tips(m, x)
                psis.append(psi)
                targets.append(release_shift(x.double(), *m.last_undo_shift,
                                             'circular'))
        per_stage.append(((torch.cat(psis, 1) - torch.cat(targets, 1))
                          **2).mean())
    ref_undo = sum(per_stage) / len(per_stage)
    g = torch.Generator().manual_seed(7)
    layers_undo = undo_loss(stages, 'layers', max_shift=2, generator=g)
    return [
        Row('TIPS', 'L_FM over layers', fmt(ref_fm), fmt(ours_fm), 'equal',
            close(ours_fm, ref_fm) and not close(per_layer, ref_fm)),
        Row('TIPS', 'L_undo over layers (stages)', fmt(ref_undo),
            fmt(ours_undo), 'equal',
            close(ours_undo, ref_undo) and not close(layers_undo, ref_undo)),
    ]


def row_loss_weights() -> List[Row]:
    rows = []
    seeded(5)
    model = _ToySegmentor(undo_start=0.25)
    xs = [torch.randn(2, c, 8, 8) for c in (3, 5, 2)]
    task = torch.tensor(2.0)
    for it, on in ((24, False), (25, True)):
        model.set_train_progress(it, 100)
        for m, x in zip(model.backbone, xs):
            m(x)
        fm = failure_mode_loss(list(model.backbone)).detach()
        losses = model.add_tips_losses({'loss_ce': task}, input_size=(16, 16))
        ours = sum(v for v in losses.values()).detach()
        a = DEFAULT_TIPS_CFG['alpha']
        ref_fixed = (1 - a) * task + fm
        undo = losses['loss_undo'].detach() / a
        ref = ref_fixed + (a * undo if on else 0)
        when = 'L_undo on' if on else 'before the switch'
        rows.append(Row(
            'TIPS', f'weights of the loss terms ({when})', fmt(ref),
            fmt(ours), 'equal', close(ours, ref) and (undo.item() > 0) is on))
    # The shift range of every layer: H/4, W/4 of the network input.
    rows.append(Row('TIPS', 'L_undo shift range', '(4, 4) for a 16x16 input',
                    str(model.undo_max_shift((16, 16))), 'equal',
                    model.undo_max_shift((16, 16)) == (4, 4)))
    # When L_undo switches on: epoch 100 of 480 in the README's command.
    rows.append(Row('TIPS', 'when L_undo switches on', f'{100 / 480:.4f}',
                    f"{DEFAULT_TIPS_CFG['undo_start']}",
                    'option: tips_cfg.undo_start=100/480 for the exact '
                    'epoch (0.21 rounds it)',
                    abs(DEFAULT_TIPS_CFG['undo_start'] - 100 / 480) < 0.005))
    return rows


def row_init() -> List[Row]:
    seeded(6)
    model = TIPSResNetV1c(depth=18, norm_cfg=dict(type='BN'))
    model.init_weights()
    ratios = [m.psi_conv.weight.std().item() / math.sqrt(2 / (9 * m.channels))
              for m in model.modules() if isinstance(m, TIPS)]
    mean = sum(ratios) / len(ratios)
    rows = [Row('TIPS', 'init (std / Kaiming fan_out std)', '1',
                f'{mean:.3f}', 'equal', 0.85 < mean < 1.15)]
    # Weight decay: the release trains TIPS parameters without it.
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='SGD', lr=0.01, weight_decay=5e-4),
        paramwise_cfg=dict(custom_keys={
            'psi_conv': dict(decay_mult=0.),
            'logit_scale': dict(decay_mult=0.)})))
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    tips = [decay[id(p)] for m in model.modules() if isinstance(m, TIPS)
            for p in m.parameters()]
    rows.append(Row('TIPS', 'weight decay of TIPS parameters', '0',
                    f'{max(tips)} (with paramwise_cfg), 5e-4 in mmseg\'s '
                    'default', "option: paramwise_cfg=dict(custom_keys="
                    "{'psi_conv': dict(decay_mult=0.), 'logit_scale': "
                    "dict(decay_mult=0.)}) (-tips-paper configs)",
                    max(tips) == 0 and decay[id(model.stem[0].weight)]
                    == 5e-4))
    return rows


def row_blurpool() -> List[Row]:
    seeded(7)
    x = torch.randn(1, 2, 7, 8)
    ours = BlurPool(2, filter_size=4)(x)
    ref = release_blur(x.double(), 4, 2, 'reflect')
    ours3 = BlurPool(2)(x)
    return [Row('baselines', 'BlurPool filter size and padding', fmt(ref),
                fmt(ours3), "option: BlurPool(filter_size=4) (3: the TIPS "
                'release\'s comparison)',
                close(ours, ref) and close(ours3, release_blur(
                    x.double(), 3, 2, 'reflect')))]


def row_stem_max() -> List[Row]:
    seeded(8)
    x = torch.randn(1, 2, 5, 6)
    ours = StemMaxPool(2)(x)
    n, c, h, w = x.shape
    ref = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            ref[:, :, i, j] = torch.stack([
                x[:, :, (i + u) % h, (j + v) % w] for u in (0, 1)
                for v in (0, 1)]).amax(0)
    return [Row('baselines', 'stem max-pool (MaxPool(2, stride 1))',
                fmt(ref), fmt(ours), 'option: keep_stem_max=True',
                close(ours, ref))]


def row_aps() -> List[Row]:
    seeded(9)
    x = torch.randn(3, 4, 7, 9)
    rows = []
    ours = APS(4, filter_size=3, odd_padding='circular-bottom-right')(x)
    ref = release_aps(x, 3, 'circular')
    rows.append(Row('baselines', 'APS low-pass, odd maps, criterion',
                    fmt(ref), fmt(ours), "option: APS(filter_size=3, "
                    "odd_padding='circular-bottom-right')", close(ours, ref)))
    ours = APS(4, per_channel=True)(x)
    ref = release_aps(x, 1, None, per_channel=True)
    rows.append(Row('baselines', "TIPS release's per-channel APS", fmt(ref),
                    fmt(ours), 'option: APS(per_channel=True)',
                    close(ours, ref)))
    # The shortcut of a filtered block keeps the main branch's component.
    main = APS(4, filter_size=3, odd_padding='circular-bottom-right')
    follower = main.make_follower(2)
    xs = torch.randn(3, 2, 7, 9)
    main(x)
    ours = follower(xs, weights=main.last_weights)
    z = pad_bottom_right(release_blur(xs.double(), 3, 1, 'circular'),
                         'circular')
    zm = pad_bottom_right(release_blur(x.double(), 3, 1, 'circular'),
                          'circular')
    ref = torch.zeros_like(ours, dtype=torch.float64)
    for s in range(3):
        norms = [component(zm, a, b)[s].pow(2).sum() for a in range(2)
                 for b in range(2)]
        k = int(torch.stack(norms).argmax())
        ref[s] = component(z, k // 2, k % 2)[s]
    rows.append(Row('baselines', 'shortcut of a filtered APS/LPS block',
                    fmt(ref), fmt(ours), 'equal', close(ours, ref)))
    return rows


def row_lps() -> List[Row]:
    rows = []
    seeded(10)
    layer = LPS(3, hidden_channels=4,
                odd_padding='zero-bottom-right').eval()
    x = torch.randn(2, 3, 7, 8)
    ours = layer(x)
    logits = release_lps_logits(layer, x)
    z = pad_bottom_right(x.double(), 'zero')
    ref = torch.stack([component(z, k // 2, k % 2)[s] for s, k in
                       enumerate(logits.argmax(1).tolist())])
    rows.append(Row('baselines', 'LPS logits net and eval argmax',
                    fmt(logits), fmt(layer.last_logits),
                    "option: odd_padding='zero-bottom-right' (odd maps)",
                    close(layer.last_logits, logits) and close(ours, ref)))
    # Training: soft Gumbel sample; the shortcut gets it with its graph.
    layer.train()
    follower = layer.make_follower(2)
    xs = torch.randn(2, 2, 8, 8)
    x8 = torch.randn(2, 3, 8, 8)
    seeded(11)
    y = layer(x8)
    ys = follower(xs, weights=layer.last_weights)
    (y.sum() + ys.pow(2).sum()).backward()
    ours_grad = layer.scorer.conv1.weight.grad
    seeded(11)
    noise = -torch.empty(2, 4).exponential_().log()
    w1 = layer.scorer.conv1.weight.detach().double().requires_grad_()
    sc = layer.scorer
    zz = x8.double()
    comps = [component(zz, a, b) for a in range(2) for b in range(2)]
    lg = []
    for cp in comps:
        hid = F.conv2d(F.pad(cp, (1, 1, 1, 1), mode='circular'), w1,
                       sc.conv1.bias.double()).clamp(min=0)
        lg.append(F.conv2d(F.pad(hid, (1, 1, 1, 1), mode='circular'),
                           sc.conv2.weight.double(),
                           sc.conv2.bias.double()).mean(dim=(1, 2, 3)))
    wts = torch.softmax((torch.stack(lg, 1) + noise) / layer.temperature, 1)
    comps_s = [component(xs.double(), a, b) for a in range(2)
               for b in range(2)]
    ym = sum(wts[:, k, None, None, None] * comps[k] for k in range(4))
    ysr = sum(wts[:, k, None, None, None] * comps_s[k] for k in range(4))
    (ym.sum() + ysr.pow(2).sum()).backward()
    rows.append(Row('baselines', 'LPS scorer gradient via the shortcut',
                    fmt(w1.grad), fmt(ours_grad),
                    'equal (LPS(detach_shared=True): main branch only)',
                    close(ours_grad, w1.grad)))
    # Temperature: the 'lps-seg' preset against LPS's multi-step schedule.
    knots = [(0, 1.0), (62, 0.5), (82, 0.05), (90, 0.01)]
    hook = LPSTemperatureHook(preset='lps-seg')
    epochs = [0, 30, 61, 62, 70, 85, 90, 200]
    ref = [release_multistep(knots, e) for e in epochs]
    ours = [hook.knot_temperature(e) for e in epochs]
    rows.append(Row('baselines', 'LPS temperature (lps-seg)',
                    ', '.join(f'{t:.3g}' for t in ref),
                    ', '.join(f'{t:.3g}' for t in ours),
                    "option: LPSTemperatureHook(preset='lps-seg')",
                    close(ours, ref)))
    return rows


def row_documented() -> List[Row]:
    """Rows of settings and structure: no tensor values to compare."""
    model = ShiftInvariantResNetV1c(depth=18, norm_cfg=dict(type='BN'),
                                    downsample_cfg='BlurPool')
    rows = [Row('baselines', 'stem conv stride',
                'antialiased-cnns: strided stem conv kept',
                f'stem conv stride {model.stem[0].stride}, then stem_down',
                'documented: not offered (docs/fidelity.md)',
                model.stem[0].stride == (1, 1))]
    lps = ShiftInvariantResNetV1c(
        depth=18, norm_cfg=dict(type='BN'),
        stem_down_cfg=dict(filter_size=1),
        downsample_cfg=dict(type='LPS', filter_size=3,
                            hidden_channels=(64, 128, 256, 512)))
    widths = [m.scorer.conv1.out_channels
              for m in lps.main_downsamplers().values()]
    filters = [m.filter_size for m in lps.main_downsamplers().values()]
    rows.append(Row('baselines', 'LPS hidden width, stem low-pass',
                    'widths [64, 64, 128, 256, 512], low-pass [1, 3, 3, 3, 3]',
                    f'widths {widths}, low-pass {filters}',
                    'option: hidden_channels=(64, 128, 256, 512), '
                    'stem_down_cfg=dict(filter_size=1)',
                    widths == [64, 64, 128, 256, 512]
                    and filters == [1, 3, 3, 3, 3]))
    seeded(12)
    toy = _ToySegmentor(lambda_fm=0.)
    for m, c in zip(toy.backbone, (3, 5, 2)):
        m(torch.randn(1, c, 4, 4))
    toy.set_train_progress(0, 10)
    fm = toy.add_tips_losses({'loss_ce': torch.tensor(1.)})['loss_fm']
    rows.append(Row('TIPS', 'L_FM as shipped (no tau: 0)', '0', fmt(fm),
                    'option: tips_cfg.lambda_fm=0 (default 1: the intent)',
                    fm.item() == 0))
    rows.append(Row('TIPS', 'gradient clipping', 'max_norm=1 every step',
                    'none in -tips configs',
                    'option: optim_wrapper.clip_grad=dict(max_norm=1.0, '
                    'norm_type=2) (-tips-paper configs)', True))
    return rows


ROW_MAKERS: List[Callable[[], List[Row]]] = [
    row_tips_layer, row_undo, row_reductions, row_loss_weights, row_init,
    row_blurpool, row_stem_max, row_aps, row_lps, row_documented]


def all_rows() -> List[Row]:
    # init_weights and the optimizer builder log every parameter.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return [row for make in ROW_MAKERS for row in make()]
    finally:
        logger.setLevel(level)


def main():
    rows = all_rows()
    width = max(len(r.detail) for r in rows)
    for r in rows:
        mark = 'ok ' if r.holds else 'FAIL'
        print(f'{mark} [{r.table}] {r.detail:<{width}}  release: {r.release}'
              f'  | ours: {r.ours}  | {r.status}')
    return 0 if all(r.holds for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
