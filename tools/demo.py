#!/usr/bin/env python
"""The main job (``make demo``): the paper's mAP-vs-FPS trade-off in
miniature on embedded synthetic data: RetinaNet-R34 and RetinaNet-GGhost-R34
pre-trained, trained, evaluated and timed under one recipe.

    python tools/demo.py [--work-dir work_dirs/demo] [--only det|cls]
        [--paper [--paper-scale PRETRAIN DET]] [--seeds N [N ...]]
        [--merge SUMMARY_JSON [...]] [--models NAME [...]] [--jobs N]
        [--rounds N]
    python tools/demo.py --join SUMMARY_JSON SUMMARY_JSON [...]
        [--work-dir DIR]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdet_gghost.apps.demo import (PAPER_SCALE, run_demo,  # noqa: E402
                                    select_models)
from mmdet_gghost.apps.join import join_summaries  # noqa: E402

# what --join cannot be combined with: it trains and times nothing
TRAINING_ARGS = ('only', 'paper', 'paper_scale', 'seeds', 'merge', 'models')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', help='default: work_dirs/demo '
                        '(with --join: work_dirs/demo_joined)')
    parser.add_argument('--only', choices=['det', 'cls'],
                        help='run one part only (default: both)')
    parser.add_argument('--paper', action='store_true',
                        help="the paper's comparison, trained until the "
                        'curves flatten: also ResNet34-0.8x and G-Ghost-R34 '
                        'without mix, same recipe, pre-training 6x and '
                        "detector 8x longer (lr steps as mmdet's 1x), 8 "
                        'evaluations per curve')
    parser.add_argument('--paper-scale', type=float, nargs=2,
                        metavar=('PRETRAIN', 'DET'),
                        help='with --paper: how many times longer than the '
                        "quick demo's the pre-training and the detector "
                        "train (default: {pretrain} {det})".format(
                            **PAPER_SCALE))
    parser.add_argument('--seeds', '--seed', type=int, nargs='+',
                        help='random seed(s) of every training (default: the '
                        "configs' own, trained in WORK_DIR); a given seed "
                        'trains in WORK_DIR/seed<N>; with several the summary '
                        'reports means')
    parser.add_argument('--merge', nargs='+', default=[],
                        metavar='SUMMARY_JSON',
                        help="summary.json of earlier runs of the same models "
                        'and schedule with other seeds (e.g. another '
                        "machine's): their accuracy and curves join this "
                        "run's seeds in the summary")
    parser.add_argument('--models', nargs='+', metavar='NAME',
                        help="a subset of the demo's models, by name: "
                        "'R34', 'G-Ghost-R34' (with --paper also "
                        "'R34-0.8x', 'G-Ghost-R34 w/o mix'); the first in "
                        'this order is the reference of the ratios; every '
                        "one is checked to train under R34's recipe; "
                        'default: all')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings side by side, each in its own process '
                        'with an equal share of the cores (e.g. 2 on 2 cores, '
                        'or several on one GPU); default 1: one after the '
                        'other in this process')
    parser.add_argument('--rounds', type=int, default=30,
                        help='timed rounds of the FPS benchmark')
    parser.add_argument('--join', nargs='+', metavar='SUMMARY_JSON',
                        help='train nothing: join the accuracy and curves of '
                        'earlier runs of one schedule that trained other '
                        'models or seeds (e.g. --models R34 G-Ghost-R34, '
                        "then --models R34-0.8x 'G-Ghost-R34 w/o mix') "
                        'into WORK_DIR/summary.md, summary.json and '
                        'curves.png; FPS stays with each run')
    args = parser.parse_args(argv)
    if args.join:
        given = [a for a in TRAINING_ARGS if getattr(args, a) not in
                 (None, False, [])]
        if given:
            parser.error('--join trains nothing: drop --'
                         + given[0].replace('_', '-'))
        if len(args.join) < 2:
            parser.error('--join needs at least two summary.json files')
        try:
            join_summaries(args.join, args.work_dir or 'work_dirs/demo_joined')
        except ValueError as e:
            parser.exit(2, f'{parser.prog}: error: {e}\n')
        return 0
    if args.paper_scale and not args.paper:
        parser.error('--paper-scale needs --paper (it scales the paper '
                     'comparison; the quick demo keeps its schedule)')
    if args.merge and args.only == 'cls':
        parser.error('--merge joins detector runs: drop --only cls')
    if args.models and args.only == 'cls':
        parser.error('--models picks detector models: drop --only cls')
    if args.jobs < 1:
        parser.error(f'--jobs {args.jobs}: give at least 1')
    try:
        select_models(args.paper, args.models)
    except ValueError as e:
        parser.error(str(e))
    scale = (dict(zip(('pretrain', 'det'), args.paper_scale))
             if args.paper_scale else None)
    parts = (args.only, ) if args.only else ('det', 'cls')
    run_demo(args.work_dir or 'work_dirs/demo', parts=parts, paper=args.paper,
             seeds=args.seeds or (None, ), bench_rounds=args.rounds,
             paper_scale=scale, merge=args.merge, model_names=args.models,
             jobs=args.jobs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
