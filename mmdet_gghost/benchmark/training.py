"""The timed step of ``task='train'``: one training iteration as mmengine's
train loop runs it, ``model.train_step(batch, optim_wrapper)``
(preprocessing with ``training=True``, loss, backward, optimizer step,
``zero_grad``), with the optimizer wrapper mmengine builds from the
config's own ``optim_wrapper`` (:func:`build_train_optim_wrapper`), run
inside :func:`train_mode`."""
import contextlib
import copy
import itertools
from typing import Any, Callable, Dict, Sequence

import torch.nn as nn
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

from .settings import UsageError


def train_optim_wrapper_cfg(cfg, amp: bool = False) -> dict:
    """A copy of the config's ``optim_wrapper``; with ``amp`` its type
    swapped to mmengine's ``AmpOptimWrapper`` (dynamic loss scale), as
    mmdet's ``tools/train.py --amp`` does."""
    wrapper_cfg = cfg.get('optim_wrapper', None)
    if wrapper_cfg is None:
        raise UsageError('--task train builds the optimizer from the '
                         "config's optim_wrapper, and this config has none: "
                         'use a training config')
    wrapper_cfg = copy.deepcopy(wrapper_cfg)
    if amp:
        wrapper_cfg['type'] = 'AmpOptimWrapper'
        wrapper_cfg.setdefault('loss_scale', 'dynamic')
    return wrapper_cfg


def build_train_optim_wrapper(model: nn.Module, cfg, scope: str,
                              amp: bool = False) -> OptimWrapper:
    """The optimizer wrapper of ``model`` built by mmengine's
    ``build_optim_wrapper`` from :func:`train_optim_wrapper_cfg`, in the
    registry ``scope`` of the config (as the Runner builds it; the
    ``param_scheduler`` is left out: it changes the lr, not the cost)."""
    with DefaultScope.overwrite_default_scope(scope):
        return build_optim_wrapper(model, train_optim_wrapper_cfg(cfg, amp))


def describe_optim_wrapper(optim_wrapper: OptimWrapper) -> str:
    """``'OptimWrapper(AdamW)'``: the wrapper's and optimizer's classes."""
    return (f'{type(optim_wrapper).__name__}'
            f'({type(optim_wrapper.optimizer).__name__})')


@contextlib.contextmanager
def train_mode(*models: nn.Module):
    """``model.train()`` for each model inside the block (frozen stages and
    ``norm_eval`` as the model's own ``train()`` keeps them); on exit every
    submodule's ``training`` flag is what it was before."""
    saved = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.train()
        yield
    finally:
        for m, training in saved:
            m.training = training


def make_train_step_fn(model: nn.Module, optim_wrapper: OptimWrapper,
                       batches: Sequence[dict]
                       ) -> Callable[[], Dict[str, Any]]:
    """A zero-argument callable running one training iteration per call,
    ``model.train_step(batch, optim_wrapper)`` exactly as mmengine's train
    loop calls it (hooks and data loading not included), cycling through
    ``batches`` (dataloader batches, with ground truth). Returns the
    iteration's ``log_vars`` (the losses). Call it inside
    :func:`train_mode`: the step does not switch modes (the loop does that
    once per epoch, not per iteration)."""
    it = itertools.cycle(batches)

    def step():
        return model.train_step(next(it), optim_wrapper)

    return step


def num_classes_of(model: nn.Module) -> int:
    """Number of classes of a detector's ``bbox_head`` (``roi_head``'s
    bbox head for two-stage ones) or a classifier's ``head``: the labels
    of synthetic ground truth are drawn below it."""
    roi_head = getattr(model, 'roi_head', None)
    for head in (getattr(roi_head, 'bbox_head', None),
                 getattr(model, 'bbox_head', None),
                 getattr(model, 'head', None)):
        if isinstance(head, (list, tuple, nn.ModuleList)):
            head = head[0]
        if hasattr(head, 'num_classes'):
            return int(head.num_classes)
    raise UsageError('--task train with synthetic inputs draws ground truth '
                     'labels below the head\'s num_classes, and this model '
                     'has none: use --data')
