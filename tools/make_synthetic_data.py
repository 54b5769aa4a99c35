#!/usr/bin/env python
"""Write the synthetic demo data sets (nothing is downloaded).

    python tools/make_synthetic_data.py det --out data/demo_det
    python tools/make_synthetic_data.py cls --out data/demo_cls

Same arguments, same bytes; a second run with the same arguments does
nothing.  See mmdet_gghost/datasets/drawing.py for what is drawn.
"""
import argparse
import sys
import time
from pathlib import Path

# Use this checkout's package (works without `pip install -e .`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmdet_gghost.datasets import synthetic  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='kind', required=True)

    det = sub.add_parser('det', help='COCO-2017-style shapes detection set')
    det.add_argument('--out', default=synthetic.DEFAULT_DET_ROOT,
                     help='output folder (default: %(default)s)')
    det.add_argument('--num-train', type=int, default=800)
    det.add_argument('--num-val', type=int, default=200)
    det.add_argument('--img-size', type=int, default=256)
    det.add_argument('--empty-fraction', type=float, default=0.05,
                     help='fraction of background-only images')

    cls = sub.add_parser('cls', help='mmpretrain CustomDataset shapes set')
    cls.add_argument('--out', default=synthetic.DEFAULT_CLS_ROOT,
                     help='output folder (default: %(default)s)')
    cls.add_argument('--num-train-per-class', type=int, default=200)
    cls.add_argument('--num-val-per-class', type=int, default=50)
    cls.add_argument('--img-size', type=int, default=64)

    for p in (det, cls):
        p.add_argument('--seed', type=int, default=0)
        p.add_argument('--overwrite', action='store_true',
                       help='replace --out even if it was not written by '
                       'this tool')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        if args.kind == 'det':
            info = synthetic.make_detection_dataset(
                args.out, num_train=args.num_train, num_val=args.num_val,
                img_size=args.img_size, seed=args.seed,
                empty_fraction=args.empty_fraction, overwrite=args.overwrite)
        else:
            info = synthetic.make_classification_dataset(
                args.out, num_train_per_class=args.num_train_per_class,
                num_val_per_class=args.num_val_per_class,
                img_size=args.img_size, seed=args.seed,
                overwrite=args.overwrite)
    except synthetic.SyntheticDataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(info['message'] + f' ({time.perf_counter() - start:.1f} s)')
    if args.kind == 'det':
        print(f'  annotations: {info["train_ann"]}, {info["val_ann"]}')
        print(f'  images:      {info["train_img_dir"]}/, '
              f'{info["val_img_dir"]}/')
    else:
        print(f'  images:  {info["train_dir"]}/<class>/, '
              f'{info["val_dir"]}/<class>/')
        print(f'  class list: {info["classes_file"]}')
    print(f'  classes: {", ".join(info["classes"])}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
