"""Strict checkpoint loading for mmpretrain classifiers.

mmengine (``load_from``, ``get_model(pretrained=...)``, ``init_model``, the
inferencers) only warns when e.g. a 1000-class head meets an 8-class model
and keeps random values; here that is a :class:`CheckpointMismatchError`
naming the tensors, both class counts and the fix.  Detection configs are
not checked in training on purpose: fine-tuning an 80-class COCO detector
via ``load_from`` relies on mmengine skipping the head.
"""
import torch
from mmengine.config import Config

from .build import build_model
from .weights import (CheckpointMismatchError,  # noqa: F401  (re-exported)
                      check_state_dict_fits, read_state_dict)


def build_classifier(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way the Runner does (weights not loaded):
    :func:`~.build.build_model` without ``init_weights``."""
    return build_model(cfg, init_seed=None, strip_pretrained=False)


def check_classifier_load_from(cfg: Config) -> None:
    """Refuse a ``load_from`` checkpoint that does not fit the classifier.

    Call it before the runner is built.  Does nothing without ``load_from``
    or for configs whose ``default_scope`` is not ``'mmpretrain'``.  Builds
    the model once more, on the CPU, to know its tensor shapes.

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
    """Strict ``mmpretrain.get_model(config, pretrained=checkpoint)``: the
    same model (``_config`` and the checkpoint's ``_dataset_meta`` attached,
    eval mode) by :func:`~.build.build_model`, so
    :class:`CheckpointMismatchError` if any tensor does not fit (unless
    ``allow_partial_checkpoint``).

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
