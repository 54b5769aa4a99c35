"""Params, MACs, activations and ops of a model, per backbone stage.

Examples::

    # a bare backbone, paper setting (224x224, BN not fused)
    python tools/analysis/complexity.py gghost_resnet34
    python tools/analysis/complexity.py regnetx_3.2gf --shape 224 224

    # a whole detector (backbone + neck + head, no NMS) and its backbone
    python tools/analysis/complexity.py configs/retinanet_gghost_r34_1x_coco.py

    # after folding BN into the convs (params change, MACs do not)
    python tools/analysis/complexity.py gghost_resnet34 --fuse-conv-bn

    # the deploy form: BN folded, G-Ghost backbones op-lean
    # (switch_to_deploy; stock models: BN folded) -- compare the ops
    python tools/analysis/complexity.py gghost_resnet34 --deploy
    python tools/analysis/complexity.py resnet34 --deploy

Counting is mmengine's (``FlopAnalyzer``/``ActivationAnalyzer``): one
multiply-add = one MAC; activations = elements of conv/linear outputs.
Ops = device-launching aten ops of one forward (views and allocations
excluded), counted by ``mmdet_gghost.analysis.count_ops``.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))  # run from a checkout without installing

from mmdet_gghost.analysis import (complexity_report,  # noqa: E402
                                   print_complexity_report)
from mmdet_gghost.apis.build import (ARCH_EXAMPLES,  # noqa: E402
                                     arch_to_backbone_cfg,
                                     build_backbone_from_arch, build_model)
from mmdet_gghost.models import inference_form  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Params / MACs / activations / ops per backbone stage '
        '(mmengine analysis, aten op count).')
    parser.add_argument(
        'target',
        help='config file (mmdet or mmpretrain) or backbone arch, one of the '
        f'forms {", ".join(ARCH_EXAMPLES)}')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
        help='input size; default 224 224 for backbones and classifiers, '
        '800 1333 for detectors (padded like the data preprocessor pads)')
    parser.add_argument(
        '--fuse-conv-bn', '--fuse', action='store_true',
        help="count the 'fused' form: BN folded into convs (changes params "
        'only), as tools/benchmark.py --fuse-conv-bn times it')
    parser.add_argument(
        '--deploy', action='store_true',
        help="count the 'deploy' form, as tools/benchmark.py --deploy times "
        'it: BN folded and G-Ghost backbones switched to their op-lean form '
        '(switch_to_deploy); changes params and ops')
    parser.add_argument(
        '--count-bn', action='store_true',
        help='include mmengine\'s BN op estimate in MACs (off: BN folds '
        'into convs at inference)')
    parser.add_argument(
        '--json', metavar='FILE', help='also write the report as JSON')
    return parser.parse_args(argv)


def pad_to_divisor(model, h, w):
    """The network input size after the detector's data preprocessor."""
    div = getattr(getattr(model, 'data_preprocessor', None),
                  'pad_size_divisor', 1) or 1
    return (-(-h // div) * div, -(-w // div) * div)


def main(argv=None):
    args = parse_args(argv)
    target = args.target
    if target.endswith('.py') or osp.sep in target:
        if not osp.isfile(target):
            sys.exit(f'error: config file not found: {target}')
        # counts do not depend on the weights' values: no init_weights
        model = build_model(target, init_seed=None)
        scope = model.cfg.get('default_scope', None) or 'mmdet'
        default = (800, 1333) if scope == 'mmdet' else (224, 224)
        title = osp.basename(target)
    else:
        try:
            arch_to_backbone_cfg(target)
        except ValueError as e:
            sys.exit(f'error: {e}')
        model = build_backbone_from_arch(target)
        default = (224, 224)
        title = target
    h, w = args.shape or default
    h, w = pad_to_divisor(model, h, w)
    form = ('deploy' if args.deploy else
            'fused' if args.fuse_conv_bn else 'eval')
    model = inference_form(model, form)
    report = complexity_report(model, (3, h, w), count_bn=args.count_bn,
                               bn_fused=form != 'eval')
    print_complexity_report(report, title=title)
    if report['unsupported_ops']:
        print('not counted (no MACs by convention): ' +
              ', '.join(sorted(report['unsupported_ops'])))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(target=target, **report), f, indent=2)
    return report


if __name__ == '__main__':
    main()
