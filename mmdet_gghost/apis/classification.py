"""Strict checkpoint loading for mmpretrain classifiers: where mmengine
(``load_from``, ``get_model(pretrained=...)``, the inferencers) only warns
that e.g. a 1000-class head meets an 8-class model, a
:class:`CheckpointMismatchError` names the tensors, class counts and fix.
Detection configs are not checked in training on purpose: fine-tuning a
COCO detector via ``load_from`` relies on mmengine skipping the head."""
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
    """Raise :class:`CheckpointMismatchError` (naming the tensors and the
    fix) if the ``load_from`` checkpoint of an ``'mmpretrain'`` config does
    not fit its classifier (built once more, on the CPU, before the runner),
    ``FileNotFoundError`` if it does not exist."""
    if cfg.get('default_scope', None) != 'mmpretrain':
        return
    checkpoint = cfg.get('load_from', None)
    if checkpoint:
        check_state_dict_fits(build_classifier(cfg),
                              read_state_dict(checkpoint), checkpoint)


def load_classifier(config, checkpoint: str, device=None,
                    allow_partial_checkpoint: bool = False, **kwargs):
    """Strict ``mmpretrain.get_model(config, pretrained=checkpoint)``
    (:func:`~.build.build_model`): :class:`CheckpointMismatchError` if any
    tensor does not fit, unless ``allow_partial_checkpoint`` (load what
    fits, log the rest).  ``config``: path or Config; ``checkpoint``: an
    mmengine checkpoint or plain state dict; ``device``: default CPU;
    ``kwargs``: overrides of the model config, as for ``get_model``."""
    return build_model(config, checkpoint,
                       cfg_options={'model': kwargs} if kwargs else None,
                       device=device or 'cpu',
                       allow_partial_checkpoint=allow_partial_checkpoint)
