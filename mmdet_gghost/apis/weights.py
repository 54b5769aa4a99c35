"""The one rule for loading a checkpoint into a model, for every tool.

mmengine loads with ``strict=False`` and only *logs* missing, unexpected or
mis-shaped tensors, keeping random values (a classifier checkpoint
evaluated as a detector gives "mAP 0.000").  Here a checkpoint that does
not fit is a :class:`CheckpointMismatchError`, except for the
:data:`HARMLESS_KEYS` (BN ``num_batches_tracked``, ``data_preprocessor.*``
buffers) and unless ``allow_partial`` (``--allow-partial-checkpoint``).
"""
import logging
import os
from typing import Dict, List, Optional

import torch

from ..checkpoint.compare import (HARMLESS_KEYS,  # noqa: F401  (re-exported)
                                  StateDictMismatch, compare_state_dicts)
from ..checkpoint.reading import (  # noqa: F401  (re-exported)
    CheckpointMismatchError, read_checkpoint)

# The CLI opt-out, one name in every tool.
ALLOW_PARTIAL_FLAG = '--allow-partial-checkpoint'


def read_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The state dict of :func:`read_checkpoint`."""
    return read_checkpoint(checkpoint)[0]


def _preview(items, limit=5):
    items = list(items)
    more = f' and {len(items) - limit} more' if len(items) > limit else ''
    return ', '.join(map(str, items[:limit])) + more


def _hints(checkpoint, mismatch, ckpt_state) -> List[str]:
    lines = []
    # (checkpoint classes, model classes) if only the head's size differs
    classes = next(((ckpt[0], model[0]) for key, ckpt, model in mismatch.shape
                    if key.startswith('head.') and key.endswith('weight')
                    and ckpt[1:] == model[1:]), None)
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
    if ckpt_state is not None:
        from mmdet_gghost.models.converters import is_official_layout
        if is_official_layout(ckpt_state):
            lines.append(
                'This is an official G-Ghost RegNet checkpoint: convert it '
                'first with tools/model_converters/'
                'gghost_official_to_mmpretrain.py.')
        elif mismatch.unexpected and all(
                k.startswith('head.') for k in mismatch.unexpected) and \
                any(k.startswith('backbone.') for k in ckpt_state):
            lines.append(
                'It looks like a classifier (backbone + head) checkpoint: '
                'it can initialise a detector\'s backbone for training '
                '(model.backbone.init_cfg=dict(type=\'Pretrained\', '
                'checkpoint=..., prefix=\'backbone.\')), not be evaluated '
                'as the detector.')
    if classes is None:
        lines.append('Check that the checkpoint was trained with this '
                     'config (architecture, depth, num_classes).')
    return lines


def describe_mismatch(checkpoint: str, mismatch: StateDictMismatch,
                      ckpt_state: Optional[dict] = None,
                      opt_out: Optional[str] = None) -> str:
    """A one-paragraph error message: what differs and how to fix it;
    ``opt_out``: how to load the fitting part anyway (e.g. the CLI flag)."""
    lines = [f'checkpoint {checkpoint} does not fit the model built from '
             'the config (mmengine would only warn and keep random values '
             'for these tensors):']
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
    lines += _hints(checkpoint, mismatch, ckpt_state)
    if opt_out:
        lines.append(f'To load only what fits anyway: {opt_out}.')
    return ' '.join(lines)


def check_state_dict_fits(model: torch.nn.Module, ckpt_state: dict,
                          checkpoint: str, allow_partial: bool = False,
                          opt_out: Optional[str] = None
                          ) -> StateDictMismatch:
    """Raise :class:`CheckpointMismatchError` unless every tensor of
    ``model`` gets a same-shaped value from ``ckpt_state`` and vice versa
    (:data:`HARMLESS_KEYS` aside).  With ``allow_partial`` the mismatch is
    logged as a warning instead.  Returns the mismatch."""
    # the model inside a (Distributed)DataParallel wrapper
    model = getattr(model, 'module', model)
    mismatch = compare_state_dicts(model.state_dict(), ckpt_state)
    if not mismatch:
        return mismatch
    if not allow_partial:
        raise CheckpointMismatchError(
            describe_mismatch(checkpoint, mismatch, ckpt_state, opt_out))
    from mmengine.logging import print_log
    print_log('Partial checkpoint load (allowed): ' +
              describe_mismatch(checkpoint, mismatch),
              logger='current', level=logging.WARNING)
    return mismatch


def check_checkpoint_matches(model: torch.nn.Module, checkpoint: str,
                             allow_partial: bool = False
                             ) -> StateDictMismatch:
    """:func:`check_state_dict_fits` for ``checkpoint`` (file or URL), the
    error naming :data:`ALLOW_PARTIAL_FLAG`; FileNotFoundError if there is
    no such file."""
    checkpoint = os.fspath(checkpoint)
    return check_state_dict_fits(model, read_state_dict(checkpoint),
                                 checkpoint, allow_partial, ALLOW_PARTIAL_FLAG)


def load_state_dict_checked(model: torch.nn.Module, state: dict,
                            checkpoint: str, allow_partial: bool = False
                            ) -> StateDictMismatch:
    """Check ``state`` (read from ``checkpoint``) as
    :func:`check_checkpoint_matches` does, then load it into ``model``.
    Returns the mismatch (empty unless ``allow_partial``)."""
    from mmengine.runner.checkpoint import load_state_dict
    mismatch = check_state_dict_fits(model, state, checkpoint,
                                     allow_partial, ALLOW_PARTIAL_FLAG)
    load_state_dict(getattr(model, 'module', model), state, strict=False,
                    logger='silent')
    return mismatch

