"""How a dataset config names its files: type, paths, remote or local.

Shared by the COCO and image-folder checks; paths are resolved the way
mmengine's ``BaseDataset`` does (``data_root`` joined to relative paths).
"""
import os
from pathlib import Path

from .errors import DatasetError, DatasetNotFoundError


def dataset_type_name(cfg):
    """The dataset class name without scope (``type`` may be a class)."""
    t = cfg.get('type', '')
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return name.rsplit('.', 1)[-1]  # 'mmdet.CocoDataset' -> 'CocoDataset'


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
            classes = [line.strip() for line in
                       Path(classes).read_text().splitlines()
                       if line.strip()]
        except OSError:
            raise DatasetNotFoundError(
                f'classes file {classes} (from the dataset config) does '
                f'not exist; give classes as a list or fix the path') \
                from None
    return None if classes is None else list(classes)


def show_path(path):
    """The path as configured, plus where it resolves to if relative (the
    usual mistake is running from another working directory)."""
    path = Path(path)
    return str(path) if path.is_absolute() else f'{path} (= {path.absolute()})'


def require_dir(path, what, layout, fix):
    """Raise a :class:`DatasetError` naming ``what`` unless ``path`` is an
    existing folder."""
    if not path.exists():
        raise DatasetNotFoundError(
            f'{what} {show_path(path)} does not exist; {layout}. {fix}')
    if not path.is_dir():
        raise DatasetError(
            f'{what} {path} is not a folder; {layout}. {fix}')
