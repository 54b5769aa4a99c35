"""The allow-list: which pickled globals a checkpoint may hold.

We keep ``torch.load(weights_only=True)`` and allow-list exactly what
OpenMMLab training checkpoints contain (found by saving checkpoints with
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

Everything else is refused (:mod:`.errors` turns torch's refusal into one
clear error); :func:`allow_checkpoint_globals` allows more, knowingly.
"""
import inspect
import pickle
from typing import Any, Callable, Iterable, List, Tuple, Union

import numpy as np
import torch
import torch.serialization
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2 (``numpy.core`` is a deprecated alias there)
    from numpy._core import multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# What ``HistoryBuffer._set_default_statistics`` registers.
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


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


def _missing_safe_globals(wanted: Iterable[SafeGlobal]) -> List[SafeGlobal]:
    present = set(torch.serialization.get_safe_globals())
    return [item for item in wanted if item not in present]


def install_allowlist() -> None:
    """Add the globals of :func:`safe_checkpoint_globals` to torch's
    safe globals (process-wide; idempotent)."""
    missing = _missing_safe_globals(safe_checkpoint_globals())
    if missing:
        torch.serialization.add_safe_globals(missing)
