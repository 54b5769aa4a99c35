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

In training, detection configs are not checked on purpose: with mmdet,
``load_from`` of an 80-class COCO detector into a detector with other
classes is the documented way to fine-tune, and relies on mmengine skipping
the head.  ``tools/test.py`` checks every config (:mod:`.weights`).
"""
import copy
import os

import torch
from mmengine.config import Config

# The generic rule lives in .weights (shared by every tool); these names
# stay importable from here.
from .weights import (CheckpointMismatchError, StateDictMismatch,  # noqa
                      check_state_dict_fits, compare_state_dicts,
                      describe_mismatch, read_state_dict)


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
