"""Cost of shift-invariant downsampling in DeepLabV3+ D8, per downsampler.

Builds DeepLabV3+ R{depth}-D8 from this repository's VOC configs once per
variant (SyncBN -> BN, no pretrained weights, the data preprocessor sized to
``--size``) and measures, in ONE run with the variants interleaved so that
drift in a shared machine's load hits them alike:

* ``train_step_s``: median time of ``model.train_step`` (data preprocessor,
  forward, losses - TIPS with L_FM and L_undo switched on -, backward, SGD
  step), as the Runner runs it;
* ``infer_s``: median time of ``model.test_step`` (no grad, eval mode);
* ``gflops``: multiply-accumulates of one inference forward (``mode='tensor'``,
  one image, counted by mmengine's :class:`FlopAnalyzer`; see
  :func:`count_gflops` for the downsamplers' ops it counts);
* ``params_m``: parameters, in millions;
* ``peak_mem_mb``: peak memory a training step adds. CUDA: the peak of
  ``torch.cuda.max_memory_allocated`` above what was allocated before the
  step. CPU: the same quantity from the profiler's memory timeline (the
  peak of bytes allocated minus freed, see :func:`allocated_peak_bytes`) - in
  the first training step of a fresh process per variant: activations,
  gradients, SGD momentum.

On CUDA the training step runs with mmengine's ``AmpOptimWrapper`` (float16
autocast and loss scaling, as mixed-precision configs train) and inference
under float16 autocast, unless ``--no-amp``. ``--compile`` times the models
with ``torch.compile``d forwards (compilation happens in the warm-up
iterations; FLOPs and memory are of the eager models). ``--channels-last``
converts the models to the channels-last memory format.

Every figure is printed also as a ratio to ``vanilla``. The JSON also keeps
each iteration's times (``*_all``) and their minimum (``*_min_s``): on a
shared machine the least-disturbed iteration is often the fairer figure.

Example::

    python tools/benchmark.py --depth 50 --size 256 --batch 2 --iters 5 \\
        --out work_dirs/benchmark_r50_256.json
"""
import argparse
import gc
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

import torch

import tips_mmseg  # noqa: F401  (first: mmcv-lite start-up fix, registries)

from mmengine.analysis import FlopAnalyzer  # noqa: E402
from mmengine.analysis.jit_handles import \
    elementwise_flop_counter  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.optim import AmpOptimWrapper, OptimWrapper  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _benchmark_options import (add_run_options, autocast,  # noqa: E402
                                resolve_amp, sync)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO_ROOT, 'configs', 'deeplabv3plus',
                  'deeplabv3plus_r{depth}-d8-{variant}_4xb4-20k_'
                  'voc12aug-512x512.py')
VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')
METRICS = ('train_step_s', 'infer_s', 'gflops', 'params_m', 'peak_mem_mb')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--depth', type=int, default=50,
                        choices=(18, 50, 101))
    parser.add_argument('--size', type=int, default=256,
                        help='square input side')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5,
                        help='timed iterations per variant (median)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--variants', default=','.join(VARIANTS))
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the per-variant memory subprocesses')
    add_run_options(parser,
                    compile_help='torch.compile each model\'s forward')
    parser.add_argument('--out', required=True, help='JSON file to write')
    # Internal: measure one variant's peak memory in this (fresh) process.
    parser.add_argument('--memory-of', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(',') if v.strip()]
    if args.batch < 2:
        # ASPP's image-pool BN sees one value per channel per image.
        parser.error('--batch must be >= 2: BN in the ASPP image pool needs '
                     'more than one value per channel in training')
    resolve_amp(args)
    if args.amp and not args.device.startswith('cuda'):
        parser.error('--amp needs --device cuda (mmengine\'s AmpOptimWrapper '
                     'runs on GPUs only)')
    if args.compile and args.warmup < 2:
        args.warmup = 2  # the first calls compile (train, then eval)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f'unknown variants {unknown}; choose from {VARIANTS}')
    return args


