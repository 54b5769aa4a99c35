"""``torch.load(weights_only=True)`` with our allow-list and clear errors,
for files and URLs, and for mmengine: its ``http(s)://`` and named-model
schemes would load with ``weights_only=False``, so
:func:`enable_safe_checkpoint_loading` re-registers them (and local files,
``s3://``, ``petrel://``; ``pavi://`` keeps torch's safe default).  Its
errors name the file, what was refused and how to allow it knowingly.
"""
import functools
import io
import os
import os.path as osp
import pickle
import re
from typing import Any, List, Optional, Union

import torch
import torch.serialization
from mmengine.runner.checkpoint import CheckpointLoader

from .allowlist import install_allowlist


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not on the allow-list
    (an ``UnpicklingError``, as torch raises, so handlers keep working)."""

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
    # every refused global of a local file (torch stops at the first one)
    refused = []
    if isinstance(filename, str) and osp.isfile(filename):
        try:
            refused = list(torch.serialization
                           .get_unsafe_globals_in_checkpoint(filename))
        except Exception:  # noqa: BLE001 - best effort, ``first`` is known
            pass
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


def load_checkpoint_file(filename: Union[str, io.IOBase],
                         map_location: Any = 'cpu',
                         source: Optional[str] = None) -> Any:
    """``torch.load(weights_only=True)`` with our allow-list and errors;
    ``source``: where the file came from (a URL), named in errors.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: it pickles objects we do not allow.
        NotACheckpointError: it is empty or not a torch checkpoint.
    """
    enable_safe_checkpoint_loading()  # as on import of mmdet_gghost
    if isinstance(filename, str) and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as error:
        raise_if_refused(filename, error, source)
        raise not_a_checkpoint(filename, source, error) from error
    except (EOFError, RuntimeError, KeyError, IndexError) as error:
        # torch's errors for an empty file (EOFError), a broken zip or bad
        # magic number (RuntimeError) or other bytes (KeyError: 101,
        # IndexError) name neither the file nor the problem.
        if isinstance(error, RuntimeError) and not re.search(
                'PytorchStreamReader|magic number', str(error)):
            raise  # e.g. a map_location problem: torch's message is clear
        raise not_a_checkpoint(filename, source, error) from error


def load_checkpoint_url(url: str, map_location: Any = None,
                        model_dir: Optional[str] = None) -> Any:
    """Download ``url`` into torch's hub cache (once, rank 0 first; where
    ``torch.hub.load_state_dict_from_url`` puts it, so mmengine's downloads
    are reused) and load it with :func:`load_checkpoint_file`; errors name
    the URL and the cached file."""
    from urllib.parse import urlparse

    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    if rank > 0:
        barrier()  # rank 0 downloads first
    if not osp.isfile(cached):
        os.makedirs(model_dir, exist_ok=True)
        # writes a temporary file and renames it when complete
        torch.hub.download_url_to_file(url, cached, progress=False)
    if rank == 0 and world_size > 1:
        barrier()
    return load_checkpoint_file(cached, map_location, source=url)


def load_from_local(filename, map_location=None):
    return load_checkpoint_file(osp.expanduser(filename), map_location)


def load_from_http(filename, map_location=None):
    # named so: mmengine logs "Loads checkpoint by <name[10:]> backend"
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


def enable_safe_checkpoint_loading() -> None:
    """Allow-list OpenMMLab checkpoint types, make mmengine's schemes load
    with ``weights_only=True`` (see the module docstring) and give its
    loader our clear errors.  Idempotent."""
    install_allowlist()
    for prefixes, loader in _SAFE_SCHEMES:
        first = prefixes if isinstance(prefixes, str) else prefixes[0]
        if CheckpointLoader._schemes.get(first) is not loader:
            CheckpointLoader.register_scheme(prefixes, loader, force=True)
    # Every checkpoint read (``resume``, ``load_from``, ``Pretrained``) goes
    # through this classmethod, which dispatches to the scheme loaders.
    original = CheckpointLoader.__dict__['load_checkpoint'].__func__
    if getattr(original, '_mmdet_gghost_safe_loading', False):
        return

    @functools.wraps(original)
    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        try:
            return original(cls, filename, map_location, logger)
        except pickle.UnpicklingError as error:
            local = osp.expanduser(filename) if isinstance(
                filename, str) else filename
            raise_if_refused(local, error)
            raise

    load_checkpoint._mmdet_gghost_safe_loading = True
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
