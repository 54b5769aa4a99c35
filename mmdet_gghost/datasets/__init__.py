"""Synthetic demo data sets and data set checks; importing this package
registers ``CheckedLoadImageFromFile`` in mmcv's ``TRANSFORMS``."""
from .checks import (CheckedLoadImageFromFile, CorruptImageError,
                     DatasetError, DatasetNotFoundError, check_dataset_cfg,
                     check_image_file)
from .synthetic import (CLS_CLASSES, DEFAULT_CLS_ROOT, DEFAULT_DET_ROOT,
                        DET_CLASSES, SyntheticDataError,
                        make_classification_dataset, make_detection_dataset,
                        read_meta)

__all__ = [
    'CLS_CLASSES', 'CheckedLoadImageFromFile', 'CorruptImageError',
    'DEFAULT_CLS_ROOT', 'DEFAULT_DET_ROOT', 'DET_CLASSES',
    'DatasetError', 'DatasetNotFoundError', 'SyntheticDataError',
    'check_dataset_cfg', 'check_image_file', 'make_classification_dataset',
    'make_detection_dataset', 'read_meta'
]
