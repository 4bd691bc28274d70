"""Does maximum-sampling bias (MSB) predict shift consistency?

Trains the toy DeepLabV3+ R18-D8 of every variant with several seeds, then
measures for each trained model, on the val set: the mean MSB of its
downsamplers (soft, pixel, phase), its shift consistency (mASSC standard and
circular, same shifts for every model) and its mIoU. Writes to the work dir:

- ``runs/<variant>_seed<seed>.json``: one row per run (the study resumes
  from these: a run whose row exists with the same settings is skipped; a
  run whose final checkpoint exists is evaluated without retraining);
- ``results.json``: settings, rows, per-variant means, Pearson and Spearman
  coefficients with p-values (over runs and over variant means), and the
  partial correlation with mIoU held fixed; runs whose model predicts one
  class (mIoU < ``--min-miou``) are listed but left out of them;
- ``correlation_scatter.png``: MSB (soft) against mASSC and mASSC circular;
- ``summary.md``: tables and a reading of the numbers.

Example::

    python tools/make_toy_dataset.py
    python tools/correlation_study.py --seeds 0,1,2 --iters 300
    # later, or from another shell while it runs:
    python tools/correlation_study.py --seeds 0,1,2 --iters 300 --summary-only

Progress: mmengine's training logs per run and a line per finished run.
On a CPU shared with other jobs, ``OMP_NUM_THREADS=1`` can make training ten
times faster (oversubscribed OpenMP threads spin-wait on each other).
"""
import argparse
import os
import json
import os.path as osp
import sys
import time

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TOOLS_DIR)
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # a checkout works without installing
if TOOLS_DIR not in sys.path:  # _reports/, when loaded as a module
    sys.path.append(TOOLS_DIR)

import tips_mmseg  # noqa: E402,F401  (first: mmcv-lite fix, registries)
from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from _reports.correlation_figure import plot_correlation  # noqa: E402
from _reports.correlation_runs import (order_rows, plan_runs,  # noqa: E402
                                       run_name, run_result_path, save_run)
from _reports.correlation_text import write_summary  # noqa: E402
from tips_mmseg.analysis import analyze_msb  # noqa: E402
from tips_mmseg.analysis.correlation import (  # noqa: E402
    CONSISTENCY_KEYS, PRIMARY_MSB, STUDY_MSB_KEYS, compute_coefficients,
    compute_partial_coefficients, split_learned, variant_means)
from tips_mmseg.apis import evaluate_shift_consistency  # noqa: E402
from tips_mmseg.utils import atomic_write  # noqa: E402

CONFIG_PATTERN = osp.join(REPO, 'configs', 'toy',
                          'deeplabv3plus_r18-d8-{}_toy-64x64.py')
VARIANTS = ('vanilla', 'blurpool', 'aps', 'lps', 'tips')


def _int_list(text):
    return [int(v) for v in text.split(',') if v.strip()]