def _to_bn(cfg):
    """SyncBN -> BN everywhere (modules built outside a Runner keep SyncBN)."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        for value in cfg.values():
            _to_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _to_bn(value)


def build_model(depth: int, variant: str, size: int, device: str):
    """DeepLabV3+ R{depth}-D8 with ``variant`` downsampling, random init."""
    cfg = Config.fromfile(CONFIG.format(depth=depth, variant=variant))
    model_cfg = cfg.model
    _to_bn(model_cfg)
    model_cfg.pretrained = None
    model_cfg.backbone.init_cfg = None
    model_cfg.data_preprocessor.size = (size, size)
    model = MODELS.build(model_cfg).to(device)
    if hasattr(model, 'set_train_progress'):
        # TIPS: L_undo on, as in the last (1 - eps) of training.
        model.set_train_progress(1, 1)
    return model


def make_batch(batch: int, size: int, num_classes: int, seed: int = 0):
    """A fixed random batch in the data preprocessor's input format."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, size, size), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class Variant:
    """One model, its optimizer and its timings."""

    def __init__(self, name: str, args):
        self.name = name
        self.device = args.device
        self.model = build_model(args.depth, name, args.size, args.device)
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        sgd = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9,
                              weight_decay=5e-4)
        self.args = args
        self.optim = (AmpOptimWrapper(optimizer=sgd, dtype='float16')
                      if args.amp else OptimWrapper(sgd))
        self.data = make_batch(args.batch, args.size,
                               self.model.decode_head.num_classes)
        self.times: Dict[str, List[float]] = dict(train_step_s=[], infer_s=[])

    def train_step(self):
        self.model.train()
        self.model.train_step(self.data, self.optim)

    def compile(self):
        """Compile the forward (train_step and test_step call it)."""
        self.model.forward = torch.compile(self.model.forward)

    def infer(self):
        self.model.eval()
        with torch.no_grad(), autocast(self.args):
            self.model.test_step(self.data)

    def timed(self, what: str):
        fn = self.train_step if what == 'train_step_s' else self.infer
        sync(self.device)
        start = time.perf_counter()
        fn()
        sync(self.device)
        self.times[what].append(time.perf_counter() - start)


def count_gflops(model, size: int, device: str) -> float:
    """GMACs of one inference forward of one ``size`` x ``size`` image.

    mmengine's FlopAnalyzer counts multiply-accumulates of convolutions (the
    depthwise ones of TIPS and BlurPool, LPS's scorer), matmuls and einsums
    (the weighted sum of components of TIPS and LPS, 1 per input element),
    BN, upsampling and adaptive average pooling (TIPS's quadrant means);
    added here: vector norms (APS's component norms, 1 per input element).
    Not counted, as in mmengine and fvcore: elementwise ops (ReLU, residual
    adds, softmax), max-pooling (the vanilla stem) and copies (APS/LPS's
    selection of one component) - all below 0.1% of a DeepLabV3+.
    """
    model.eval()
    x = torch.randn(1, 3, size, size, device=device)
    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.set_op_handle(
        'aten::linalg_vector_norm', elementwise_flop_counter(1, 0))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total() / 1e9


def peak_memory_mb(variant: Variant) -> float:
    """Peak memory added by one training step (see the module docstring)."""
    gc.collect()
    if variant.device.startswith('cuda'):
        sync(variant.device)
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        variant.train_step()
        sync(variant.device)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return allocated_peak_bytes(variant.train_step) / 2**20


def allocated_peak_bytes(fn) -> int:
    """Peak of the bytes torch holds in tensors while ``fn`` runs, on the
    CPU: what ``max_memory_allocated`` is on CUDA.

    The profiler's memory timeline lists every tensor allocation and free;
    their running sum peaks where the step holds most tensors. Allocator
    caches and the C library's slack, which make the resident set move by
    tens of MB between identical runs, do not count.
    """
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, MemoryProfileTimeline
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=True, with_stack=True) as prof:
        fn()
    timeline = MemoryProfileTimeline(prof._memory_profile()).timeline
    current = peak = 0
    for _, action, _, size in sorted(timeline, key=lambda event: event[0]):
        if action == Action.CREATE:
            current += size
        elif action == Action.DESTROY:
            current -= size
        peak = max(peak, current)
    return peak


