"""Evaluate a checkpoint of an mmdet or mmpretrain config.

Usage (mmdet-style)::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PKL]
        [--metrics-json PATH] [--show-dir DIR] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}] [--no-data-check]
        [--allow-partial-checkpoint]

The metrics (plus config, checkpoint and a timestamp) are written as JSON
to ``--metrics-json`` (default ``<work_dir>/metrics.json``).
"""
import argparse
import os.path as osp
import sys

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdet_gghost.apis.common import (add_runner_arguments,  # noqa: E402,E501
                                      cfg_options_of, run_tool)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector or classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir for logs and the metrics file')
    parser.add_argument(
        '--out', help='dump raw predictions to this .pkl file')
    parser.add_argument(
        '--metrics-json',
        help='where to write the metrics JSON (default: '
        '<work_dir>/metrics.json)')
    parser.add_argument(
        '--show-dir', help='save images painted with predictions here')
    parser.add_argument(
        '--allow-partial-checkpoint',
        action='store_true',
        help='evaluate even if the checkpoint does not fit the model '
        '(missing/unexpected/mis-shaped tensors are then only warned about)')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmdet_gghost.apis import test
    run_tool(
        osp.basename(__file__),
        args,
        test,
        config=args.config,
        checkpoint=args.checkpoint,
        work_dir=args.work_dir,
        out=args.out,
        metrics_json=args.metrics_json,
        cfg_options=cfg_options_of(args),
        launcher=args.launcher,
        show_dir=args.show_dir,
        allow_partial_checkpoint=args.allow_partial_checkpoint)


if __name__ == '__main__':
    main()
