"""Shift consistency of an mmseg segmentor: table, JSON and consistency map.

Example::

    python tools/shift_consistency.py CONFIG [CHECKPOINT] \\
        --max-shift 16 --num-shifts 5 --out work_dirs/shift.json
    # every protocol, and the crop protocol's map
    python tools/shift_consistency.py CONFIG CHECKPOINT --max-shift 8 \\
        --modes standard circular crop subpixel --heatmap-mode crop

Without a checkpoint the randomly initialised net is evaluated (a quick
look). ``--onnx FILE.onnx`` scores the exported model in onnxruntime instead
(the same metrics, for the deployed artifact). Writes the JSON (``--out``) and the consistency map PNG next to it
(or at ``--heatmap``).
"""
import argparse
import json
import os
import os.path as osp

import tips_mmseg  # noqa: F401  (first: mmcv-lite start-up fix, registries)

from mmengine.config import Config, DictAction  # noqa: E402

from tips_mmseg.apis import evaluate_shift_consistency  # noqa: E402
from tips_mmseg.apis.builders import (build_eval_dataloader,  # noqa: E402
                                      build_segmentor)
from tips_mmseg.apis.shift_consistency import HEATMAP_MODES  # noqa: E402
from tips_mmseg.evaluation import EVAL_MODES  # noqa: E402
from tips_mmseg.visualization import draw_consistency_map  # noqa: E402


def parse_shift(text):
    try:
        dh, dw = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a shift is "dh,dw" (two ints), got {text!r}; fractional '
            'shifts go to --subpixel-shifts')
    return dh, dw


def parse_subpixel_shift(text):
    try:
        dh, dw = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a sub-pixel shift is "dh,dw" (two numbers), got {text!r}')
    return dh, dw


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Shift consistency (mASSC ...) and consistency map of '
        'a segmentor on its test set.')
    parser.add_argument('config', help='mmseg config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint (optional: random init)')
    parser.add_argument(
        '--shifts', nargs='+', type=parse_shift, metavar='DH,DW',
        help='explicit shifts, e.g. --shifts 0,1 1,0 3,-5')
    parser.add_argument('--num-shifts', type=int, default=5,
                        help='shifts drawn per image (default 5)')
    parser.add_argument('--max-shift', type=int, default=32,
                        help='largest |dh|, |dw| (default 32)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the per-image draws (default 0)')
    parser.add_argument('--modes', nargs='+', default=['standard', 'circular'],
                        choices=list(EVAL_MODES),
                        help='protocols (default: standard circular; '
                        'mASSC_boundary comes with standard)')
    parser.add_argument(
        '--subpixel-shifts', nargs='+', type=parse_subpixel_shift,
        metavar='DH,DW',
        help='explicit fractional shifts for the subpixel mode, e.g. '
        '0.5,0 0.25,-0.5 (default: --num-shifts drawn from (-1, 1)^2)')
    parser.add_argument('--boundary-width', type=int, default=3,
                        help='band (px) around ground-truth class boundaries'
                        ' scored by mASSC_boundary (default 3, for 64 px; '
                        'scale with the image)')
    parser.add_argument('--heatmap-mode', default='standard',
                        choices=list(HEATMAP_MODES),
                        help='protocol of the consistency map')
    parser.add_argument('--heatmap-step', type=float,
                        help='grid spacing of the map in px (default 4; '
                        '0.25 for --heatmap-mode subpixel); 0: no map')
    parser.add_argument('--heatmap-max-shift', type=float,
                        help='half-width of the map (default --max-shift; '
                        '1 for subpixel)')
    parser.add_argument('--heatmap-images', type=int, default=16,
                        help='images averaged in the map (default 16)')
    parser.add_argument('--num-images', type=int,
                        help='evaluate only the first N test images')
    parser.add_argument('--shift-batch-size', type=int,
                        help='most shifted images per forward')
    parser.add_argument('--out', default='work_dirs/shift_consistency.json',
                        help='JSON file with metrics and the map data')
    parser.add_argument('--heatmap', help='PNG path (default: beside --out)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--onnx', metavar='FILE.onnx',
        help='run this exported model (tools/export_onnx.py) in '
        'onnxruntime instead of PyTorch; CONFIG gives the data and the '
        'preprocessing, the weights are those in the file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (mmengine syntax)')
    return parser.parse_args(argv)


def build_model_and_loader(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_segmentor(cfg, args.checkpoint, args.device)
    if getattr(args, 'onnx', None):
        from tips_mmseg.apis.export import ONNXSegmentor
        model = ONNXSegmentor(args.onnx, model)
    dataloader = build_eval_dataloader(cfg, 'test')
    evaluator = cfg.get('test_evaluator', {})
    ignore_index = 255
    if isinstance(evaluator, dict):
        ignore_index = evaluator.get('ignore_index', ignore_index)
    return model, dataloader, ignore_index


def format_table(metrics, title='metric'):
    width = max([len(k) for k in metrics] + [len(title)])
    rows = [f'{title.ljust(width)} | value (%)', '-' * (width + 12)]
    rows += [f'{k.ljust(width)} | {v:8.2f}' for k, v in metrics.items()]
    return '\n'.join(rows)


def main(argv=None):
    args = parse_args(argv)
    model, dataloader, ignore_index = build_model_and_loader(args)
    heatmap_step = args.heatmap_step
    if heatmap_step is None:
        heatmap_step = 0.25 if args.heatmap_mode == 'subpixel' else 4
    result = evaluate_shift_consistency(
        model,
        dataloader,
        shifts=args.shifts,
        num_shifts=args.num_shifts,
        max_shift=args.max_shift,
        seed=args.seed,
        modes=args.modes,
        heatmap_step=heatmap_step,
        heatmap_max_shift=args.heatmap_max_shift,
        heatmap_mode=args.heatmap_mode,
        heatmap_images=args.heatmap_images,
        num_images=args.num_images,
        ignore_index=ignore_index,
        shift_batch_size=args.shift_batch_size,
        subpixel_shifts=args.subpixel_shifts,
        boundary_width=args.boundary_width)
    print(f'shift consistency over {result["num_images"]} images')
    print(format_table(result['metrics']))
    if result['class_consistency']:
        print('\nconsistency per ground-truth class (standard shifts)')
        print(format_table(result['class_consistency'], 'class'))
    if result['dominant_class']:
        top = result['dominant_class']
        print(f'\nmost predicted class: {top["name"]!r} on '
              f'{top["share"]:.1f}% of the pixels')
    if result['warning']:
        print(f'\nWARNING: {result["warning"]}')

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    report = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        onnx=args.onnx,
        settings=dict(
            shifts=args.shifts,
            num_shifts=args.num_shifts,
            max_shift=args.max_shift,
            seed=args.seed,
            modes=args.modes,
            subpixel_shifts=args.subpixel_shifts,
            boundary_width=args.boundary_width,
            heatmap_mode=args.heatmap_mode),
        num_images=result['num_images'],
        metrics=result['metrics'],
        class_consistency=result['class_consistency'],
        dominant_class=result['dominant_class'],
        warning=result['warning'],
        heatmap=result.get('heatmap'))
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'metrics written to {args.out}')
    if 'heatmap' in result:
        png = args.heatmap or osp.splitext(args.out)[0] + '_map.png'
        heatmap = result['heatmap']
        draw_consistency_map(
            heatmap['grid'], heatmap['axis'], png,
            title=f'{heatmap["mode"]} consistency (%), '
            f'{osp.basename(args.config)}')
        print(f'consistency map written to {png}')
    return report


if __name__ == '__main__':
    main()
