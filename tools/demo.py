"""The main job on a machine with no GPU and no datasets: TIPS vs vanilla.

Writes the toy dataset (if missing), trains DeepLabV3+ R18-D8 on it for each
variant with mmengine's Runner (``configs/toy/``), tests it with the
shift-consistency hook beside mIoU, measures MSB and the consistency map, and
writes ``WORK_DIR/report.md`` with a table and PNG plots.

Example:
    python tools/demo.py --work-dir work_dirs/demo               # make demo
    python tools/demo.py --variants vanilla,blurpool,aps,lps,tips --iters 300
"""
import argparse
import json
import os
import os.path as osp
import time

from mmengine.config import Config
from mmengine.runner import Runner

import tips_mmseg  # noqa: F401  (registers everything)
from tips_mmseg.analysis import analyze_msb
from tips_mmseg.apis import evaluate_shift_consistency
from tips_mmseg.datasets import write_toy_dataset
from tips_mmseg.visualization.demo_report import (draw_loss_curves,
                                                  draw_metric_bars,
                                                  draw_consistency_maps,
                                                  write_report)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'toy',
                      'deeplabv3plus_r18-d8-{}_toy-64x64.py')
VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy')
    parser.add_argument(
        '--variants', default='vanilla,tips',
        help=f'comma-separated, from {",".join(VARIANTS)}')
    parser.add_argument('--iters', type=int, default=300,
                        help='training iterations per variant')
    parser.add_argument('--max-shift', type=int, default=8,
                        help='largest shift (px) of the shift metrics')
    parser.add_argument('--heatmap-max-shift', type=int, default=4,
                        help='half-width (px) of the consistency map')
    parser.add_argument('--heatmap-step', type=int, default=1,
                        help='grid spacing (px) of the consistency map; 1 '
                        'shows the odd/even pattern of aliasing')
    parser.add_argument('--heatmap-images', type=int, default=4,
                        help='val images averaged in the map (one forward '
                        'per image and grid point)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def toy_config(variant: str, args) -> Config:
    """The variant's toy config, sized by the command line."""
    if variant not in VARIANTS:
        raise ValueError(f'Unknown variant {variant!r}; choose from '
                         f'{", ".join(VARIANTS)}.')
    cfg = Config.fromfile(TOY_CONFIG.format(variant))
    cfg.work_dir = osp.join(args.work_dir, variant)
    cfg.randomness = dict(seed=args.seed)
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters
    cfg.param_scheduler[0].end = args.iters
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.logger.interval = max(1, args.iters // 10)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = args.data_root
    for hook in cfg.custom_hooks:
        if hook['type'] == 'ShiftConsistencyHook':
            hook['max_shift'] = args.max_shift
    return cfg


def run_variant(variant: str, args) -> dict:
    """Train, test (mIoU + shift metrics), MSB and consistency map."""
    cfg = toy_config(variant, args)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    metrics = runner.test()  # the hook adds the shift keys beside mIoU
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    consistency = evaluate_shift_consistency(
        model, runner.test_dataloader, num_shifts=5,
        max_shift=args.max_shift, seed=args.seed, modes=('standard', ),
        heatmap_step=args.heatmap_step,
        heatmap_max_shift=args.heatmap_max_shift,
        heatmap_images=args.heatmap_images,
        num_images=args.heatmap_images)
    msb = analyze_msb(model, runner.test_dataloader, num_images=4)
    return dict(
        variant=variant,
        metrics={k: float(v) for k, v in metrics.items()},
        msb=msb['mean'],
        heatmap=consistency['heatmap'],
        losses=[float(v) for v in losses],
        train_s=train_s,
        iters=args.iters)


def main():
    args = parse_args()
    variants = [v.strip() for v in args.variants.split(',') if v.strip()]
    for variant in variants:
        toy_config(variant, args)  # fail fast on a bad name or config
    if not osp.isdir(args.data_root):
        counts = write_toy_dataset(args.data_root, seed=args.seed)
        print(f'Wrote the toy dataset to {args.data_root}: {counts}')
    os.makedirs(args.work_dir, exist_ok=True)

    results = []
    for index, variant in enumerate(variants, 1):
        print(f'\n=== [{index}/{len(variants)}] {variant}: training '
              f'{args.iters} iterations on {args.data_root} ===', flush=True)
        results.append(run_variant(variant, args))
        with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
            json.dump(results, f, indent=1)

    figures = dict(
        metrics=draw_metric_bars(results,
                                 osp.join(args.work_dir, 'metrics.png')),
        maps=draw_consistency_maps(
            results, osp.join(args.work_dir, 'consistency_maps.png')),
        losses=draw_loss_curves(results,
                                osp.join(args.work_dir, 'losses.png')))
    report = write_report(results, figures,
                          osp.join(args.work_dir, 'report.md'), vars(args))
    print(f'\nReport: {report}')
    with open(report) as f:
        print(f.read())


if __name__ == '__main__':
    main()
