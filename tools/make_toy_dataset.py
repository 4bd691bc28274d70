"""Write the seeded toy dataset (lossless PNG) to data/toy.

Layout: images/*.png, labels/*.png, splits/{train,val}.txt, meta.json.
The same arguments always give the same files.
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # `python tools/make_toy_dataset.py`
    sys.path.insert(0, REPO_ROOT)

from tips_mmseg.datasets import TOY_CLASSES, write_toy_dataset  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/toy', help='output root')
    parser.add_argument('--num-train', type=int, default=384)
    parser.add_argument('--num-val', type=int, default=64)
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    counts = write_toy_dataset(args.out, args.num_train, args.num_val,
                               args.size, args.seed)
    print(f'Wrote {counts["train"]} train and {counts["val"]} val images '
          f'({args.size}x{args.size} PNG, seed {args.seed}, classes '
          f'{", ".join(TOY_CLASSES)}) to {args.out}')


if __name__ == '__main__':
    main()
