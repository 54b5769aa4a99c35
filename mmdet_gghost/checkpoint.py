"""Safe checkpoint loading for mmengine under ``torch >= 2.6``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``: the
unpickler only rebuilds tensors, containers and plain values, plus the
globals that were explicitly allow-listed.  mmengine 0.10.7 calls plain
``torch.load``, so full training checkpoints written by its
``CheckpointHook`` (which also hold the ``MessageHub`` state) cannot be
loaded back, and ``--resume`` fails with "Unsupported global ...".

We keep ``weights_only=True`` and allow-list exactly what OpenMMLab
training checkpoints contain (found by saving checkpoints with
``CheckpointHook`` and asking torch what it refuses):

* ``mmengine.logging.HistoryBuffer``: the logged scalars in
  ``checkpoint['message_hub']['log_scalars']``.
* ``builtins.getattr``, but replaced by a *restricted* version: a pickled
  ``HistoryBuffer`` carries its statistics methods (``HistoryBuffer.mean``
  ...), and pickle protocol 2 (torch's default) writes a method as
  ``getattr(HistoryBuffer, 'mean')``.  The real ``getattr`` would let a
  malicious file reach any attribute of any allowed object, so ours only
  resolves registered ``HistoryBuffer`` statistics methods.
* numpy arrays, scalars and dtypes (``_reconstruct``, ``ndarray``,
  ``scalar``, ``dtype`` and the ``numpy.dtypes.*DType`` classes): the
  history buffers are numpy arrays, and runtime info / dataset meta may
  hold numpy values.  Rebuilding them runs no user code.

Everything else is refused with :class:`UnsafeCheckpointError`, which names
the refused types and how to allow them knowingly
(:func:`allow_checkpoint_globals`).  Nothing here sets
``weights_only=False`` or disables safe loading.
"""
import functools
import inspect
import io
import os.path as osp
import pickle
import re
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.serialization
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

try:  # numpy >= 2 (``numpy.core`` is a deprecated alias there)
    from numpy._core import multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray

__all__ = [
    'UnsafeCheckpointError', 'allow_checkpoint_globals',
    'enable_safe_checkpoint_loading', 'load_checkpoint_file',
    'safe_checkpoint_globals'
]

# The attribute we put on our wrapper, to keep the patch idempotent.
_PATCH_MARK = '_mmdet_gghost_safe_loading'

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# What ``HistoryBuffer._set_default_statistics`` registers.
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


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


def restricted_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Only resolves ``HistoryBuffer.<statistics method>``, the one use of
    ``getattr`` in mmengine checkpoints (see module docstring).
    """
    # ``_statistics_methods`` is only filled when the first buffer is made,
    # so the built-in methods are named explicitly.
    allowed = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed and inspect.isfunction(
            HistoryBuffer.__dict__.get(name)):
        return getattr(obj, name)
    owner = getattr(obj, '__qualname__', type(obj).__qualname__)
    raise pickle.UnpicklingError(
        f'Unsupported getattr: {owner}.{name} is not allowed while loading '
        'a checkpoint (only HistoryBuffer statistics methods may be '
        'resolved).')


def _numpy_globals() -> List[SafeGlobal]:
    """numpy functions and types needed to rebuild arrays and scalars.

    Each function is listed under both its numpy 1.x (``numpy.core``) and
    numpy 2.x (``numpy._core``) path, so checkpoints written with either
    numpy load with either.
    """
    globals_: List[SafeGlobal] = [np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            globals_.append((func, f'{module}.{func.__name__}'))
    # Since numpy 1.25 every dtype instance has its own class (e.g.
    # ``numpy.dtypes.Float64DType``); torch checks that class when it
    # restores the dtype's state.
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes['All']}
    dtype_classes.discard(np.dtype)
    globals_.extend(sorted(dtype_classes, key=lambda cls: cls.__name__))
    return globals_


def safe_checkpoint_globals() -> List[SafeGlobal]:
    """All globals we allow in checkpoints (see module docstring)."""
    return [
        HistoryBuffer,
        (restricted_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ]


def allow_checkpoint_globals(*objects: SafeGlobal) -> None:
    """Allow more classes/functions in checkpoints, process-wide.

    Only call this for types you trust: unpickling may call them with data
    from the file.  Accepts classes/functions or ``(obj, 'module.Name')``
    tuples, like :func:`torch.serialization.add_safe_globals`.
    """
    torch.serialization.add_safe_globals(list(objects))


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
                                 error: pickle.UnpicklingError
                                 ) -> Optional[UnsafeCheckpointError]:
    """Turn torch's weights-only error into one clear, actionable error.

    Returns ``None`` when torch did not refuse a type (e.g. a corrupt
    file), so the caller re-raises torch's own error.
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


def _raise_if_refused(filename: Any, error: pickle.UnpicklingError) -> None:
    """Raise our clear error (from torch's) if torch refused a type."""
    if not _is_weights_only_error(error):
        return
    clear = make_unsafe_checkpoint_error(filename, error)
    if clear is not None:
        raise clear from error


def load_checkpoint_file(filename: Union[str, io.IOBase],
                         map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)`` with our allow-list and error.

    Handy for scripts that read checkpoints without mmengine.
    """
    enable_safe_checkpoint_loading()
    if isinstance(filename, str) and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as error:
        _raise_if_refused(filename, error)
        raise


def _wrap_checkpoint_loader() -> None:
    """Give mmengine's checkpoint loading our clear error message.

    Every mmengine/mmdet/mmpretrain checkpoint read (``Runner.resume``,
    ``Runner.load_checkpoint``, ``load_from``, ``init_cfg=Pretrained``,
    ``CheckpointHook``) goes through the classmethod
    ``CheckpointLoader.load_checkpoint``, which dispatches to the
    per-scheme loaders (``load_from_local``, ``load_from_http`` ...) that
    call ``torch.load``.  Wrapping that one method covers them all.
    """
    current = CheckpointLoader.__dict__['load_checkpoint']
    original = current.__func__
    if getattr(original, _PATCH_MARK, False):
        return

    @functools.wraps(original)
    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        try:
            return original(cls, filename, map_location, logger)
        except pickle.UnpicklingError as error:
            local = osp.expanduser(filename) if isinstance(
                filename, str) else filename
            _raise_if_refused(local, error)
            raise

    setattr(load_checkpoint, _PATCH_MARK, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)


def _missing_safe_globals(wanted: Iterable[SafeGlobal]) -> List[SafeGlobal]:
    present = set(torch.serialization.get_safe_globals())
    return [item for item in wanted if item not in present]


def enable_safe_checkpoint_loading() -> None:
    """Allow-list OpenMMLab checkpoint types and wrap mmengine's loader.

    Idempotent: calling it again adds nothing twice.
    """
    missing = _missing_safe_globals(safe_checkpoint_globals())
    if missing:
        torch.serialization.add_safe_globals(missing)
    _wrap_checkpoint_loader()
