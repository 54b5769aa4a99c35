"""Inference forms, one word each, used the same by every tool and flag.

* ``'eval'``: the model as trained, in eval mode.
* ``'fused'`` (:func:`fuse_model`, ``--fuse-conv-bn``): every BatchNorm
  folded into the conv before it; the modules stay as they are (what the
  ONNX/TorchScript export uses).
* ``'deploy'`` (:func:`deploy_model`, ``--deploy``; :func:`to_deploy_form`
  per module): on top of that, every
  module of ours that has an op-lean inference form (``deploy_form()``:
  residual blocks, G-Ghost stages, Ghost modules/bottlenecks) is replaced
  by it and every BN-fused ``ConvModule`` of ours by its plain
  ``nn.Conv2d`` (+ in-place ReLU): no ``ConvModule`` dispatch, no
  ``Identity`` calls, fewer ops. This is what
  ``MultiStageBackbone.switch_to_deploy()`` does.

mmcv's :func:`fuse_conv_bn` walks each module's children in registration
order and folds a BN into the conv registered just before it. Every block
here registers conv then norm (``ConvModule``), including the cheap path and
both layers of the mix branch, so the mmcv function covers G-Ghost models
and stock mmdet/mmpretrain models alike. This module only adds the check
that nothing was left behind.
"""
import torch
from mmcv.cnn import ConvModule, fuse_conv_bn
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .blocks import plain_conv_act


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


def to_deploy_form(module):
    """Replace, in place, every child of ``module`` (recursively) that has
    an op-lean inference form by that form; returns ``module``.

    A child with ``deploy_form()`` returning a module is replaced by it;
    one returning ``None`` (e.g. a stage with a custom block) is kept and
    its children are converted instead. A BN-fused ``ConvModule`` becomes
    its ``nn.Conv2d`` (followed by an in-place ``nn.ReLU`` if it had one).
    Call on a BN-fused module (:func:`fuse_model`); inference only.
    """
    for name, child in module.named_children():
        form = None
        if hasattr(child, 'deploy_form'):
            form = child.deploy_form()
        elif isinstance(child, ConvModule):
            conv_act = plain_conv_act(child)
            if conv_act is not None:
                conv, act = conv_act
                form = conv if act is None else nn.Sequential(conv, act)
        if form is None:
            to_deploy_form(child)
        else:
            form.train(child.training)
            module._modules[name] = form
    return module


def deploy_model(model):
    """The deploy form of any model, in place: BN folded everywhere
    (:func:`fuse_model`) and every backbone of ours switched to its
    op-lean form (``switch_to_deploy``); stock modules (e.g. mmdet's
    ResNet, FPN, heads) keep their BN-fused form."""
    fuse_model(model)
    for m in list(model.modules()):
        if hasattr(m, 'switch_to_deploy') and \
                type(m).__module__.startswith('mmdet_gghost'):
            m.switch_to_deploy()
    return model


INFERENCE_FORMS = ('eval', 'fused', 'deploy')


def inference_form(model, form):
    """``model`` (in place, eval mode) in inference ``form``, one of
    :data:`INFERENCE_FORMS`."""
    if form not in INFERENCE_FORMS:
        raise ValueError(f'unknown inference form {form!r}; choose one of '
                         f'{", ".join(INFERENCE_FORMS)}')
    model.eval()  # not chained: some train() overrides return None
    convert = dict(eval=lambda m: m, fused=fuse_model, deploy=deploy_model)
    return convert[form](model)


def capturing_graph() -> bool:
    """Whether this forward is recorded as a graph instead of only run: by
    a tracer (TorchScript / ONNX export, as mmdeploy runs after calling
    ``switch_to_deploy()``) or by dynamo (``torch.compile``,
    ``torch.export``). The deploy forms then compute the same values
    functionally: ``torch.cat`` instead of writes into slices of a
    preallocated buffer (``out=``), no in-place op on a view. A tracer does
    not record writes into slices as data flow; dynamo breaks the graph at
    every ``out=`` into a non-contiguous slice (channels-last, batch > 1)
    and inductor, which makes producers write into a concat's output
    itself, would have to copy around slice writes."""
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())
