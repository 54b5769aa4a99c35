"""Checkpoint checks for mmpretrain classifiers built from our configs.

mmengine loads checkpoints with ``strict=False``: ``load_from`` in a config,
``tools/test.py CHECKPOINT``, ``mmpretrain.get_model(cfg, pretrained=ckpt)``,
``init_model`` and ``ImageClassificationInferencer(pretrained=ckpt)`` all
only *log a warning* for a tensor whose shape differs from the model's (and
for missing or unexpected keys), then keep the model's own random values.
The typical victim is a head of the wrong size: a 1000-class ImageNet
checkpoint loaded into an 8-class model trains or evaluates a randomly
initialised head, and the only sign is a warning in a long log.

This module turns that into a :class:`CheckpointMismatchError` that names
the mismatched tensors and, for a classification head, both class counts
and the fix:

* :func:`check_classifier_load_from` checks a config's ``load_from`` before
  the runner is built (``mmdet_gghost.apis.train`` calls it);
* :func:`load_classifier` is a strict ``mmpretrain.get_model(config,
  pretrained=checkpoint)``.

Detection configs are not checked on purpose: with mmdet, ``load_from`` of
an 80-class COCO detector into a detector with other classes is the
documented way to fine-tune, and relies on mmengine skipping the head.
"""
import copy
import os
import re
from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.config import Config

# mmengine's load_checkpoint strips these key prefixes (DataParallel) too.
_REVISE_KEYS = ((r'^module\.', ''), )
# Class counts live in the first dimension of the head's fc weight.
_HEAD_PREFIX = 'head.'


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model built from the config."""


class StateDictMismatch(NamedTuple):
    """Differences between a model's and a checkpoint's state dict."""
    missing: List[str]  # in the model, not in the checkpoint
    unexpected: List[str]  # in the checkpoint, not in the model
    shape: List[tuple]  # (key, checkpoint shape, model shape)

    def __bool__(self):
        return bool(self.missing or self.unexpected or self.shape)


def read_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The state dict of a checkpoint, keyed as mmengine loads it.

    Same rules as ``mmengine.runner.load_checkpoint``: ``ckpt['state_dict']``
    if present, else the whole file, with a ``module.`` prefix removed.
    Reads through mmengine's loader, so the safe ``weights_only`` loading of
    :mod:`mmdet_gghost.checkpoint` applies.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    checkpoint = os.fspath(checkpoint)
    if '://' not in checkpoint and not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint file not found: {checkpoint}')
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise CheckpointMismatchError(
            f'{checkpoint} holds a {type(ckpt).__name__}, not a state dict '
            "or an mmengine checkpoint ({'state_dict': ..., 'meta': ...})")
    state = ckpt.get('state_dict', ckpt)
    revised = {}
    for key, value in state.items():
        for pattern, repl in _REVISE_KEYS:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    return revised


def compare_state_dicts(model_state: dict,
                        ckpt_state: dict) -> StateDictMismatch:
    """What ``load_state_dict(strict=False)`` would silently skip.

    BN ``num_batches_tracked`` counters missing from the checkpoint are
    ignored, as mmengine does (they do not change any output).
    """
    missing = [
        k for k in model_state
        if k not in ckpt_state and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shape = [(k, tuple(ckpt_state[k].shape), tuple(v.shape))
             for k, v in model_state.items()
             if k in ckpt_state and hasattr(ckpt_state[k], 'shape')
             and tuple(ckpt_state[k].shape) != tuple(v.shape)]
    return StateDictMismatch(missing, unexpected, shape)


def _head_classes(mismatch: StateDictMismatch) -> Optional[tuple]:
    """(checkpoint classes, model classes) if the head's size differs."""
    for key, ckpt_shape, model_shape in mismatch.shape:
        if key.startswith(_HEAD_PREFIX) and key.endswith('weight') and \
                ckpt_shape[1:] == model_shape[1:]:
            return ckpt_shape[0], model_shape[0]
    return None


def _preview(items, limit=5):
    items = list(items)
    more = f' and {len(items) - limit} more' if len(items) > limit else ''
    return ', '.join(map(str, items[:limit])) + more


