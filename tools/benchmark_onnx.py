"""onnxruntime vs PyTorch CPU latency of each toy variant, in one run.

Example::

    python tools/benchmark_onnx.py --size 64 64 --batch 1 --iters 20

Exports every ``configs/toy/`` variant (initialized weights, dynamic axes)
to a temporary folder, then times ``encode_decode`` in PyTorch (eval,
no_grad) and the graph in onnxruntime on the same input, with the same
number of threads. Prints a Markdown table with the ratio; writes JSON with
``--out``. A speed figure, not a test: run it on an idle machine.
"""
import argparse
import json
import os.path as osp
import tempfile
import time

import tips_mmseg  # noqa: F401  (first: mmcv-lite start-up fix, registries)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402

from tips_mmseg.apis.builders import build_segmentor  # noqa: E402
from tips_mmseg.apis.export import (EncodeDecode, export_onnx,  # noqa: E402
                                    _require)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variants', default=','.join(VARIANTS),
                        help='comma-separated toy variants')
    parser.add_argument('--size', nargs=2, type=int, default=(64, 64),
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1,
                        help='threads for both runtimes (default 1)')
    parser.add_argument('--out', help='JSON with the figures')
    return parser.parse_args(argv)


def median_seconds(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    args = parse_args(argv)
    ort = _require('onnxruntime')
    variants = [v for v in args.variants.split(',') if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f'unknown variants {sorted(unknown)}; choose from '
                         f'{VARIANTS}')
    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    inputs = torch.randn(args.batch, 3, *args.size)
    results = {}
    bar = ProgressBar(len(variants))
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            cfg = Config.fromfile(
                osp.join(ROOT, 'configs', 'toy',
                         f'deeplabv3plus_r18-d8-{variant}_toy-64x64.py'))
            model = build_segmentor(cfg)
            onnx_file = export_onnx(model, osp.join(tmp, f'{variant}.onnx'),
                                    shape=tuple(args.size), dynamic=True)
            session = ort.InferenceSession(
                onnx_file, options, providers=['CPUExecutionProvider'])
            wrapper = EncodeDecode(model).eval()
            array = inputs.numpy()

            def run_torch():
                with torch.no_grad():
                    wrapper(inputs)

            def run_ort():
                session.run(None, {'inputs': array})

            t_torch = median_seconds(run_torch, args.iters, args.warmup)
            t_ort = median_seconds(run_ort, args.iters, args.warmup)
            results[variant] = dict(pytorch_ms=1e3 * t_torch,
                                    onnxruntime_ms=1e3 * t_ort,
                                    speedup=t_torch / t_ort)
            bar.update()
    print()
    print(f'batch {args.batch}, {args.size[0]}x{args.size[1]}, '
          f'{args.threads} thread(s), median of {args.iters}')
    print('| variant | PyTorch (ms) | onnxruntime (ms) | PyTorch / ORT |')
    print('|---|---|---|---|')
    for variant, r in results.items():
        print(f'| {variant} | {r["pytorch_ms"]:.2f} | '
              f'{r["onnxruntime_ms"]:.2f} | {r["speedup"]:.2f}x |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=vars(args), variants=results), f,
                      indent=2)
    return results


if __name__ == '__main__':
    main()
