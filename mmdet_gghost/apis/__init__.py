"""Importable train/test entry points behind ``tools/train.py``/``test.py``.

Both work for mmdet and mmpretrain configs: the toolbox is picked from the
config's ``default_scope``.
"""
from .test import build_test_cfg, test, write_metrics_json
from .train import build_runner, build_train_cfg, train
from .weights import (CheckpointMismatchError, check_checkpoint_matches,
                      load_checkpoint_checked)

__all__ = [
    'build_train_cfg', 'build_runner', 'train', 'build_test_cfg', 'test',
    'write_metrics_json', 'check_checkpoint_matches',
    'load_checkpoint_checked', 'CheckpointMismatchError'
]
