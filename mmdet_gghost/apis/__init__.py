"""Importable train/test entry points behind ``tools/train.py``/``test.py``.

Both work for mmdet and mmpretrain configs: the toolbox is picked from the
config's ``default_scope``. :func:`build_model` turns a config (+ checkpoint)
into a ready model the same way for every tool.
"""
from .build import build_model, load_config
from .test import build_test_cfg, test, write_metrics_json
from .train import build_runner, build_train_cfg, train
from .weights import (CheckpointMismatchError, check_checkpoint_matches,
                      load_checkpoint_checked)

__all__ = [
    'build_model', 'load_config',
    'build_train_cfg', 'build_runner', 'train', 'build_test_cfg', 'test',
    'write_metrics_json', 'check_checkpoint_matches',
    'load_checkpoint_checked', 'CheckpointMismatchError'
]
