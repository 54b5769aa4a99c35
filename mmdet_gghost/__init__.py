"""G-GhostNet backbones for OpenMMLab (mmdet and mmpretrain)."""
from .version import __version__  # noqa: F401  (one source, read by setup.py)
from .compat import check_versions  # noqa: E402,I001

# A wrong mmengine / mmcv / mmdet / mmpretrain is one ImportError naming the
# package and the fix, before anything below needs them.
check_versions()

# Keep torch.load's safe ``weights_only=True`` default working for
# mmengine training checkpoints (``--resume``); see checkpoint/.
from .checkpoint import enable_safe_checkpoint_loading  # noqa: E402

enable_safe_checkpoint_loading()

# Registers the backbones (mmdet + mmpretrain MODELS), the checked image
# loader (mmcv TRANSFORMS) and the crash-safe checkpoint hook (mmengine
# HOOKS), so custom_imports=['mmdet_gghost'] is enough.
from . import datasets, hooks, models  # noqa: E402,F401
# ``_base_ = 'mmdet_gghost::<config>'``: see config_bases (opt-in).
from .config_bases import enable_package_bases  # noqa: E402,F401
