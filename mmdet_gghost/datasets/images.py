"""Reading images with errors that name the file: a check of one image, a
checked ``LoadImageFromFile`` and the config rewrite that uses it."""
from pathlib import Path

import cv2
import numpy as np
from mmcv.transforms import TRANSFORMS, LoadImageFromFile

from ..registry import register_once
from .common import CorruptImageError, DatasetNotFoundError


def check_image_file(path):
    """Decode one image the way mmcv does (OpenCV, colour); returns its
    shape ``(height, width, 3)``.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        CorruptImageError: it is empty, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f'image file {path} does not exist (or is not a file); restore '
            f'it or remove it from the annotation file / class folder')
    data = path.read_bytes()
    if not data:
        raise CorruptImageError(
            f'corrupt or unreadable image {path}: the file is empty; '
            f'delete or replace it')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise CorruptImageError(
            f'corrupt or unreadable image {path}: OpenCV cannot decode its '
            f'{len(data)} bytes (truncated or not an image); delete or '
            f'replace it')
    return img.shape


class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` (same arguments) with an error that
    names the file: mmcv 2.1 raises a bare ``cv2.error`` for an empty image
    and an ``AssertionError`` (skipped under ``python -O``, raised even with
    ``ignore_empty=True``) for an undecodable one.  This raises
    :class:`CorruptImageError` or :class:`DatasetNotFoundError`, or returns
    None when ``ignore_empty=True``.  Registered in mmcv's ``TRANSFORMS``
    (a child of mmengine's root), so mmdet and mmpretrain resolve it too.
    """

    def transform(self, results):
        filename = results['img_path']
        try:
            return super().transform(results)
        except Exception as e:  # any failure to read or decode
            if self.ignore_empty:
                return None
            if isinstance(e, FileNotFoundError):
                raise DatasetNotFoundError(
                    f'image file {filename} does not exist; restore it '
                    f'or remove it from the annotation file / class '
                    f'folder') from e
            # One line: cv2 errors end in a newline.
            reason = ' '.join(str(e).split())
            raise CorruptImageError(
                f'corrupt or unreadable image {filename}: {type(e).__name__}'
                f': {reason}; delete or replace it') from e


register_once(TRANSFORMS, CheckedLoadImageFromFile)


_PLAIN_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile',
                  'mmdet.LoadImageFromFile', 'mmpretrain.LoadImageFromFile')


def _pipelines_of(dataset_cfg):
    """The ``pipeline`` lists of a dataset (or dataloader) config and of the
    datasets it wraps (``dataset=`` / ``datasets=``, as in mmengine's
    wrappers)."""
    if not isinstance(dataset_cfg, dict):
        return
    if isinstance(dataset_cfg.get('pipeline'), list):
        yield dataset_cfg['pipeline']
    yield from _pipelines_of(dataset_cfg.get('dataset'))
    for inner in dataset_cfg.get('datasets') or ():
        yield from _pipelines_of(inner)


def use_checked_image_loader(cfg) -> int:
    """Swap ``LoadImageFromFile`` for :class:`CheckedLoadImageFromFile`
    (same arguments) in every ``*_dataloader`` pipeline, wrapped datasets
    included; returns how many were swapped.  Configs keep the plain name
    because mmdet's ``DetInferencer`` and mmdeploy look for it."""
    swapped = 0
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for pipeline in _pipelines_of(cfg.get(key)):
            for transform in pipeline:
                if isinstance(transform, dict) and \
                        transform.get('type') in _PLAIN_LOADERS:
                    transform['type'] = 'CheckedLoadImageFromFile'
                    swapped += 1
    return swapped
