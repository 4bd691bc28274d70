"""Cost of ShiftConsistencyHook: its extra time / time of its extra forwards.

Runs ``runner.test()`` once with the hook and prints, from that one run,
the time the hook took in total and the time of its shifted forward passes;
their ratio is the overhead factor (the issue aims for <= 1.1).

Example::

    python tools/benchmark_shift_hook.py CONFIG [CHECKPOINT] --num-images 16
"""
import argparse
import os.path as osp
import tempfile

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
    parser.add_argument('--modes', nargs='+', default=['standard', 'circular'],
                        help='any of standard circular crop subpixel')
    parser.add_argument('--device', default=None,
                        help='cpu forces CPU; default: the Runner decides')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


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
        dict(type='ShiftConsistencyHook', num_shifts=args.num_shifts,
             max_shift=args.max_shift, modes=tuple(args.modes))
    ]
    if args.device == 'cpu':
        import os
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    runner = Runner.from_cfg(cfg)
    runner.test()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ShiftConsistencyHook')
    forward = hook.evaluator.forward_time
    ratio = hook.hook_time / forward
    modes = len(hook.evaluator.modes)
    print(f'images: {args.num_images}, shifts per image: {args.num_shifts} '
          f'x {modes} modes ({", ".join(hook.evaluator.modes)}; crop runs up '
          'to 2 windows per shift)')
    print(f'hook total time:        {hook.hook_time:8.3f} s')
    print(f'extra forward passes:   {forward:8.3f} s')
    print(f'overhead factor:        {ratio:8.3f} (aim <= 1.1)')
    return ratio


if __name__ == '__main__':
    main()
