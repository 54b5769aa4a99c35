"""Deploy a detector the way OpenMMLab users do: mmdeploy -> one ONNX graph
(network + box decoding + NMS) -> ONNX Runtime.

Examples::

    # the trained demo detector, dynamic shapes; compare on a val image
    python tools/deploy/mmdeploy_export.py configs/demo/retinanet_gghost_r34_demo.py \\
        work_dirs/demo/retinanet_gghost_r34_demo/iter_720.pth \\
        --work-dir work_dirs/deploy/gghost_demo \\
        --image data/demo_det/val2017/000001.png

    # ... and PyTorch vs ONNX Runtime bbox mAP on the config's test set
    python tools/deploy/mmdeploy_export.py CONFIG CHECKPOINT --work-dir DIR --eval

    # a fixed 1x3x800x1344 input
    python tools/deploy/mmdeploy_export.py configs/retinanet_gghost_r34_1x_coco.py \\
        CKPT --work-dir DIR --deploy-cfg detection_onnxruntime_static-800x1344

Writes DIR/end2end.onnx; --image: DIR/output_pytorch.jpg,
DIR/output_onnxruntime.jpg and DIR/image_parity.json; --eval: DIR/metrics.json
(ONNX Runtime, the format of tools/test.py) and DIR/parity.json (bbox mAP of
both and their difference). Exit status: 0 done (with --eval: mAP within
0.005), 1 mAP difference above 0.005, 2 bad input. See
mmdet_gghost/deploy/mmdeploy_export.py.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Convert an mmdet detector with mmdeploy to ONNX '
        'Runtime (NMS included) and compare it with PyTorch',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('config', help='mmdet detector config')
    p.add_argument('checkpoint', help='its trained weights')
    p.add_argument('--work-dir', required=True,
                   help='end2end.onnx and the reports go here')
    p.add_argument('--deploy-cfg', default=None,
                   help='mmdeploy deploy config: a path, or the name of one '
                   'in configs/deploy/ (default: '
                   'detection_onnxruntime_dynamic)')
    p.add_argument('--image', default=None,
                   help='trace the export on this image and write both '
                   "backends' visualisations of it")
    p.add_argument('--eval', action='store_true',
                   help="evaluate both backends on the config's test set "
                   '(metrics.json, parity.json)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of the model config')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmdet_gghost.apis.common import USER_ERRORS
    from mmdet_gghost.deploy import DeployError, convert
    try:
        result = convert(args.config, args.checkpoint, args.work_dir,
                         deploy_cfg=args.deploy_cfg, image=args.image,
                         evaluate=args.eval, cfg_options=args.cfg_options,
                         device=args.device)
    except (ImportError, DeployError, *USER_ERRORS) as e:
        # USER_ERRORS: a missing, unsafe, foreign or mismatched checkpoint,
        # a bad data set: the one-line errors of tools/test.py
        print(f'error: {e}', file=sys.stderr)
        return 2
    parity = result.get('parity')
    return 1 if parity is not None and not parity['within_tolerance'] else 0


if __name__ == '__main__':
    sys.exit(main())
