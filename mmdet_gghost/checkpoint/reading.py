"""Reading a checkpoint, for ``models`` and ``apis`` alike: the URL-or-file
rule, the state dict, a work dir's ``last_checkpoint`` record."""
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
    """``path`` as a string; ``FileNotFoundError('<what> not found: <path>.
    <hint>')`` for a local path that is not a file (URLs pass: their loader
    reports what it cannot fetch)."""
    path = os.fspath(path)
    if not is_remote(path) and not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}' +
                                (f'. {hint}' if hint else ''))
    return path


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
    # ckpt['state_dict'] (mmengine), ckpt['model'] (the official G-Ghost
    # code, timm) or the whole object
    state = ckpt
    if isinstance(ckpt, dict):
        state = next((ckpt[k] for k in ('state_dict', 'model')
                      if isinstance(ckpt.get(k), dict)), ckpt)
    if not isinstance(state, dict) or not all(isinstance(k, str)
                                              for k in state):
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
    """The checkpoint named by ``<work_dir>/last_checkpoint`` (None without
    that file).  mmengine stores an absolute path: after the work dir was
    moved, the same file name inside ``work_dir`` is used.
    FileNotFoundError when neither exists."""
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