def _name_list(text):
    names = [v.strip() for v in text.split(',') if v.strip()]
    unknown = [n for n in names if not osp.isfile(CONFIG_PATTERN.format(n))]
    if unknown:
        raise argparse.ArgumentTypeError(
            f'no toy config for {unknown}; known: {", ".join(VARIANTS)}')
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train toy variants over seeds; correlate MSB with '
        'shift consistency.')
    parser.add_argument('--variants', type=_name_list, default=list(VARIANTS),
                        help='comma-separated (default: all five)')
    parser.add_argument('--seeds', type=_int_list, default=[0, 1, 2],
                        help='comma-separated training seeds (default 0,1,2)')
    parser.add_argument('--iters', type=int, default=300,
                        help='training iterations per run (default 300)')
    # 64 px images: +-8 px is 1/8 of the side, as LPS's +-32 px at 512 px
    # is 1/16; larger shifts mostly measure the zero-filled border.
    parser.add_argument('--max-shift', type=int, default=8,
                        help='largest |dh|, |dw| in px (default 8)')
    parser.add_argument('--num-shifts', type=int, default=8,
                        help='shifts drawn per val image (default 8)')
    parser.add_argument('--shift-seed', type=int, default=0,
                        help='seed of the shift draws; the same for every '
                        'run so all models see the same shifts (default 0)')
    parser.add_argument('--msb-images', type=int, default=None,
                        help='val images for MSB (default: all)')
    parser.add_argument('--work-dir', default='work_dirs/correlation')
    parser.add_argument('--data-root', default='data/toy')
    # All background scores mIoU 14.2 on the default toy val set (64
    # images, 71% background pixels: one class of five at 71% IoU), 16.7 on
    # the earlier set: such a model is 100% consistent whatever it does.
    parser.add_argument('--min-miou', type=float, default=17.0,
                        help='runs below this mIoU (models that predict one '
                        'class) are shown but left out of the coefficients '
                        '(default 17.0; a negative value keeps all)')
    parser.add_argument('--summary-only', action='store_true',
                        help='train nothing: summarize the finished runs '
                        'of the work dir (e.g. of a study still running)')
    parser.add_argument('--keep-checkpoints', action='store_true',
                        help='keep each run\'s final checkpoint (default: '
                        'delete it once the run\'s row is written)')
    return parser.parse_args(argv)


def study_settings(args) -> dict:
    """What makes two runs comparable: a stored row is reused only if its
    settings equal these."""
    return dict(iters=args.iters, max_shift=args.max_shift,
                num_shifts=args.num_shifts, shift_seed=args.shift_seed,
                msb_images=args.msb_images,
                data_root=osp.abspath(args.data_root))


