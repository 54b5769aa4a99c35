"""Loading a checkpoint file or URL with ``weights_only=True``.

:func:`load_checkpoint_file` is ``torch.load(weights_only=True)`` with our
allow-list and clear errors; :func:`load_checkpoint_url` first downloads
to torch's hub cache (``<hub dir>/checkpoints``, where mmengine put them
before).  Both work without mmengine's runner.
"""
import io
import os
import os.path as osp
import pickle
import re
from typing import Any, Optional, Union

import torch

from .errors import not_a_checkpoint, raise_if_refused


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
    # As on import of mmdet_gghost; imported here because the scheme
    # loaders it registers call this function.
    from .mmengine_schemes import enable_safe_checkpoint_loading
    enable_safe_checkpoint_loading()
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
