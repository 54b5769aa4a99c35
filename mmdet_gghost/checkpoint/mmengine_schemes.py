"""mmengine's checkpoint schemes, re-registered to load safely.

mmengine reads ``http(s)://`` URLs (and ``torchvision://``,
``open-mmlab://``, ``mmcls://``, which name one) with
``torch.hub.load_state_dict_from_url``, whose default is
``weights_only=False``: a malicious file would run code while loading.  We
re-register those schemes (and local files and ``s3://``/``petrel://``) in
mmengine's own extension point, ``CheckpointLoader.register_scheme``, with
loaders that go through :mod:`.loading` (``weights_only=True`` and the
allow-list), and wrap ``CheckpointLoader.load_checkpoint`` so that every
refusal raises our clear error.  ``pavi://`` is left to mmengine (torch's
safe default applies there).
"""
import functools
import io
import os.path as osp
import pickle

from mmengine.runner.checkpoint import CheckpointLoader

from .allowlist import install_allowlist
from .errors import raise_if_refused
from .loading import load_checkpoint_file, load_checkpoint_url

# The attribute we put on our wrapper, to keep the patch idempotent.
_PATCH_MARK = '_mmdet_gghost_safe_loading'


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


def register_safe_schemes() -> None:
    """Make mmengine's checkpoint schemes load with ``weights_only=True``
    (see the module docstring).  Idempotent."""
    for prefixes, loader in _SAFE_SCHEMES:
        first = prefixes if isinstance(prefixes, str) else prefixes[0]
        if CheckpointLoader._schemes.get(first) is not loader:
            CheckpointLoader.register_scheme(prefixes, loader, force=True)


def wrap_checkpoint_loader() -> None:
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
            raise_if_refused(local, error)
            raise

    setattr(load_checkpoint, _PATCH_MARK, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)


def enable_safe_checkpoint_loading() -> None:
    """Allow-list OpenMMLab checkpoint types and wrap mmengine's loader.

    Idempotent: calling it again adds nothing twice.
    """
    install_allowlist()
    register_safe_schemes()
    wrap_checkpoint_loader()
