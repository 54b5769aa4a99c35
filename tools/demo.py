#!/usr/bin/env python
"""The main job (``make demo``): train, evaluate and benchmark the G-Ghost
demo detector (and classifier) on embedded synthetic data.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|cls]
        [--train-baseline] [--det-iters N]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdet_gghost.demo import run_demo  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--only', choices=['det', 'cls'],
                        help='run one part only (default: both)')
    parser.add_argument('--train-baseline', action='store_true',
                        help='also train the ResNet-34 demo detector (~2x '
                        'the time) so the plot has two mAP points')
    parser.add_argument('--det-iters', type=int,
                        help='override the detection training length')
    parser.add_argument('--bench-rounds', type=int, default=30)
    args = parser.parse_args(argv)
    parts = (args.only, ) if args.only else ('det', 'cls')
    run_demo(args.work_dir, parts=parts, train_baseline=args.train_baseline,
             det_iters=args.det_iters, bench_rounds=args.bench_rounds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
