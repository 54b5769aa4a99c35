"""Clear errors for checkpoints that cannot be loaded safely: every refused
type, where the file came from and how to allow it knowingly
(:class:`UnsafeCheckpointError`); an empty or foreign file named
(:class:`NotACheckpointError`)."""
import os.path as osp
import pickle
import re
from typing import Any, List, Optional

import torch
import torch.serialization


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not on the allow-list.

    Subclasses :class:`pickle.UnpicklingError`, the error torch raises, so
    code that already handles that keeps working.
    """

    def __init__(self, message: str, filename: str = None,
                 refused: List[str] = ()):
        super().__init__(message)
        self.filename = filename
        self.refused = list(refused)


class NotACheckpointError(ValueError):
    """A file that is not a PyTorch checkpoint (empty, truncated, text)."""


# How torch's weights-only unpickler (and restricted_getattr) names what it
# refused; group 1 is the type/function.
_REFUSAL_PATTERNS = (
    r'GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+) whose module',
    r"allowlisted via `add_safe_globals`,? but got <class '([^']+)'>",
    r'unrecognized function (\S+)',
    r'Unsupported getattr: (\S+) is not allowed',
)


def _refused_globals_in_file(filename: Any) -> List[str]:
    """Every non-allowed global in a local checkpoint (torch stops at the
    first one); ``[]`` when unsure."""
    if not isinstance(filename, str) or not osp.isfile(filename):
        return []
    try:
        return list(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: BLE001 - best effort, the message falls back
        return []


def raise_if_refused(filename: Any, error: pickle.UnpicklingError,
                     source: Optional[str] = None) -> None:
    """Raise :class:`UnsafeCheckpointError` from torch's weights-only
    ``error`` if torch refused a type; return otherwise (e.g. a corrupt
    file: the caller re-raises).  ``source`` (e.g. the URL ``filename``
    was downloaded from) is named in the message too."""
    message = str(error)
    if isinstance(error, UnsafeCheckpointError) or \
            'Weights only load failed' not in message:
        return
    matches = (re.search(p, message) for p in _REFUSAL_PATTERNS)
    first = next((m.group(1) for m in matches if m), None)
    if first is None:
        return
    refused = _refused_globals_in_file(filename)
    if first not in refused:
        refused.insert(0, first)
    if 'is blocked' in message or 'Unsupported getattr' in message:
        hint = ('This cannot be allow-listed (torch blocks the module, or '
                'the file resolves arbitrary attributes via getattr), so '
                'the checkpoint cannot be loaded safely. If you trust where '
                'it came from, re-save its tensors in plain containers.')
    else:
        example = refused[0].rsplit('.', 1)[-1]
        hint = (
            'Only if you trust this file, allow the type(s) explicitly '
            'before loading, e.g.\n'
            '    from mmdet_gghost.checkpoint import '
            'allow_checkpoint_globals\n'
            f'    allow_checkpoint_globals({example})\n'
            'or with torch.serialization.add_safe_globals([...]) / the '
            'torch.serialization.safe_globals([...]) context manager.')
    where = f'checkpoint {filename!r}' if isinstance(filename, str) \
        else 'the checkpoint'
    if source is not None:
        where = f'checkpoint {source!r} (downloaded to {filename!r})'
    # the unpickler's own line inside torch's long message
    torch_line = next((line.strip() for line in message.splitlines() if any(
        re.search(p, line) for p in _REFUSAL_PATTERNS)), '')
    raise UnsafeCheckpointError(
        f'Refused to load {where}: it contains pickled object(s) of '
        f'type(s) not allowed for safe loading (torch.load with '
        f'weights_only=True): {", ".join(refused)}.\n{hint}\n'
        f'(torch: {torch_line})', filename=filename,
        refused=refused) from error


def not_a_checkpoint(filename, source, error) -> NotACheckpointError:
    """A :class:`NotACheckpointError` naming the file (and ``source``, the
    URL it was downloaded from) and torch's one-line reason."""
    where = repr(filename) if source is None else \
        f'{source!r} (downloaded to {filename!r})'
    size = ''
    if isinstance(filename, str) and osp.isfile(filename):
        size = f' ({osp.getsize(filename)} bytes)'
    message = str(error)
    if 'WeightsUnpickler error:' in message:  # skip torch's long preamble
        message = message.split('WeightsUnpickler error:', 1)[1]
    reason = next((line.strip() for line in message.splitlines()
                   if line.strip()), '').split('. ')[0]
    torch_says = type(error).__name__ + (f': {reason}' if reason else '')
    return NotACheckpointError(
        f'checkpoint {where}{size} is not a readable PyTorch checkpoint '
        f'(empty, truncated or another kind of file; torch: {torch_says}); '
        're-download or re-create it.')
