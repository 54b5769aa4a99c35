"""Export an mmdet / mmpretrain config to ONNX (BN fused) and check it with
onnxruntime.

Examples::

    # RetinaNet G-Ghost-R34 up to the raw head outputs (5 levels of
    # cls_score and bbox_pred), 800x1216 input, dynamic batch/H/W
    python tools/deploy/export_onnx.py configs/retinanet_gghost_r34_1x_coco.py \\
        --checkpoint work_dirs/retinanet_gghost_r34/epoch_12.pth \\
        --out work_dirs/onnx/retinanet_gghost_r34.onnx

    # the backbone alone, 224x224
    python tools/deploy/export_onnx.py configs/imagenet/gghost-resnet34_8xb32_in1k.py \\
        --target backbone --shape 224 224 --out gghost_r34_backbone.onnx

    # a classifier: logits (N, 1000)
    python tools/deploy/export_onnx.py configs/imagenet/cghostnet-1.0x_8xb32_in1k.py

Without ``--checkpoint`` the model gets random weights (its own
init_weights() plus random BN statistics, so that the parity check
exercises the BN folding); no pretrained file is opened either way.

The graph input is the preprocessed image tensor (normalised, padded to a
multiple of 32 for detectors) -- see ``mmdet_gghost/export/``. Exit
status: 0 when every output matches PyTorch (max|a-b| / max|a| <= --tol),
1 when one does not, 2 on usage errors.
"""
import argparse
import os.path as osp
import pickle
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Export a config to ONNX (BN fused) and verify it '
        'against PyTorch with onnxruntime',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config', help='mmdet or mmpretrain config file')
    p.add_argument('--checkpoint', default=None,
                   help='weights (default: random weights, see above)')
    p.add_argument('--allow-partial-checkpoint', action='store_true',
                   help='export even if the checkpoint does not fit the '
                   'model (what does not fit keeps init_weights())')
    p.add_argument('--out', default=None, metavar='FILE.onnx',
                   help='output file (default: work_dirs/onnx/'
                   '<config name>[_backbone].onnx)')
    p.add_argument('--target', choices=['model', 'backbone'],
                   default='model',
                   help='model: classifier logits (mmpretrain) or the raw '
                   'head outputs of a single-stage detector (mmdet); '
                   'backbone: the backbone feature maps')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   default=None, help='export input size (default 800 1216 '
                   'for detectors, 224 224 otherwise)')
    p.add_argument('--batch-size', type=int, default=1,
                   help='batch of the export input (the batch axis is '
                   'dynamic anyway)')
    p.add_argument('--opset', type=int, default=17)
    p.add_argument('--static-hw', action='store_true',
                   help='fix H and W (default: dynamic H/W)')
    p.add_argument('--no-verify', action='store_true',
                   help='skip the onnxruntime parity check')
    p.add_argument('--tol', type=float, default=1e-4,
                   help='max relative error max|a-b| / max|a| per output')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=None,
                   help='torch/onnxruntime CPU threads')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out
    if out is None:
        name = osp.splitext(osp.basename(args.config))[0]
        suffix = '_backbone' if args.target == 'backbone' else ''
        out = osp.join('work_dirs', 'onnx', f'{name}{suffix}.onnx')
    try:
        from mmdet_gghost.export import export_config, format_report
        report = export_config(
            args.config,
            out,
            checkpoint=args.checkpoint,
            target=args.target,
            shape=args.shape,
            batch_size=args.batch_size,
            opset=args.opset,
            verify=not args.no_verify,
            dynamic_hw=not args.static_hw,
            tol=args.tol,
            seed=args.seed,
            allow_partial_checkpoint=args.allow_partial_checkpoint)
    except (ImportError, FileNotFoundError, ValueError,
            pickle.UnpicklingError) as e:  # missing/unsafe/mismatched file
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(format_report(report))
    if args.checkpoint is None:
        print('  note: random weights (no --checkpoint)')
    if not report['ok']:
        print('parity check FAILED', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
