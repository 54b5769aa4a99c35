"""Deploy (inference) form: every BatchNorm folded into the conv before it.

mmcv's :func:`fuse_conv_bn` walks each module's children in registration
order and folds a BN into the conv registered just before it. Every block
here registers conv then norm (``ConvModule``), including the cheap path and
both layers of the mix branch, so the mmcv function covers G-Ghost models
and stock mmdet/mmpretrain models alike. This module only adds the check
that nothing was left behind.
"""
from mmcv.cnn import fuse_conv_bn
from torch.nn.modules.batchnorm import _BatchNorm


def fuse_model(model):
    """Fold BNs into convs in place and return ``model`` (put in eval mode).

    Raises:
        RuntimeError: if a BN in a module of ours was not fused, which would
            mean a block registers its norm before its conv.
    """
    model.eval()
    fuse_conv_bn(model)
    leftover = [name for name, m in model.named_modules()
                if isinstance(m, _BatchNorm)
                and type(m).__module__.startswith('torch')
                and _owned_by_us(model, name)]
    if leftover:
        raise RuntimeError(f'BatchNorm layers not fused: {leftover[:5]}')
    return model


def _owned_by_us(model, name):
    """Whether the module at ``name`` sits inside one of our backbones
    (a stock model may legitimately keep e.g. a BN without a conv before
    it)."""
    module = model
    for part in name.split('.')[:-1]:
        module = getattr(module, part)
        if type(module).__module__.startswith('mmdet_gghost'):
            return True
    return type(model).__module__.startswith('mmdet_gghost')
