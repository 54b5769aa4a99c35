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
  pretrained=checkpoint)`` (:func:`~.build.build_model`).

In training, detection configs are not checked on purpose: with mmdet,
``load_from`` of an 80-class COCO detector into a detector with other
classes is the documented way to fine-tune, and relies on mmengine skipping
the head.  ``tools/test.py`` checks every config (:mod:`.weights`).
"""
import torch
from mmengine.config import Config

from .build import build_model
# The generic rule lives in .weights (shared by every tool); these names
# stay importable from here.
from .weights import (CheckpointMismatchError, StateDictMismatch,  # noqa
                      check_state_dict_fits, compare_state_dicts,
                      describe_mismatch, read_state_dict)


def build_classifier(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way the Runner does (weights not loaded):
    :func:`~.build.build_model` without ``init_weights``."""
    return build_model(cfg, init_seed=None, strip_pretrained=False)


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


def load_classifier(config, checkpoint: str, device=None,
                    allow_partial_checkpoint: bool = False, **kwargs):
    """Strict ``mmpretrain.get_model(config, pretrained=checkpoint)``.

    ``get_model`` (and ``init_model``, ``ImageClassificationInferencer``)
    keep random values for every tensor that does not fit and only warn;
    this returns the same model (``_config`` and the checkpoint's
    ``_dataset_meta`` attached, eval mode) but loads through the one rule of
    :mod:`.weights`: :class:`CheckpointMismatchError` if any tensor does
    not fit (unless ``allow_partial_checkpoint``).  It is
    :func:`~.build.build_model` for an mmpretrain config.

    Args:
        config (str | Config): mmpretrain config (path or object).
        checkpoint (str): mmengine checkpoint or plain state dict.
        device: Where the model goes (default: CPU).
        allow_partial_checkpoint: load what fits, log the rest.
        **kwargs: Overrides of the model config, as for ``get_model``.
    """
    return build_model(config, checkpoint,
                       cfg_options={'model': kwargs} if kwargs else None,
                       device=device or 'cpu',
                       allow_partial_checkpoint=allow_partial_checkpoint)
