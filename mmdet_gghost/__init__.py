"""G-GhostNet backbones for OpenMMLab (mmdet and mmpretrain)."""
# Keep torch.load's safe ``weights_only=True`` default working for
# mmengine training checkpoints (``--resume``); see checkpoint/.
from .checkpoint import enable_safe_checkpoint_loading

enable_safe_checkpoint_loading()

__version__ = '0.1.0'

# Registers the backbones (mmdet + mmpretrain MODELS), the checked image
# loader (mmcv TRANSFORMS) and the crash-safe checkpoint hook (mmengine
# HOOKS), so custom_imports=['mmdet_gghost'] is enough.
from . import datasets, hooks, models  # noqa: E402,F401
