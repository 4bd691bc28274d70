"""mIoU of a segmentor under image corruptions and adversarial attacks.

Example::

    python tools/robustness.py CONFIG [CHECKPOINT] --num-images 50 \\
        --corruptions gaussian_noise,jpeg --severities 1,3,5 \\
        --attacks fgsm,pgd --eps 4 --out work_dirs/robustness.json

Writes the JSON, a PNG of mIoU against severity next to it (same name,
``.png``), and prints a table. Without CHECKPOINT the untrained net is
evaluated (a quick check that the set-up runs).
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def _csv(cast):

    def parse(text):
        return [cast(item) for item in text.split(',') if item.strip()]

    return parse


def parse_args(argv=None):
    import tips_mmseg  # noqa: F401  (registers transforms; mmcv-lite fix)
    from tips_mmseg.apis.attacks import ATTACKS
    from tips_mmseg.datasets.transforms import CORRUPTIONS

    parser = argparse.ArgumentParser(
        description='Evaluate mIoU under corruptions and L_inf attacks.')
    parser.add_argument('config', help='mmseg config file')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='checkpoint file (omit to evaluate the untrained net)')
    parser.add_argument('--out', required=True, help='output JSON file')
    parser.add_argument(
        '--num-images', type=int, default=None,
        help='evaluate only the first N test images (default: all)')
    parser.add_argument(
        '--corruptions', type=_csv(str), default=list(CORRUPTIONS),
        help='comma-separated corruptions, "" for none (default: all of '
        f'{",".join(CORRUPTIONS)})')
    parser.add_argument(
        '--severities', type=_csv(int), default=[1, 3, 5],
        help='comma-separated severities in 0..5 (default: 1,3,5)')
    parser.add_argument(
        '--attacks', type=_csv(str), default=list(ATTACKS),
        help=f'comma-separated attacks from {",".join(ATTACKS)}, "" for '
        'none (default: all)')
    parser.add_argument(
        '--eps', type=float, default=4.0,
        help='L_inf radius in pixel units 0..255 (default: 4)')
    parser.add_argument(
        '--pgd-steps', type=int, default=10, help='PGD steps (default: 10)')
    parser.add_argument(
        '--pgd-step-size', type=float, default=None,
        help='PGD step in pixel units (default: eps / 4)')
    parser.add_argument(
        '--random-start', action='store_true',
        help='start PGD at a random point of the eps ball')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='seed of corruptions and random starts (default: 0)')
    parser.add_argument(
        '--device', default=None,
        help='e.g. cpu or cuda:0 (default: cuda if available)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (as in mmseg tools)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tips_mmseg.apis import evaluate_robustness, format_robustness_table
    from tips_mmseg.visualization import plot_corruption_curves

    if not osp.isfile(args.config):
        sys.exit(f'Config file not found: {args.config}')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        sys.exit(f'Checkpoint file not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)

    results = evaluate_robustness(
        cfg,
        checkpoint=args.checkpoint,
        num_images=args.num_images,
        corruptions=args.corruptions,
        severities=args.severities,
        attacks=args.attacks,
        eps=args.eps,
        pgd_steps=args.pgd_steps,
        pgd_step_size=args.pgd_step_size,
        random_start=args.random_start,
        seed=args.seed,
        device=args.device)

    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=2)
    png = osp.splitext(args.out)[0] + '.png'
    plot_corruption_curves(results, png)
    print(format_robustness_table(results))
    print(f'Results: {args.out}\nPlot: {png}')
    return results


if __name__ == '__main__':
    main()
