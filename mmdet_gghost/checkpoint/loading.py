"""``torch.load(weights_only=True)`` with our allow-list and clear errors,
for files and URLs, and for mmengine: its ``http(s)://`` and named-model
schemes would load with ``weights_only=False``, so
:func:`enable_safe_checkpoint_loading` re-registers them (and local files,
``s3://``, ``petrel://``; ``pavi://`` keeps torch's safe default).
"""
import functools
import io
import os
import os.path as osp
import pickle
import re
from typing import Any, Optional, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from .allowlist import install_allowlist
from .errors import not_a_checkpoint, raise_if_refused

# The attribute we put on our wrapper, to keep the patch idempotent.
_PATCH_MARK = '_mmdet_gghost_safe_loading'


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
    """Download ``url`` into torch's hub cache (once) and load it with
    :func:`load_checkpoint_file`; errors name the URL and the cached file.

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
    return load_checkpoint_file(cached, map_location, source=url)


def load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    return load_checkpoint_file(filename, map_location)


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


def register_safe_schemes() -> None:
    """Make mmengine's checkpoint schemes load with ``weights_only=True``
    (see the module docstring).  Idempotent."""
    for prefixes, loader in _SAFE_SCHEMES:
        first = prefixes if isinstance(prefixes, str) else prefixes[0]
        if CheckpointLoader._schemes.get(first) is not loader:
            CheckpointLoader.register_scheme(prefixes, loader, force=True)


def wrap_checkpoint_loader() -> None:
    """Give mmengine's checkpoint loading our clear error message: every
    checkpoint read (``resume``, ``load_from``, ``init_cfg=Pretrained``)
    goes through the classmethod ``CheckpointLoader.load_checkpoint``,
    which dispatches to the per-scheme loaders."""
    original = CheckpointLoader.__dict__['load_checkpoint'].__func__
    if getattr(original, _PATCH_MARK, False):
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

    setattr(load_checkpoint, _PATCH_MARK, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)


def enable_safe_checkpoint_loading() -> None:
    """Allow-list OpenMMLab checkpoint types, register the safe schemes and
    wrap mmengine's loader.  Idempotent."""
    install_allowlist()
    register_safe_schemes()
    wrap_checkpoint_loader()
