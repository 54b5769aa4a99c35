"""The allow-list: which pickled globals a checkpoint may hold.

Exactly what OpenMMLab training checkpoints contain: ``HistoryBuffer`` (the
logged scalars), numpy arrays, scalars and dtypes (rebuilding them runs no
user code) and ``builtins.getattr``, replaced by :func:`restricted_getattr`:
pickle protocol 2 writes a buffer's statistics methods as
``getattr(HistoryBuffer, 'mean')``, and the real ``getattr`` would let a
file reach any attribute.  :func:`allow_checkpoint_globals` allows more.
"""
import inspect
import pickle
from typing import Any, Callable, List, Tuple, Union

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
    """``builtins.getattr`` while unpickling: only resolves
    ``HistoryBuffer.<statistics method>``, its one use in checkpoints."""
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
    """numpy functions and types needed to rebuild arrays and scalars,
    each function under its numpy 1.x and 2.x path (files written with
    either numpy load with either)."""
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


def install_allowlist() -> None:
    """Add the globals of :func:`safe_checkpoint_globals` to torch's
    safe globals (process-wide; idempotent)."""
    present = set(torch.serialization.get_safe_globals())
    missing = [g for g in safe_checkpoint_globals() if g not in present]
    if missing:
        torch.serialization.add_safe_globals(missing)
