"""Export an mmseg segmentor (any tips-mmseg downsampler) to ONNX.

Example::

    python tools/export_onnx.py configs/toy/deeplabv3plus_r18-d8-tips_toy-64x64.py \\
        work_dirs/tips/iter_300.pth --out work_dirs/tips.onnx --dynamic

The graph maps the normalized image (N, 3, H, W) float32 - the data
preprocessor's output - to the logits (N, K, H, W) at the input size, as
``model.encode_decode`` gives in whole mode. Without a checkpoint the
initialized model is exported. After the export, onnxruntime runs the file on
one random input and the difference to PyTorch is printed.
"""
import argparse
import sys

import tips_mmseg  # noqa: F401  (first: mmcv-lite start-up fix, registries)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from tips_mmseg.apis.builders import build_segmentor  # noqa: E402
from tips_mmseg.apis.export import (DEFAULT_OPSET,  # noqa: E402
                                    DynamicExportError, compare_with_torch,
                                    export_onnx, input_channels)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX (inputs: normalized image, '
        'outputs: logits at the input size) and check it against PyTorch.')
    parser.add_argument('config', help='mmseg config file')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint (optional: the initialized model)')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument(
        '--shape', nargs=2, type=int, metavar=('H', 'W'),
        help='input size traced (and the only one without --dynamic); '
        "default: the config's crop_size, else 512 512")
    parser.add_argument('--batch-size', type=int, default=1,
                        help='N of the traced input (default 1)')
    parser.add_argument(
        '--dynamic', action='store_true',
        help='dynamic batch, height and width (checked in onnxruntime at a '
        'second size before the file is written)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET,
                        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--no-check', action='store_true',
                        help='skip the onnxruntime vs PyTorch check')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (mmengine syntax)')
    return parser.parse_args(argv)


def default_shape(cfg):
    size = cfg.get('crop_size') or (512, 512)
    return tuple(int(s) for s in size)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    model = build_segmentor(cfg, args.checkpoint, 'cpu')
    try:
        export_onnx(model, args.out, shape=shape,
                    batch_size=args.batch_size, dynamic=args.dynamic,
                    opset=args.opset)
    except DynamicExportError as e:
        print(f'error: {e}', file=sys.stderr)
        return False
    print(f'exported {"dynamic" if args.dynamic else "static"} '
          f'{shape[0]}x{shape[1]} graph to {args.out}')
    result = None
    if not args.no_check:
        torch.manual_seed(0)
        inputs = torch.randn(args.batch_size, input_channels(model), *shape)
        result = compare_with_torch(model, args.out, inputs)
        print(f'onnxruntime vs PyTorch on a {shape[0]}x{shape[1]} input: '
              f'max |diff| {result["max_abs"]:.3g} '
              f'({result["rel"]:.3g} of the logit range), argmax agrees on '
              f'{100 * result["argmax_agreement"]:.3f}% of pixels')
    return result


if __name__ == '__main__':
    sys.exit(0 if main() is not False else 1)
