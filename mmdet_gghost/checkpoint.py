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

Remote checkpoints: mmengine reads ``http(s)://`` URLs (and
``torchvision://``, ``open-mmlab://``, ``mmcls://``, which name one) with
``torch.hub.load_state_dict_from_url``, whose default is
``weights_only=False``: a malicious file would run code while loading.  We
re-register those schemes (and local files and ``s3://``/``petrel://``) in
mmengine's own extension point, ``CheckpointLoader.register_scheme``, with
loaders that download to torch's hub cache (``<hub dir>/checkpoints``, as
before) and then load with ``weights_only=True`` and the allow-list
(:func:`load_checkpoint_url`).  This changes process-wide state on import;
it is unavoidable: ``init_cfg=Pretrained``, ``load_from`` and ``--resume``
reach the loaders from inside mmengine.  ``pavi://`` is left to mmengine
(torch's safe default applies there).
"""
import functools
import inspect
import io
import os
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
    'load_checkpoint_url', 'safe_checkpoint_globals'
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


def _raise_if_refused(filename: Any, error: pickle.UnpicklingError,
                      source: Optional[str] = None) -> None:
    """Raise our clear error (from torch's) if torch refused a type."""
    if not _is_weights_only_error(error):
        return
    clear = make_unsafe_checkpoint_error(filename, error, source)
    if clear is not None:
        raise clear from error


class NotACheckpointError(ValueError):
    """A file that is not a PyTorch checkpoint (empty, truncated, text)."""


def load_checkpoint_file(filename: Union[str, io.IOBase],
                         map_location: Any = 'cpu',
                         source: Optional[str] = None) -> Any:
    """``torch.load(weights_only=True)`` with our allow-list and error.

    Handy for scripts that read checkpoints without mmengine.  ``source``:
    where the file came from (a URL), named in errors.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: it pickles objects we do not allow.
        NotACheckpointError: it is empty or not a torch checkpoint.
    """
    enable_safe_checkpoint_loading()
    if isinstance(filename, str) and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as error:
        _raise_if_refused(filename, error, source)
        raise _not_a_checkpoint(filename, source, error) from error
    except (EOFError, RuntimeError, KeyError, IndexError) as error:
        # torch's errors for an empty file (EOFError), a broken zip or bad
        # magic number (RuntimeError) or other bytes (KeyError: 101,
        # IndexError) name neither the file nor the problem.
        if isinstance(error, RuntimeError) and not re.search(
                'PytorchStreamReader|magic number', str(error)):
            raise  # e.g. a map_location problem: torch's message is clear
        raise _not_a_checkpoint(filename, source, error) from error


def _not_a_checkpoint(filename, source, error) -> NotACheckpointError:
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


# --------------------------------------------------------------------------
# Remote checkpoints
# --------------------------------------------------------------------------
def _download_to_cache(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` into torch's hub cache (once), return the path.

    Same place and naming as ``torch.hub.load_state_dict_from_url``, so
    files mmengine downloaded before are reused.  In a distributed run
    local rank 0 downloads first.
    """
    from urllib.parse import urlparse

    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))

    def download():
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            # writes a temporary file and renames it when complete
            torch.hub.download_url_to_file(url, cached, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        download()
    if world_size > 1:
        barrier()
        if rank > 0:
            download()
    return cached


def load_checkpoint_url(url: str, map_location: Any = None,
                        model_dir: Optional[str] = None) -> Any:
    """Download ``url`` to the hub cache and load it with the safe loader.

    Errors (refused types, not a checkpoint) name the URL and the cached
    file.
    """
    return load_checkpoint_file(_download_to_cache(url, model_dir),
                                map_location, source=url)


def load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    return load_checkpoint_file(filename, map_location)


def load_from_http(filename, map_location=None):
    return load_checkpoint_url(filename, map_location)


def load_from_named(filename, map_location=None):
    """``torchvision://NAME``, ``open-mmlab://NAME``, ``mmcls://NAME``:
    the URL (or mmengine-home file) mmengine's model lists give NAME."""
    from mmengine.runner import checkpoint as mm
    scheme, name = filename.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        urls = mm.get_torchvision_models()
    elif scheme == 'mmcls':
        urls = mm.get_mmcls_models()
    else:  # open-mmlab / openmmlab
        urls = mm.get_external_models()
        name = mm.get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise FileNotFoundError(
            f'{filename}: {name!r} is not a known {scheme}:// model name')
    url = urls[name]
    if url.startswith(('http://', 'https://')):
        checkpoint = load_checkpoint_url(url, map_location)
    else:  # open-mmlab:// names that map to a file in mmengine's home
        checkpoint = load_checkpoint_file(
            osp.join(mm._get_mmengine_home(), url), map_location)
    if scheme == 'mmcls':
        checkpoint = mm._process_mmcls_checkpoint(checkpoint)
    return checkpoint


def load_from_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return load_checkpoint_file(buffer, map_location)


_SAFE_SCHEMES = (
    ('', load_from_local),
    (('http://', 'https://'), load_from_http),
    (('modelzoo://', 'torchvision://', 'open-mmlab://', 'openmmlab://',
      'mmcls://'), load_from_named),
    ([r'(\S+\:)?s3://', r'(\S+\:)?petrel://'], load_from_ceph),
)


def _register_safe_schemes() -> None:
    """Make mmengine's checkpoint schemes load with ``weights_only=True``
    (see the module docstring).  Idempotent."""
    for prefixes, loader in _SAFE_SCHEMES:
        first = prefixes if isinstance(prefixes, str) else prefixes[0]
        if CheckpointLoader._schemes.get(first) is not loader:
            CheckpointLoader.register_scheme(prefixes, loader, force=True)


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
    _register_safe_schemes()
    _wrap_checkpoint_loader()