def describe_mismatch(checkpoint: str, mismatch: StateDictMismatch,
                      ckpt_state: Optional[dict] = None) -> str:
    """A one-paragraph error message: what differs and how to fix it."""
    lines = [f'checkpoint {checkpoint} does not fit the model built from '
             'the config (mmengine would only warn and keep random values '
             'for these tensors):']
    classes = _head_classes(mismatch)
    if classes is not None:
        lines.append(
            f'its classification head was trained for {classes[0]} classes '
            f'but the config has model.head.num_classes={classes[1]}. To '
            f'fine-tune on {classes[1]} classes, load only the backbone: '
            '--cfg-options load_from=None model.backbone.init_cfg.type='
            f'Pretrained model.backbone.init_cfg.checkpoint={checkpoint} '
            'model.backbone.init_cfg.prefix=backbone. ; to use the '
            f'checkpoint as is, set model.head.num_classes={classes[0]} '
            f'(and data_preprocessor.num_classes).')
    if mismatch.shape:
        lines.append(f'{len(mismatch.shape)} shape mismatches (key '
                     f'checkpoint-shape model-shape): '
                     f'{_preview(mismatch.shape, 3)}.')
    if mismatch.missing:
        lines.append(f'{len(mismatch.missing)} model tensors missing from '
                     f'the checkpoint: {_preview(mismatch.missing)}.')
    if mismatch.unexpected:
        lines.append(f'{len(mismatch.unexpected)} checkpoint tensors the '
                     f'model does not have: {_preview(mismatch.unexpected)}.')
    if ckpt_state is not None:
        from mmdet_gghost.models.converters import is_official_layout
        if is_official_layout(ckpt_state):
            lines.append(
                'This is an official G-Ghost RegNet checkpoint: convert it '
                'first with tools/model_converters/'
                'gghost_official_to_mmpretrain.py.')
    if classes is None:
        lines.append('Check that the checkpoint was trained with this '
                     'config (architecture, depth, num_classes).')
    return ' '.join(lines)


def check_state_dict_fits(model: torch.nn.Module, ckpt_state: dict,
                          checkpoint: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless every tensor of
    ``model`` gets a same-shaped value from ``ckpt_state`` and vice versa."""
    mismatch = compare_state_dicts(model.state_dict(), ckpt_state)
    if mismatch:
        raise CheckpointMismatchError(
            describe_mismatch(checkpoint, mismatch, ckpt_state))


def build_classifier(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way the Runner does (weights not loaded)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        return MODELS.build(model_cfg)


def check_classifier_load_from(cfg: Config) -> None:
    """Refuse a ``load_from`` checkpoint that does not fit the classifier.

    Call it before the runner is built (``Runner`` loads ``load_from`` with
    ``strict=False``: a head of another size would only be warned about).
    Does nothing for configs whose ``default_scope`` is not
    ``'mmpretrain'`` (see the module docstring) or without ``load_from``.
    Builds the model once more, on the CPU, to know its tensor shapes.

    Raises:
        CheckpointMismatchError: names the tensors and the fix.
        FileNotFoundError: ``load_from`` does not exist.
    """
    if cfg.get('default_scope', None) != 'mmpretrain':
        return
    checkpoint = cfg.get('load_from', None)
    if not checkpoint:
        return
    ckpt_state = read_state_dict(checkpoint)
    check_state_dict_fits(build_classifier(cfg), ckpt_state, checkpoint)


def load_classifier(config, checkpoint: str, device=None, **kwargs):
    """Strict ``mmpretrain.get_model(config, pretrained=checkpoint)``.

    ``get_model`` (and ``init_model``, ``ImageClassificationInferencer``)
    keep random values for every tensor that does not fit and only warn;
    this returns the same model but raises
    :class:`CheckpointMismatchError` if any tensor was not loaded.

    Args:
        config (str | Config): mmpretrain config (path or object).
        checkpoint (str): mmengine checkpoint or plain state dict.
        device: Where the model goes (default: CPU).
        **kwargs: Overrides of the model config, as for ``get_model``.
    """
    from mmpretrain import get_model
    ckpt_state = read_state_dict(checkpoint)  # also: clear missing-file error
    model = get_model(config, pretrained=os.fspath(checkpoint),
                      device=device, **kwargs)
    # Checked after loading, against what the model really holds now.
    check_state_dict_fits(model, ckpt_state, os.fspath(checkpoint))
    return model
