"""Write the deterministic toy dataset (PASCAL VOC layout) to data/toy."""
import argparse

from tips_mmseg.datasets import TOY_CLASSES, write_toy_dataset


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/toy', help='output root')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    counts = write_toy_dataset(args.out, args.num_train, args.num_val,
                               args.size, args.seed)
    print(f'Wrote {counts["train"]} train and {counts["val"]} val images '
          f'({args.size}x{args.size}, classes {", ".join(TOY_CLASSES)}) to '
          f'{args.out}')


if __name__ == '__main__':
    main()
