#!/usr/bin/env python
"""The main job (``make demo``): the paper's mAP-vs-FPS trade-off in
miniature on embedded synthetic data: RetinaNet-R34 and RetinaNet-GGhost-R34
pre-trained, trained, evaluated and timed under one recipe.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|cls]
        [--paper] [--seed N] [--rounds N]
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
    parser.add_argument('--paper', action='store_true',
                        help="also the paper's ablation: ResNet34-0.8x and "
                        'G-Ghost-R34 without mix, same recipe (~2x the time)')
    parser.add_argument('--seed', type=int,
                        help='random seed of every training (default: the '
                        "configs' own); for measuring run-to-run spread")
    parser.add_argument('--rounds', type=int, default=30,
                        help='timed rounds of the FPS benchmark')
    args = parser.parse_args(argv)
    parts = (args.only, ) if args.only else ('det', 'cls')
    run_demo(args.work_dir, parts=parts, paper=args.paper, seed=args.seed,
             bench_rounds=args.rounds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
