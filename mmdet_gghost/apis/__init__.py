"""Importable train/test entry points behind ``tools/train.py``/``test.py``
(mmdet or mmpretrain, by the config's ``default_scope``) and
:func:`build_model`, the one config (+ checkpoint) to model builder."""
from .build import build_model
from .test import test
from .train import build_train_cfg, train

__all__ = ['build_model', 'build_train_cfg', 'train', 'test']
