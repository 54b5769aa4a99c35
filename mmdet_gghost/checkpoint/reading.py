"""Reading a checkpoint, once for the whole package (``models`` and
``apis`` alike): the URL-or-file rule (:func:`is_remote`,
:func:`require_checkpoint`), the reader of a state dict
(:func:`read_checkpoint`) and of a work dir's ``last_checkpoint`` record."""
import os
import re
from typing import Dict, Optional, Tuple

import torch


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model (or holds no state dict)."""


def is_remote(path) -> bool:
    """The URL-or-file rule: a ``scheme://`` path (``http(s)://``,
    ``open-mmlab://``, ``s3://``, ...) is left to mmengine's loaders (made
    safe in :mod:`.loading`); anything else is a local file."""
    return '://' in os.fspath(path)


def require_checkpoint(path, what: str = 'Checkpoint file',
                       hint: str = '') -> str:
    """``path`` as a string, or ``FileNotFoundError('<what> not found:
    <path>')`` (then ``hint``) when it is a local path that is not a file.
    URLs pass: their loader reports what it cannot fetch."""
    path = os.fspath(path)
    if not is_remote(path) and not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}' +
                                (f'. {hint}' if hint else ''))
    return path


def _state_of(ckpt):
    """The state dict of a loaded checkpoint: ``ckpt['state_dict']``
    (mmengine), ``ckpt['model']`` (the official G-Ghost code, timm) or the
    whole object; None if that is not a dict of named entries."""
    if not isinstance(ckpt, dict):
        return None
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def read_checkpoint(checkpoint, map_location='cpu'
                    ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` of a checkpoint file or URL, read by the safe
    loader and keyed as ``mmengine.runner.load_checkpoint`` does (the
    ``module.`` prefix of DataParallel removed); ``meta`` is
    ``ckpt['meta']`` (``{}`` for a plain state dict).

    Raises:
        FileNotFoundError: a local path that is not a file.
        CheckpointMismatchError: the file holds no state dict.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    checkpoint = require_checkpoint(checkpoint)
    ckpt = _load_checkpoint(checkpoint, map_location=map_location)
    state = _state_of(ckpt)
    if state is None or not all(isinstance(k, str) for k in state):
        raise CheckpointMismatchError(
            f'{checkpoint} holds a {type(ckpt).__name__} that is not a state '
            "dict or an mmengine checkpoint ({'state_dict': ..., "
            "'meta': ...})")
    revised = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    meta = ckpt.get('meta', None) if state is not ckpt else None
    return revised, meta if isinstance(meta, dict) else {}


def last_checkpoint_record(work_dir) -> Optional[str]:
    """The path mmengine recorded in ``<work_dir>/last_checkpoint`` (maybe
    no longer there), or None when the work dir has no such record."""
    record = os.path.join(os.fspath(work_dir), 'last_checkpoint')
    if not os.path.isfile(record):
        return None
    with open(record) as f:
        return f.read().strip()


def resolve_last_checkpoint(work_dir) -> Optional[str]:
    """The checkpoint named by ``<work_dir>/last_checkpoint``, or None when
    that file does not exist.  mmengine stores an absolute path: after the
    work dir was moved, the same file name inside ``work_dir`` is used.

    Raises:
        FileNotFoundError: neither the recorded path nor its name in
            ``work_dir`` exists.
    """
    recorded = last_checkpoint_record(work_dir)
    if recorded is None or is_remote(recorded) or os.path.isfile(recorded):
        return recorded
    moved = os.path.join(work_dir, os.path.basename(recorded))
    if os.path.isfile(moved):
        return moved
    record = os.path.join(work_dir, 'last_checkpoint')
    raise FileNotFoundError(
        f'{record} names {recorded}, which does not exist, and there is no '
        f'{os.path.basename(recorded)} in {work_dir} either; resume from an '
        f'existing checkpoint with --resume PATH, or delete {record} to '
        'start afresh.')
