"""Cost of shift consistency: its extra time / time of its extra forwards.

Runs ``runner.test()`` once with ShiftConsistencyHook (ShiftTTAModel +
ShiftConsistencyMetric) and prints, from that one run, the time of all shift
work (shifting, shifted forwards, gathering their labels, and the metric's
scoring) and the time of the shifted forward passes alone; their ratio is
the overhead factor (aim: <= 1.1).

Example::

    python tools/benchmark_shift_hook.py CONFIG [CHECKPOINT] --num-images 16
"""
import argparse
import os.path as osp
import tempfile
import time

import tips_mmseg  # noqa: F401  (first: mmcv-lite start-up fix, registries)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--num-images', type=int, default=16)
    parser.add_argument('--num-shifts', type=int, default=5)
    parser.add_argument('--max-shift', type=int, default=32)
    parser.add_argument('--modes',
                        nargs='+',
                        default=['standard', 'circular'],
                        help='any of standard circular crop subpixel')
    parser.add_argument('--device',
                        default=None,
                        help='cpu forces CPU; default: the Runner decides')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def time_metric_process(metric) -> dict:
    """Accumulate the seconds spent in ``metric.process`` (this tool's
    instance only) into the returned dict."""
    timing = dict(seconds=0.0)
    process = metric.process

    def timed(data_batch, data_samples):
        start = time.perf_counter()
        process(data_batch, data_samples)
        timing['seconds'] += time.perf_counter() - start

    metric.process = timed
    return timing


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = cfg.get('work_dir') or osp.join(tempfile.gettempdir(),
                                                   'benchmark_shift_hook')
    cfg.load_from = args.checkpoint
    cfg.test_dataloader.dataset.indices = args.num_images
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h.get('type') != 'ShiftConsistencyHook'
    ] + [
        dict(type='ShiftConsistencyHook',
             num_shifts=args.num_shifts,
             max_shift=args.max_shift,
             modes=tuple(args.modes))
    ]
    if args.device == 'cpu':
        import os
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    runner = Runner.from_cfg(cfg)
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ShiftConsistencyHook')
    scoring = time_metric_process(hook.metric)
    runner.test()
    predictor = hook.wrapper.predictor
    forward = predictor.forward_time
    total = predictor.shift_time + scoring['seconds']
    ratio = total / forward
    modes = predictor.modes
    print(f'images: {args.num_images}, shifts per image: {args.num_shifts} '
          f'x {len(modes)} modes ({", ".join(modes)}; crop runs up '
          'to 2 windows per shift)')
    print(f'shift work total time:  {total:8.3f} s')
    print(f'extra forward passes:   {forward:8.3f} s')
    print(f'overhead factor:        {ratio:8.3f} (aim <= 1.1)')
    return ratio


if __name__ == '__main__':
    main()
