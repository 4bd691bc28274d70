"""Forward+backward time and memory of each downsampler, as ratios to plain
stride-2 subsampling (``x[:, :, ::2, ::2]``), measured in one interleaved run.

Memory: on CUDA the peak allocated during forward+backward; on CPU the bytes
of the tensors autograd saves for backward plus the output (the activation
memory a layer adds to a training step), counted with saved-tensor hooks,
a tensor saved by several ops once.

On CUDA the layers run under autocast (float16, as mixed-precision training
runs them) unless ``--no-amp``. ``--compile`` times ``torch.compile``d layers
next to the eager ones (``<name>+compile``; the first calls, which compile,
are warm-up). ``--channels-last`` feeds a channels-last input.

Example:
    python tools/benchmark_layers.py --shape 8 256 128 128 --iters 5
    python tools/benchmark_layers.py --device cuda --compile
"""
import argparse
import contextlib
import json
import os.path as osp
import sys
import time

import torch

import tips_mmseg  # noqa: F401
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _benchmark_options import (add_run_options, autocast,  # noqa: E402
                                resolve_amp, sync)
from tips_mmseg.models.layers import DOWNSAMPLE_LAYERS, build_downsample


class StridedSubsample(torch.nn.Module):
    """The baseline: keep component (0, 0)."""

    def forward(self, x):
        return x[:, :, ::2, ::2]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--shape', type=int, nargs=4,
                        default=[8, 256, 128, 128], metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--layers', default=','.join(DOWNSAMPLE_LAYERS))
    add_run_options(parser, compile_help='also time torch.compile(layer)')
    parser.add_argument('--out', help='optional JSON file for the results')
    return resolve_amp(parser.parse_args())


def step(layer, x, args=None):
    x.grad = None
    with autocast(args) if args else contextlib.nullcontext():
        y = layer(x)
    y.float().sum().backward()


def activation_bytes(layer, x, args):
    """Bytes saved for backward plus the output of one forward."""
    saved = {}

    def pack(t):
        # Two ops saving the same tensor (e.g. TIPS's conv and mix both
        # save the input) hold one allocation.
        saved[(t.data_ptr(), t.shape, t.stride())] = \
            t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            autocast(args):
        y = layer(x)
    return sum(saved.values()) + y.numel() * y.element_size()


def peak_memory(layer, x, args):
    device = args.device
    if not device.startswith('cuda'):
        return activation_bytes(layer, x, args)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(layer, x, args)
    sync(device)
    return torch.cuda.max_memory_allocated() - base


def main():
    args = parse_args()
    n, c, h, w = args.shape
    layers = {'strided': StridedSubsample()}
    for name in args.layers.split(','):
        layers[name] = build_downsample(name, c)
    for layer in layers.values():
        layer.to(args.device).train()
    if args.compile:
        for name in list(layers):
            layers[f'{name}+compile'] = torch.compile(layers[name])
    x = torch.randn(n, c, h, w, device=args.device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()

    times = {name: [] for name in layers}
    for _ in range(max(args.warmup, 2 if args.compile else 0)):
        for layer in layers.values():
            step(layer, x, args)
    for _ in range(args.iters):
        for name, layer in layers.items():  # interleaved: fair to drift
            sync(args.device)
            start = time.perf_counter()
            step(layer, x, args)
            sync(args.device)
            times[name].append(time.perf_counter() - start)
    results = {}
    for name, layer in layers.items():
        results[name] = dict(
            time_ms=1000 * sorted(times[name])[len(times[name]) // 2],
            memory_mb=peak_memory(layer, x, args) / 2**20)
    base = results['strided']
    print(f'device={args.device} input={tuple(args.shape)} '
          f'iters={args.iters} amp={args.amp} channels_last='
          f'{args.channels_last} (median fwd+bwd)')
    print('| layer | fwd+bwd ms | time ratio | memory MB | memory ratio |')
    print('|---|---|---|---|---|')
    for name, r in results.items():
        r['time_ratio'] = r['time_ms'] / base['time_ms']
        r['memory_ratio'] = r['memory_mb'] / base['memory_mb']
        print(f"| {name} | {r['time_ms']:.1f} | {r['time_ratio']:.2f} | "
              f"{r['memory_mb']:.0f} | {r['memory_ratio']:.2f} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(device=args.device, shape=args.shape,
                           amp=args.amp, channels_last=args.channels_last,
                           layers=results), f, indent=2)


if __name__ == '__main__':
    main()
