"""Early, readable errors for missing or broken data sets.

OpenMMLab fails late and cryptically on bad data: a missing annotation file
surfaces as a ``FileNotFoundError`` deep inside the runner, a truncated JSON
file as a bare ``JSONDecodeError`` without the file name, a corrupt image as
``'NoneType' object has no attribute 'shape'`` in a data-loader worker, and
an empty class folder silently shifts every mmpretrain label after it.

:func:`check_dataset_cfg` inspects a dataset config *before* the runner is
built and raises one :class:`DatasetError` naming the path, the expected
layout and the fix.  :class:`CheckedLoadImageFromFile` is a drop-in
replacement for mmcv's ``LoadImageFromFile`` whose error names the image.

This module dispatches to the per-kind checks and is the public import
path for all of them: :mod:`.coco_checks` (COCO and mmengine-format JSON),
:mod:`.folder_checks` (image folders), :mod:`.images` (decoding, the
checked loader), :mod:`.cfg_paths` (how a config names its files) and
:mod:`.errors`.
"""
from collections.abc import Mapping

from .cfg_paths import dataset_type_name
from .coco_checks import check_coco
from .errors import CorruptImageError, DatasetError, DatasetNotFoundError
from .folder_checks import check_image_folder
from .images import (CheckedLoadImageFromFile, check_image_file,
                     use_checked_image_loader)

__all__ = [
    'CheckedLoadImageFromFile', 'CorruptImageError', 'DatasetError',
    'DatasetNotFoundError', 'check_dataset_cfg', 'check_image_file',
    'use_checked_image_loader'
]


def check_dataset_cfg(dataset_cfg, check_images=1):
    """Check a dataset config's files before the runner is built.

    Wrappers are followed: ``dataset=`` (RepeatDataset, ClassBalancedDataset,
    MultiImageMixDataset, or a whole dataloader config) and ``datasets=``
    (ConcatDataset).  Leaves are checked as

    * COCO style (``type`` containing ``Coco`` or a ``.json`` ann_file):
      the data root, the annotation file (exists, valid JSON with
      ``images``/``annotations``/``categories`` lists, at least one image,
      the config's ``metainfo.classes`` among its categories), the image
      folder ``data_prefix['img']`` and the first images.  An image-info
      file without ``annotations`` (COCO test-dev) is accepted for a
      ``test_mode=True`` dataset.  Annotations mmdet would drop (box outside
      the image, width/height < 1, area <= 0, category not in the classes)
      are counted and reported as a warning with one example;
    * mmengine format (a JSON with ``metainfo`` and ``data_list``, e.g.
      ``BaseDetDataset``): the file, a non-empty ``data_list`` and the
      first image (``img_path`` under ``data_prefix['img_path']``);
    * image-folder style (``CustomDataset``/``ImageNet*`` without
      ann_file): the folder, at least one class sub-folder, an image in
      every class folder, the class count matching ``metainfo.classes``;
      with a text ann_file: that file and the image folder.

    Other dataset types and remote paths (``s3://``, a non-local
    ``backend_args``) are not checked.

    Args:
        dataset_cfg (dict): An mmengine dataset (or dataloader) config.
        check_images (int): How many images per leaf data set to decode
            (the first ones listed); 0 only checks that the first exists.

    Returns:
        list[dict]: One summary per leaf data set: ``kind`` ('coco',
        'image_folder', 'image_list' or 'unchecked'), ``type`` and the
        checked paths/counts.

    Raises:
        DatasetNotFoundError: A file or folder is missing.
        DatasetError: A file or folder is malformed (e.g. invalid JSON, an
            empty class folder).
        CorruptImageError: One of the decoded images is unreadable.
    """
    if not isinstance(dataset_cfg, Mapping):
        raise TypeError(f'dataset_cfg must be a dict (an mmengine config), '
                        f'got {type(dataset_cfg).__name__}')
    if not isinstance(check_images, int) or check_images < 0:
        raise ValueError(f'check_images must be an integer >= 0, got '
                         f'{check_images!r}')
    if dataset_cfg.get('datasets') is not None:
        results = []
        for sub in dataset_cfg['datasets']:
            results += check_dataset_cfg(sub, check_images)
        return results
    if isinstance(dataset_cfg.get('dataset'), Mapping):
        return check_dataset_cfg(dataset_cfg['dataset'], check_images)

    type_name = dataset_type_name(dataset_cfg)
    ann_file = str(dataset_cfg.get('ann_file') or '')
    if 'Coco' in type_name or ann_file.endswith('.json'):
        return [check_coco(dataset_cfg, type_name, check_images)]
    if type_name in ('CustomDataset', 'ImageNet', 'ImageNet21k'):
        return [check_image_folder(dataset_cfg, type_name, check_images)]
    return [dict(kind='unchecked', type=type_name)]
