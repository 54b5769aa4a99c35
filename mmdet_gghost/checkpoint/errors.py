"""Clear errors for checkpoints that cannot be loaded safely.

torch's weights-only refusal is a long message that names one refused
global; :class:`UnsafeCheckpointError` names every refused type in the
file, where it came from and how to allow it knowingly.
:class:`NotACheckpointError` says a file is empty, truncated or not a
torch checkpoint at all (torch's own errors name neither the file nor the
problem).
"""
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
    r"allowlisted via `add_safe_globals`, but got <class '([^']+)'>",
    r"allowlisted via `add_safe_globals` but got <class '([^']+)'>",
    r'unrecognized function (\S+)',
    r'Unsupported getattr: (\S+) is not allowed',
)


def _refusal_line(message: str) -> str:
    """The unpickler's own line inside torch's long message, if any."""
    for line in message.splitlines():
        if any(re.search(p, line) for p in _REFUSAL_PATTERNS):
            return line.strip()
    return ''


def _refused_globals_from_message(message: str) -> List[str]:
    """Extract the refused type/function names from torch's message."""
    for pattern in _REFUSAL_PATTERNS:
        match = re.search(pattern, message)
        if match:
            return [match.group(1)]
    return []


def _refused_globals_in_file(filename: Any) -> List[str]:
    """List every non-allowed global in a local checkpoint (static scan).

    torch stops at the first refused global; scanning the whole pickle lets
    us report all of them at once.  Returns ``[]`` when unsure.
    """
    if not isinstance(filename, str) or not osp.isfile(filename):
        return []
    try:
        return list(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: BLE001 - best effort, the message falls back
        return []


def _is_blocked(message: str) -> bool:
    return 'is blocked' in message


def make_unsafe_checkpoint_error(filename: Any,
                                 error: pickle.UnpicklingError,
                                 source: Optional[str] = None
                                 ) -> Optional[UnsafeCheckpointError]:
    """Turn torch's weights-only error into one clear, actionable error.

    ``source`` (e.g. the URL ``filename`` was downloaded from) is named in
    the message too.  Returns ``None`` when torch did not refuse a type
    (e.g. a corrupt file), so the caller re-raises torch's own error.
    """
    message = str(error)
    from_message = _refused_globals_from_message(message)
    if not from_message:
        return None
    refused = _refused_globals_in_file(filename)
    for name in from_message:
        if name not in refused:
            refused.insert(0, name)
    names = ', '.join(refused)
    if _is_blocked(message) or 'Unsupported getattr' in message:
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
    text = (f'Refused to load {where}: it contains pickled object(s) of '
            f'type(s) not allowed for safe loading (torch.load with '
            f'weights_only=True): {names}.\n{hint}\n'
            f'(torch: {_refusal_line(message)})')
    return UnsafeCheckpointError(text, filename=filename, refused=refused)


def _is_weights_only_error(error: BaseException) -> bool:
    """Whether torch refused a global (vs. e.g. a corrupt file)."""
    return (isinstance(error, pickle.UnpicklingError)
            and not isinstance(error, UnsafeCheckpointError)
            and 'Weights only load failed' in str(error))


def raise_if_refused(filename: Any, error: pickle.UnpicklingError,
                      source: Optional[str] = None) -> None:
    """Raise our clear error (from torch's) if torch refused a type."""
    if not _is_weights_only_error(error):
        return
    clear = make_unsafe_checkpoint_error(filename, error, source)
    if clear is not None:
        raise clear from error


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


