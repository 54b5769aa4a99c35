"""G-GhostNet backbones for OpenMMLab (mmdet and mmpretrain)."""
# Keep torch.load's safe ``weights_only=True`` default working for
# mmengine training checkpoints (``--resume``); see checkpoint.py.
from .checkpoint import enable_safe_checkpoint_loading

enable_safe_checkpoint_loading()

__version__ = '0.1.0'

from . import models  # noqa: E402,F401  (registers the backbones)