def build_run_config(variant: str, seed: int, args) -> Config:
    """The toy config of ``variant`` set up for one run of the study."""
    cfg = Config.fromfile(CONFIG_PATTERN.format(variant))
    name = run_name(variant, seed)
    cfg.work_dir = osp.join(args.work_dir, name)
    # A unique name per run: mmengine keys its logger and scope by it, and
    # several runners live in this one process.
    cfg.experiment_name = f'{name}_{time.strftime("%Y%m%d_%H%M%S")}'
    cfg.randomness = dict(seed=seed)
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    # No val during training: the test loop below measures mIoU once.
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    old_iters = cfg.train_cfg.max_iters
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters)
    # Scale warm-up and decay alike, so the last one ends with training.
    for scheduler in cfg.param_scheduler:
        for key in ('begin', 'end'):
            if scheduler.get(key):
                scheduler[key] = max(1, round(scheduler[key] * args.iters /
                                              old_iters))
    cfg.param_scheduler[-1]['end'] = args.iters
    for scheduler in cfg.param_scheduler:
        scheduler['begin'] = min(scheduler.get('begin', 0),
                                 scheduler['end'] - 1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=args.iters,
        max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = max(1, min(50, args.iters // 6))
    return cfg


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def run_one(variant: str, seed: int, args) -> dict:
    """Train (or reload) one model and measure it. Returns its row."""
    cfg = build_run_config(variant, seed, args)
    checkpoint = osp.join(cfg.work_dir, f'iter_{args.iters}.pth')
    trained_before = osp.isfile(checkpoint)
    if trained_before:
        cfg.load_from = checkpoint  # trained, evaluation was cut short
    runner = Runner.from_cfg(cfg)
    start = time.time()
    if not trained_before:
        runner.train()
    train_time = time.time() - start
    test_metrics = runner.test()

    model = _unwrap(runner.model)
    loader = runner.test_dataloader
    msb = analyze_msb(model, loader, num_images=args.msb_images)
    shift = evaluate_shift_consistency(
        model, loader, num_shifts=args.num_shifts, max_shift=args.max_shift,
        seed=args.shift_seed, heatmap_step=0)
    row = dict(variant=variant, seed=seed, mIoU=float(test_metrics['mIoU']),
               aAcc=float(test_metrics['aAcc']))
    row.update({key: msb['mean'][key] for key in STUDY_MSB_KEYS})
    row.update(shift['metrics'])
    row.update(
        train_time_s=None if trained_before else round(train_time, 1),
        msb_layers=msb['layers'],
        config=osp.relpath(CONFIG_PATTERN.format(variant), REPO),
        settings=study_settings(args))
    save_run(run_result_path(args.work_dir, variant, seed), row)
    if not args.keep_checkpoints and osp.isfile(checkpoint):
        os.remove(checkpoint)  # ~100 MB each; the row is what the study needs
    return row


def summarize(rows, args) -> dict:
    """Coefficients, figure, results.json and summary.md from the rows."""
    all_rows = order_rows(rows, args.variants)
    rows, excluded = split_learned(all_rows, args.min_miou)
    for row in excluded:
        print_log(f'[study] {run_name(row["variant"], row["seed"])} left out'
                  f' of the coefficients: mIoU {row["mIoU"]:.2f} < '
                  f'{args.min_miou}', logger='current', level=30)
    coefficients = compute_coefficients(rows)
    means = variant_means(rows)
    mean_coefficients = compute_coefficients(means)
    partial_coefficients = compute_partial_coefficients(rows)
    figure = osp.join(args.work_dir, 'correlation_scatter.png')
    plot_correlation(
        rows, figure, coefficients=coefficients, excluded_rows=excluded,
        title=f'MSB vs shift consistency: toy DeepLabV3+ R18-D8, '
        f'{args.iters} iters, shifts up to ±{args.max_shift} px')
    settings = study_settings(args)
    settings.update(variants=list(args.variants), seeds=list(args.seeds),
                    min_miou=args.min_miou)
    slim_rows = [{k: v for k, v in row.items() if k != 'msb_layers'}
                 for row in all_rows]
    results = dict(
        settings=settings, primary_msb=PRIMARY_MSB,
        consistency_keys=list(CONSISTENCY_KEYS), rows=slim_rows,
        excluded_runs=[run_name(r['variant'], r['seed']) for r in excluded],
        variant_means=means, coefficients=coefficients,
        coefficients_all_runs=compute_coefficients(all_rows),
        coefficients_variant_means=mean_coefficients,
        partial_coefficients=partial_coefficients)
    atomic_write(json.dumps(results, indent=2),
                 osp.join(args.work_dir, 'results.json'))
    summary = write_summary(
        osp.join(args.work_dir, 'summary.md'), rows, coefficients, means,
        settings=settings, figure=figure,
        mean_coefficients=mean_coefficients,
        partial_coefficients=partial_coefficients, excluded_rows=excluded,
        all_coefficients=results['coefficients_all_runs'])
    print(summary)
    return results


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isdir(args.data_root):
        raise FileNotFoundError(
            f'{args.data_root} not found: write it with '
            'python tools/make_toy_dataset.py')
    todo, rows = plan_runs(args.work_dir, args.variants, args.seeds,
                           study_settings(args))
    if args.summary_only:
        print_log(f'[study] summary of {len(rows)} finished runs; '
                  f'{len(todo)} not finished', logger='current')
        return summarize(rows, args)
    total = len(todo) + len(rows)
    for row in rows:
        print_log(f'[study] {run_name(row["variant"], row["seed"])}: result '
                  'found, skipped', logger='current')
    for done, (variant, seed) in enumerate(todo, start=len(rows) + 1):
        print_log(f'[study] run {done}/{total}: {run_name(variant, seed)}',
                  logger='current')
        row = run_one(variant, seed, args)
        rows.append(row)
        print_log(
            f'[study] {run_name(variant, seed)} done: mIoU {row["mIoU"]:.2f}'
            f', mASSC {row["mASSC"]:.2f}, mASSC_circular '
            f'{row["mASSC_circular"]:.2f}, MSB soft {row["msb_soft"]:.3f}',
            logger='current')
    return summarize(rows, args)


if __name__ == '__main__':
    main()
