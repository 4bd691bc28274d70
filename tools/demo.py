"""The main job on a machine with no GPU and no datasets: vanilla vs TIPS vs
the baselines on the toy shapes.

Writes the toy dataset (if missing or from another generator version),
trains DeepLabV3+ R18-D8 on it for each variant and seed with mmengine's
Runner (``configs/toy/``), tests it with the shift-consistency hook beside
mIoU, measures per-class IoU, MSB, TIPS's mixing weights tau and the
consistency map, and writes ``WORK_DIR/report.md``, ``results.json`` and PNG
figures. The console shows mmengine's training log lines and progress bars;
configs and weight-initialization notes go to the log files only.

Example:
    python tools/demo.py --work-dir work_dirs/demo                # make demo
    python tools/demo.py --variants vanilla,tips --seeds 0,1,2 \
        --spread-seeds ''
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(TOOLS_DIR)
if REPO_ROOT not in sys.path:  # `python tools/demo.py` from a checkout
    sys.path.insert(0, REPO_ROOT)
if TOOLS_DIR not in sys.path:  # _reports/, when loaded as a module
    sys.path.append(TOOLS_DIR)

import tips_mmseg  # noqa: F401,E402  (registers everything)
from _reports.demo_figures import (draw_consistency_maps,  # noqa: E402
                                   draw_loss_curves, draw_metric_bars)
from _reports.demo_numbers import class_iou, loss_terms  # noqa: E402
from _reports.demo_text import write_report  # noqa: E402
from tips_mmseg.analysis import analyze_msb, tau_statistics  # noqa: E402
from tips_mmseg.apis import evaluate_shift_consistency  # noqa: E402
from tips_mmseg.datasets import write_toy_dataset  # noqa: E402
from tips_mmseg.datasets.toy_shapes import (TOY_CLASSES,  # noqa: E402
                                            read_toy_dataset_meta,
                                            toy_dataset_meta)

TOY_CONFIG = osp.join(REPO_ROOT, 'configs', 'toy',
                      'deeplabv3plus_r18-d8-{}_toy-64x64.py')
VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/toy')
    parser.add_argument(
        '--variants', default=','.join(VARIANTS),
        help=f'comma-separated, from {",".join(VARIANTS)} (default: all)')
    parser.add_argument(
        '--seeds', default='0',
        help='comma-separated training seeds; each variant is trained once '
        'per seed (default: 0)')
    parser.add_argument(
        '--spread-seeds', default='1',
        help='extra seeds for the first variant only, to measure the '
        'seed-to-seed spread within the budget (default: 1; "" for none)')
    parser.add_argument(
        '--iters', type=int, default=None,
        help="training iterations per run (default: the toy config's)")
    parser.add_argument('--num-train', type=int, default=384,
                        help='toy training images (if the data is written)')
    parser.add_argument('--num-val', type=int, default=64,
                        help='toy val images (if the data is written)')
    parser.add_argument('--data-seed', type=int, default=0,
                        help='seed of the toy images')
    parser.add_argument(
        '--max-shift', type=int, default=4,
        help='largest shift (px) of the shift metrics and half-width of '
        'the consistency map (4 px at 64 px = 32 px at 512 px)')
    parser.add_argument('--num-shifts', type=int, default=5,
                        help='random shifts per image of the shift metrics')
    parser.add_argument(
        '--map-images', type=int, default=16,
        help='val images of the consistency map (every shift of the grid '
        'costs one forward per image); 0: all')
    parser.add_argument('--msb-images', type=int, default=8,
                        help='val images of the MSB and tau statistics')
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: torch\'s choice)')
    return parser.parse_args(argv)


def _csv(text, cast=str):
    return [cast(v.strip()) for v in text.split(',') if v.strip()]


def toy_config(variant: str, seed: int, args) -> Config:
    """The variant's toy config, sized by the command line."""
    if variant not in VARIANTS:
        raise ValueError(f'Unknown variant {variant!r}; choose from '
                         f'{", ".join(VARIANTS)}.')
    cfg = Config.fromfile(TOY_CONFIG.format(variant))
    cfg.work_dir = osp.join(args.work_dir, f'{variant}_seed{seed}')
    cfg.randomness = dict(seed=seed)
    iters = args.iters or cfg.train_cfg.max_iters
    if iters < 1:
        raise ValueError(f'--iters must be >= 1, got {iters}.')
    if args.iters:
        old = cfg.train_cfg.max_iters
        cfg.train_cfg.max_iters = iters
        for scheduler in cfg.param_scheduler:  # keep their proportions
            for key in ('begin', 'end'):
                if scheduler.get(key):
                    scheduler[key] = max(1, round(scheduler[key] * iters /
                                                  old))
            # A warm-up longer than a tiny run: start the decay at once.
            scheduler['begin'] = min(scheduler.get('begin', 0),
                                     scheduler['end'] - 1)
    # No val run: the test at the end is the one evaluation.
    cfg.train_cfg.val_begin = iters + 1
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.default_hooks.logger.interval = max(1, iters // 10)
    cfg.default_hooks.pop('visualization', None)  # no images per iteration
    # Configs and init notes go to the log file only (see quiet_console).
    cfg.log_level = 'WARNING'
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = args.data_root
    for hook in cfg.custom_hooks:
        if hook['type'] == 'ShiftConsistencyHook':
            # Crop (no fill, no wrap) beside the standard and circular
            # protocols; the boundary score comes with the standard one.
            hook.update(max_shift=args.max_shift,
                        num_shifts=args.num_shifts, seed=0,
                        modes=('standard', 'circular', 'crop'))
    return cfg


def quiet_console(runner):
    """After the Runner is built (its config dump and the per-parameter
    init notes silenced by log_level WARNING), let INFO through again: the
    training log lines and the test table show progress."""
    runner.logger.setLevel(logging.INFO)
    for handler in runner.logger.handlers:
        handler.setLevel(logging.INFO)


def prepare_data(args):
    """Write the toy set unless ``data_root`` holds this exact version."""
    want = toy_dataset_meta(args.num_train, args.num_val, 64, args.data_seed)
    have = read_toy_dataset_meta(args.data_root)
    if have == want:
        print(f'Toy dataset: {args.data_root} (up to date)', flush=True)
        return want
    why = 'missing' if have is None else 'from other settings'
    print(f'Toy dataset {args.data_root} is {why}; writing {want["num_train"]}'
          f' train + {want["num_val"]} val images ...', flush=True)
    write_toy_dataset(args.data_root, args.num_train, args.num_val, 64,
                      args.data_seed)
    return want


def run_variant(variant: str, seed: int, args) -> dict:
    """Train, test (mIoU + shift metrics), per-class IoU, MSB, tau and the
    consistency map of one variant and seed."""
    cfg = toy_config(variant, seed, args)
    runner = Runner.from_cfg(cfg)
    quiet_console(runner)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    hub = runner.message_hub
    history = {
        key[len('train/'):]: [float(v) for v in buffer.data[0]]
        for key, buffer in hub.log_scalars.items()
        if key.startswith('train/') and 'loss' in key
    }
    metrics = runner.test()  # the hook adds the shift keys beside mIoU
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    model.eval()
    loader = runner.test_dataloader
    per_class = class_iou(model, loader, len(TOY_CLASSES))
    map_images = args.map_images or None
    consistency = evaluate_shift_consistency(
        model, loader, num_shifts=args.num_shifts, max_shift=args.max_shift,
        seed=0, modes=('standard', ), heatmap_step=1,
        heatmap_max_shift=args.max_shift, heatmap_images=map_images,
        num_images=map_images)
    msb = analyze_msb(model, loader, num_images=args.msb_images)
    tau = tau_statistics(model, loader, num_images=args.msb_images)
    alpha = (cfg.model.get('tips_cfg') or {}).get('alpha', 0.35) \
        if cfg.model.type.startswith('TIPS') else 0.0
    return dict(
        variant=variant,
        seed=seed,
        metrics={k: float(v) for k, v in metrics.items()},
        class_iou=dict(zip(TOY_CLASSES, per_class)),
        msb=msb['mean'],
        tau=tau,
        heatmap=consistency['heatmap'],
        map_metrics=consistency['metrics'],
        losses=history.get('loss', []),
        loss_terms=loss_terms(history, alpha),
        train_s=train_s,
        iters=cfg.train_cfg.max_iters)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = _csv(args.variants)
    seeds = _csv(args.seeds, int)
    if not variants or not seeds:
        raise SystemExit('--variants and --seeds must name at least one.')
    runs = [(v, s) for s in seeds for v in variants]
    runs += [(variants[0], s) for s in _csv(args.spread_seeds, int)
             if s not in seeds]
    configs = [toy_config(v, s, args) for v, s in runs]
    start = time.perf_counter()
    data = prepare_data(args)
    os.makedirs(args.work_dir, exist_ok=True)

    results = []
    for index, (variant, seed) in enumerate(runs, 1):
        print(f'\n=== [{index}/{len(runs)}] {variant}, seed {seed}: '
              f'{configs[index - 1].train_cfg.max_iters} iterations on '
              f'{args.data_root} ===', flush=True)
        results.append(run_variant(variant, seed, args))
        with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
            json.dump(results, f, indent=1)

    base = configs[0]
    settings = dict(
        data_root=args.data_root, num_train=data['num_train'],
        num_val=data['num_val'], data_seed=data['seed'],
        seeds=sorted({s for _, s in runs}),
        iters=base.train_cfg.max_iters,
        batch_size=base.train_dataloader.batch_size,
        optimizer=dict(base.optim_wrapper.optimizer),
        max_shift=args.max_shift, num_shifts=args.num_shifts,
        map_images=results[0]['heatmap']['num_images'],
        msb_images=args.msb_images,
        wall_s=time.perf_counter() - start)
    figures = dict(
        metrics=draw_metric_bars(results,
                                 osp.join(args.work_dir, 'metrics.png')),
        maps=draw_consistency_maps(
            results, osp.join(args.work_dir, 'consistency_maps.png')),
        losses=draw_loss_curves(results,
                                osp.join(args.work_dir, 'losses.png')))
    report = write_report(results, figures,
                          osp.join(args.work_dir, 'report.md'), settings,
                          docs_dir=osp.join(REPO_ROOT, 'docs'))
    print(f'\nReport: {report} (figures and results.json beside it); '
          f'the whole demo took {time.perf_counter() - start:.0f} s.')
    return results


if __name__ == '__main__':
    main()
