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


def _focal_parts(input, target, alpha):
    """sigmoid(input), where each element is its sample's target class, and
    the class weights of the positive / negative terms."""
    p = input.sigmoid()
    classes = torch.arange(input.size(1), device=input.device)
    positive = target[:, None] == classes
    return p, positive, alpha, 1.0 - alpha


def _weighted(values, target, weight):
    # mmcv: weight[t], the weight of each sample's target class
    return values * weight[target][:, None] if weight.numel() else values


def sigmoid_focal_loss_forward(input, target, weight, output, gamma=2.0,
                               alpha=0.25):
    """mmcv's kernel: ``-alpha (1-p)^g log p`` at the target class,
    ``-(1-alpha) p^g log(1-p)`` elsewhere (logs of values >= FLT_MIN)."""
    p, positive, a_p, a_n = _focal_parts(input, target, alpha)
    tiny = torch.finfo(torch.float32).tiny
    term_p = (1 - p).pow(gamma) * p.clamp(min=tiny).log()
    term_n = p.pow(gamma) * (1 - p).clamp(min=tiny).log()
    loss = torch.where(positive, -a_p * term_p, -a_n * term_n)
    output.copy_(_weighted(loss, target, weight))


def sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma=2.0,
                                alpha=0.25):
    """d(forward)/d(input), as mmcv's kernel writes it."""
    p, positive, a_p, a_n = _focal_parts(input, target, alpha)
    tiny = torch.finfo(torch.float32).tiny
    term_p = (1 - p).pow(gamma) * (
        1 - p - gamma * p * p.clamp(min=tiny).log())
    term_n = p.pow(gamma) * (
        gamma * (1 - p) * (1 - p).clamp(min=tiny).log() - p)
    grad = torch.where(positive, -a_p * term_p, -a_n * term_n)
    grad_input.copy_(_weighted(grad, target, weight))


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not available in the GPU benchmark shim')

    return missing
