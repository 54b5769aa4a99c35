"""Train an mmdet or mmpretrain config (G-GhostNet backbones included).

Usage (mmdet-style)::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
        [--amp] [--auto-scale-lr] [--cfg-options k=v ...] [--no-data-check]
        [--launcher {none,pytorch,slurm,mpi}]

The toolbox (mmdet or mmpretrain) follows the config's ``default_scope``.
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
        description='Train a detector or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the LR by the actual total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmdet_gghost.apis import train
    run_tool(
        osp.basename(__file__),
        args,
        train,
        config=args.config,
        work_dir=args.work_dir,
        resume=args.resume,
        cfg_options=cfg_options_of(args),
        launcher=args.launcher,
        amp=args.amp,
        auto_scale_lr=args.auto_scale_lr)


if __name__ == '__main__':
    main()
