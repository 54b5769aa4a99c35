"""The allow-list: which pickled globals a checkpoint may hold, exactly
what OpenMMLab training checkpoints contain: ``HistoryBuffer`` (the logged
scalars), numpy arrays, scalars and dtypes (rebuilding them runs no user
code) and ``builtins.getattr``, replaced by :func:`restricted_getattr`:
pickle protocol 2 writes a buffer's statistics methods as
``getattr(HistoryBuffer, 'mean')``, and the real ``getattr`` would let a
file reach any attribute.  :func:`allow_checkpoint_globals` allows more."""
import inspect
import pickle
from typing import Any, Callable, Tuple, Union

import numpy as np
import torch.serialization
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2 (``numpy.core`` is a deprecated alias there)
    from numpy._core import multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray

SafeGlobal = Union[Callable, Tuple[Callable, str]]


def restricted_getattr(obj: Any, name: str) -> Any:
    """``builtins.getattr`` while unpickling: only resolves
    ``HistoryBuffer.<statistics method>``, its one use in checkpoints."""
    # ``_statistics_methods`` is only filled when the first buffer is made,
    # so the ones ``HistoryBuffer._set_default_statistics`` registers are
    # named explicitly.
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed and inspect.isfunction(
            HistoryBuffer.__dict__.get(name)):
        return getattr(obj, name)
    owner = getattr(obj, '__qualname__', type(obj).__qualname__)
    raise pickle.UnpicklingError(
        f'Unsupported getattr: {owner}.{name} is not allowed while loading '
        'a checkpoint (only HistoryBuffer statistics methods may be '
        'resolved).')


def allow_checkpoint_globals(*objects: SafeGlobal) -> None:
    """Allow more classes/functions (or ``(obj, 'module.Name')`` tuples, as
    :func:`torch.serialization.add_safe_globals` takes) in checkpoints,
    process-wide.  Only for types you trust: unpickling may call them with
    data from the file."""
    torch.serialization.add_safe_globals(list(objects))


def install_allowlist() -> None:
    """Add our allow-list to torch's safe globals (a set: idempotent).
    numpy functions go under their numpy 1.x and 2.x paths: files written
    with either load with either."""
    allowed = [HistoryBuffer, (restricted_getattr, 'builtins.getattr'),
               np.ndarray, np.dtype]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed.append((func, f'{module}.{func.__name__}'))
    # Since numpy 1.25 every dtype instance has its own class (e.g.
    # ``numpy.dtypes.Float64DType``); torch checks that class when it
    # restores the dtype's state.
    allowed += {type(np.dtype(code)) for code in np.typecodes['All']}
    torch.serialization.add_safe_globals(allowed)