def memory_in_fresh_process(name: str, args) -> float:
    """Run this script with ``--memory-of name`` and read its answer."""
    cmd = [sys.executable, osp.abspath(__file__), '--memory-of', name,
           '--depth', str(args.depth), '--size', str(args.size),
           '--batch', str(args.batch), '--device', args.device,
           '--variants', name, '--out', os.devnull,
           '--amp' if args.amp else '--no-amp']
    if args.channels_last:
        cmd.append('--channels-last')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith('peak_mem_mb=')]
    if proc.returncode or not lines:
        raise RuntimeError(f'memory measurement of {name} failed:\n'
                           f'{proc.stdout}\n{proc.stderr}')
    return float(lines[-1].split('=')[1])


def median(values: List[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else \
        (values[mid - 1] + values[mid]) / 2


def report(results: Dict[str, dict], args) -> str:
    """A markdown table of the figures and their ratios to vanilla."""
    base = results.get('vanilla')
    lines = [
        f'DeepLabV3+ R{args.depth}-D8, {args.batch}x3x{args.size}x'
        f'{args.size}, device={args.device}, torch threads='
        f'{torch.get_num_threads()}, amp={args.amp}, compile={args.compile}, '
        f'channels_last={args.channels_last}, median of {args.iters} '
        'interleaved iterations', '',
        '| variant | train step s | infer s | GFLOPs | params M | '
        'peak mem MB |', '|---|---|---|---|---|---|'
    ]
    for name, r in results.items():
        cells = []
        for key in METRICS:
            value = r.get(key)
            if value is None:
                cells.append('n/a')
                continue
            cell = f'{value:.3f}' if key.endswith('_s') else f'{value:.2f}'
            if base is not None and base.get(key):
                cell += f' ({value / base[key]:.2f}x)'
            cells.append(cell)
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_of:
        print(f'peak_mem_mb={peak_memory_mb(Variant(args.memory_of, args))}')
        return None

    variants = {}
    for name in args.variants:
        print(f'[build] {name}', flush=True)
        variants[name] = Variant(name, args)
    results = {}
    for name, v in variants.items():
        results[name] = dict(
            gflops=count_gflops(v.model, args.size, args.device),
            params_m=sum(p.numel() for p in v.model.parameters()) / 1e6)
        print(f'[flops] {name}: {results[name]["gflops"]:.2f} GFLOPs, '
              f'{results[name]["params_m"]:.2f} M params', flush=True)
        if args.compile:
            v.compile()
    for i in range(args.warmup + args.iters):
        tag = 'warmup' if i < args.warmup else 'iter'
        for what in ('train_step_s', 'infer_s'):
            for name, v in variants.items():  # interleaved
                v.timed(what)
            print(f'[{tag} {i + 1}] {what}: ' + ', '.join(
                f'{n} {v.times[what][-1]:.3f}' for n, v in variants.items()),
                  flush=True)
    for name, v in variants.items():
        for what, times in v.times.items():
            timed = times[args.warmup:]
            results[name][what] = median(timed)
            results[name][what[:-2] + '_min_s'] = min(timed)
            results[name][what[:-2] + '_all'] = timed
    del variants
    gc.collect()
    for name in args.variants:
        if args.no_memory:
            results[name]['peak_mem_mb'] = None
            continue
        results[name]['peak_mem_mb'] = memory_in_fresh_process(name, args)
        print(f'[memory] {name}: {results[name]["peak_mem_mb"]:.0f} MB',
              flush=True)

    print(report(results, args))
    out = dict(
        depth=args.depth, size=args.size, batch=args.batch,
        iters=args.iters, device=args.device, amp=args.amp,
        compile=args.compile, channels_last=args.channels_last,
        threads=torch.get_num_threads(), torch=torch.__version__,
        variants=results)
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
