"""Shared by the data set checks: their errors (each message names the file
and the fix) and how a config names its files."""
import os
from pathlib import Path


class DatasetError(ValueError):
    """A data set is missing or malformed; the message says how to fix it."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file or folder does not exist (a FileNotFoundError too)."""


class CorruptImageError(DatasetError):
    """An image file exists but cannot be decoded."""


def is_remote(path, cfg):
    """Whether ``path`` is read through a non-local file backend."""
    backend = (cfg.get('backend_args') or {}).get('backend', 'local')
    return '://' in str(path) or backend not in ('local', 'disk')


def join_root(data_root, path):
    """Mirror mmengine's BaseDataset._join_prefix for one path."""
    path = os.path.expanduser(str(path))
    if data_root and not os.path.isabs(path):
        return Path(os.path.expanduser(str(data_root))) / path
    return Path(path)


def classes_from_cfg(cfg):
    """Class names a config pins (metainfo.classes or classes=), or None."""
    classes = (cfg.get('metainfo') or {}).get('classes')
    if classes is None:
        classes = cfg.get('classes')
    if isinstance(classes, (str, Path)):  # mmpretrain: a file of names
        try:
            lines = Path(classes).read_text().splitlines()
        except OSError:
            raise DatasetNotFoundError(
                f'classes file {classes} (from the dataset config) does not '
                f'exist; give classes as a list or fix the path') from None
        classes = [line.strip() for line in lines if line.strip()]
    return None if classes is None else list(classes)


def require_dir(path, what, layout, fix, kind='folder'):
    """Raise a :class:`DatasetError` naming ``what`` unless ``path`` (``~``
    expanded) is a folder (``kind='file'``: a file)."""
    path = Path(os.path.expanduser(path))
    if not path.exists():
        # A relative path also shows where it resolves to: the usual
        # mistake is running from another working directory.
        shown = path if path.is_absolute() else \
            f'{path} (= {path.absolute()})'
        raise DatasetNotFoundError(
            f'{what} {shown} does not exist; {layout}. {fix}')
    if not (path.is_dir() if kind == 'folder' else path.is_file()):
        raise DatasetError(
            f'{what} {path} is not a {kind}; {layout}. {fix}')
