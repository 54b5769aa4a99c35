"""Synthetic demo data sets and data set checks.

Importing this package also registers the ``CheckedLoadImageFromFile``
transform in mmcv's ``TRANSFORMS`` when mmcv is installed (add
``'mmdet_gghost.datasets'`` to a config's ``custom_imports``).

Data set checks: :mod:`.checks` (entry point and public names) over
:mod:`.coco_checks`, :mod:`.folder_checks`, :mod:`.images`,
:mod:`.cfg_paths` and :mod:`.errors`.  Synthetic data: :mod:`.synthetic`
(writers, public names) over :mod:`.drawing` and :mod:`.generated`.
"""
from .checks import (CheckedLoadImageFromFile, CorruptImageError,
                     DatasetError, DatasetNotFoundError, check_dataset_cfg,
                     check_image_file)
from .synthetic import (CLS_CLASSES, DEFAULT_CLS_ROOT, DEFAULT_DET_ROOT,
                        DET_CLASSES, DET_METAINFO, SyntheticDataError,
                        make_classification_dataset, make_detection_dataset,
                        read_meta)

__all__ = [
    'CLS_CLASSES', 'CheckedLoadImageFromFile', 'CorruptImageError',
    'DEFAULT_CLS_ROOT', 'DEFAULT_DET_ROOT', 'DET_CLASSES', 'DET_METAINFO',
    'DatasetError', 'DatasetNotFoundError', 'SyntheticDataError',
    'check_dataset_cfg', 'check_image_file', 'make_classification_dataset',
    'make_detection_dataset', 'read_meta'
]
