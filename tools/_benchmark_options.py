"""What both benchmarks share: the device, mixed precision, compilation and
memory layout options, and the helpers that apply them."""
import argparse
import contextlib

import torch


def add_run_options(parser: argparse.ArgumentParser, compile_help: str):
    """--device, --amp/--no-amp, --compile, --channels-last."""
    parser.add_argument('--device', default='cuda'
                        if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--amp', action=argparse.BooleanOptionalAction, default=None,
        help='mixed precision: float16 autocast on CUDA (default: on for '
        'CUDA, off elsewhere)')
    parser.add_argument('--compile', action='store_true', help=compile_help)
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last memory format')


def resolve_amp(args: argparse.Namespace) -> argparse.Namespace:
    """``--amp`` unset: on for CUDA, off elsewhere."""
    if args.amp is None:
        args.amp = args.device.startswith('cuda')
    return args


def autocast(args: argparse.Namespace):
    """The autocast context of ``--amp`` (float16 on CUDA, bfloat16 on the
    CPU), or a no-op."""
    if not args.amp:
        return contextlib.nullcontext()
    device = args.device.split(':')[0]
    dtype = torch.float16 if device == 'cuda' else torch.bfloat16
    return torch.autocast(device, dtype=dtype)


def sync(device: str):
    """Wait for the device, so that a timer measures finished work."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
