"""Stand-in for ``mmcv._ext`` on a GPU machine where mmcv's CUDA ops are not
built (pure-Python ``mmcv-lite``): the ops RetinaNet calls on a GPU.
``nms`` (post-processing) by torchvision's CUDA kernel (the same greedy IoU
suppression; mmdet passes ``offset=0``, torchvision's convention);
``sigmoid_focal_loss_forward`` / ``_backward`` (mmdet's ``FocalLoss`` takes
mmcv's op for CUDA tensors in training) as the elementwise formulas of
mmcv's CUDA kernels, in torch ops, writing into the given tensors.
Every other op raises when *called*, so a model needing one fails loudly.

Used only by the scripts in tools/gpu/ (and tests/test_gpu_shim.py), which
copy it to ``<site-packages>/mmcv/_ext.py``. Never installed by ``make
setup``.
"""
import torch
import torchvision


def nms(boxes, scores, iou_threshold, offset=0):
    if offset != 0:
        raise NotImplementedError('nms with offset=1 is not in torchvision')
    return torchvision.ops.nms(boxes, scores, float(iou_threshold))


def _focal_parts(input, target):
    """sigmoid(input) ``p``, where each element is its sample's target
    class, ``log p`` and ``log(1 - p)`` (of values >= FLT_MIN, as mmcv's
    kernels)."""
    p = input.sigmoid()
    classes = torch.arange(input.size(1), device=input.device)
    tiny = torch.finfo(torch.float32).tiny
    return (p, target[:, None] == classes, p.clamp(min=tiny).log(),
            (1 - p).clamp(min=tiny).log())


def _weighted(values, target, weight):
    # mmcv: weight[t], the weight of each sample's target class
    return values * weight[target][:, None] if weight.numel() else values


def sigmoid_focal_loss_forward(input, target, weight, output, gamma=2.0,
                               alpha=0.25):
    """mmcv's kernel: ``-alpha (1-p)^g log p`` at the target class,
    ``-(1-alpha) p^g log(1-p)`` elsewhere."""
    p, positive, log_p, log_q = _focal_parts(input, target)
    loss = torch.where(positive, -alpha * (1 - p).pow(gamma) * log_p,
                       -(1 - alpha) * p.pow(gamma) * log_q)
    output.copy_(_weighted(loss, target, weight))


def sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma=2.0,
                                alpha=0.25):
    """d(forward)/d(input), as mmcv's kernel writes it."""
    p, positive, log_p, log_q = _focal_parts(input, target)
    term_p = (1 - p).pow(gamma) * (1 - p - gamma * p * log_p)
    term_n = p.pow(gamma) * (gamma * (1 - p) * log_q - p)
    grad = torch.where(positive, -alpha * term_p, -(1 - alpha) * term_n)
    grad_input.copy_(_weighted(grad, target, weight))


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not available in the GPU benchmark shim')

    return missing
