#!/usr/bin/env python
"""Why the mix branch costs accuracy at the demo's scale: G-Ghost-R34 with
and without mix under the quick demo recipe with one change at a time
(pre-training length and batch, detector batch), for several seeds.
Resumable: run it again to continue; finished runs are skipped.

    python tools/analysis/mix_ablation.py [--work-dir work_dirs/mix_ablation]
        [--seeds 0 1] [--variants demo det-b16 ...]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmdet_gghost.apps.ablation import VARIANTS, run_ablation  # noqa: E402


def main(argv=None):
    names = [v.name for v in VARIANTS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/mix_ablation')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--variants', nargs='+', choices=names,
                        default=names, help='the changes to run, in this '
                        'order (default: all: ' + ', '.join(names) + ')')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: write the table of the runs '
                        'finished so far')
    args = parser.parse_args(argv)
    by_name = {v.name: v for v in VARIANTS}
    variants = [by_name[n] for n in dict.fromkeys(args.variants)]
    run_ablation(args.work_dir, variants, seeds=args.seeds,
                 train=not args.report_only)
    return 0


if __name__ == '__main__':
    sys.exit(main())
