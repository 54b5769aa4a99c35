"""Stand-in for ``mmcv._ext`` on a GPU machine where mmcv's CUDA ops are not
built (pure-Python ``mmcv-lite``): only ``nms`` -- the one op RetinaNet's
post-processing calls -- is provided, by torchvision's CUDA kernel (the same
greedy IoU suppression; mmdet passes ``offset=0``, torchvision's convention).
Every other op raises when *called*, so a model needing one fails loudly.

Used only by tools/gpu/run_device_benchmark.sh, which copies it to
``<site-packages>/mmcv/_ext.py``. Never installed by ``make setup``.
"""
import torchvision


def nms(boxes, scores, iou_threshold, offset=0):
    if offset != 0:
        raise NotImplementedError('nms with offset=1 is not in torchvision')
    return torchvision.ops.nms(boxes, scores, float(iou_threshold))


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not available in the GPU benchmark shim')

    return missing
