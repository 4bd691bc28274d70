"""Maximum-sampling bias (MSB) of every downsampling layer of a segmentor.

Runs real images of the config's val dataloader through the model and writes
the per-layer MSB (pixel, soft, phase; see tips_mmseg/analysis/msb.py) as
JSON, prints a table and draws a bar chart.

Example::

    python tools/analyze_msb.py configs/xxx.py work_dirs/xxx/iter_1000.pth \
        --num-images 20 --out work_dirs/xxx/msb.json

Without a checkpoint the model is initialised as its config says (which may
download pretrained weights; ``--cfg-options model.pretrained=None`` avoids
that).
"""
import argparse
import json
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import set_random_seed

import tips_mmseg  # noqa: F401  (registers layers; safe checkpoint loading)
from tips_mmseg.apis.builders import build_eval_dataloader, build_segmentor
from tips_mmseg.analysis import analyze_msb, format_msb_table
from tips_mmseg.visualization import plot_msb


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Measure the maximum-sampling bias (MSB) of every '
        'downsampling layer of a segmentor on val images.')
    parser.add_argument('config', help='model/dataset config file')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='checkpoint file (default: initialise as the config says)')
    parser.add_argument(
        '--num-images', type=int, default=20,
        help='number of val images to run (default: 20)')
    parser.add_argument('--out', required=True, help='output JSON file')
    parser.add_argument(
        '--png', default=None,
        help='bar chart file (default: the JSON path with .png)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run on (default: cuda if available, else cpu)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='random seed (initialisation without checkpoint; default: 0)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'model.pretrained=None val_dataloader.batch_size=2)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_random_seed(args.seed)
    model = build_segmentor(cfg, args.checkpoint, args.device)
    dataloader = build_eval_dataloader(cfg, 'val')
    result = analyze_msb(model, dataloader, num_images=args.num_images)
    result.update(config=args.config, checkpoint=args.checkpoint)

    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    png = args.png or osp.splitext(args.out)[0] + '.png'
    name = osp.splitext(osp.basename(args.config))[0]
    plot_msb(result, png, title=f'MSB per downsampling layer: {name} '
             f'({result["num_images"]} images)')
    print(format_msb_table(result))
    print(f'MSB written to {args.out} and {png}')
    return result


if __name__ == '__main__':
    main()
