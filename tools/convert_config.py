"""Convert a stock mmseg config to shift-invariant downsampling.

Writes a short config that inherits the original and puts the chosen
downsampler into every strided conv / max-pool of its backbone (keeping
the parameter names), with the TIPS regularizers (TIPS), the temperature
schedule (LPS) and shift-consistency evaluation. Example::

    python tools/convert_config.py \\
        mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py \\
        --downsample TIPS --out my.py

It refuses, saying why, a config it cannot convert.
"""
import argparse
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # `python tools/convert_config.py`
    sys.path.insert(0, REPO_ROOT)

import tips_mmseg  # noqa: E402,F401  (registers the modules it builds)
from tips_mmseg.apis.convert import (ConversionError,  # noqa: E402
                                     convert_config, parse_options)
from tips_mmseg.models.layers.builder import DOWNSAMPLE_LAYERS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='original config: a path or '
                        'mmseg::folder/name.py')
    parser.add_argument('--downsample', default='TIPS',
                        choices=DOWNSAMPLE_LAYERS)
    parser.add_argument('--out', required=True, help='config file to write')
    parser.add_argument(
        '--option', nargs='+', default=[], metavar='KEY=VALUE',
        help="more downsampler settings, e.g. tau_pairing=release")
    parser.add_argument(
        '--wrapper-option', nargs='+', default=[], metavar='KEY=VALUE',
        help='more ShiftInvariantWrapper settings, e.g. '
        'patch_embed_placement=conv non_overlapping=convert')
    parser.add_argument(
        '--no-check', action='store_true',
        help='do not build the backbone to check that it converts')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        text, report = convert_config(
            args.config, args.downsample,
            parse_options(args.option, 'downsampler'),
            parse_options(args.wrapper_option, 'wrapper'),
            check_build=not args.no_check,
            out_dir=osp.dirname(osp.abspath(args.out)))
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'wrote {args.out} ({report["segmentor"]}, {args.downsample})')
    if not args.no_check:
        print(f'converted: {len(report["converted"])} strided modules')
        for name, reason in report['skip_reasons'].items():
            print(f'left as is: {name}: {reason}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
