"""Safe checkpoint loading for mmengine under ``torch >= 2.6`` (nothing
sets ``weights_only=False``): OpenMMLab training checkpoints load through
an allow-list, anything else is a clear :class:`UnsafeCheckpointError`,
also for mmengine's URL schemes.  :func:`enable_safe_checkpoint_loading`
changes process-wide state and runs on ``import mmdet_gghost``."""
from .allowlist import allow_checkpoint_globals
from .loading import (NotACheckpointError, UnsafeCheckpointError,
                      enable_safe_checkpoint_loading, load_checkpoint_file,
                      load_checkpoint_url)
from .reading import (CheckpointMismatchError, is_remote,
                      last_checkpoint_record, read_checkpoint,
                      require_checkpoint, resolve_last_checkpoint)

__all__ = [
    'NotACheckpointError', 'UnsafeCheckpointError',
    'allow_checkpoint_globals', 'enable_safe_checkpoint_loading',
    'load_checkpoint_file', 'load_checkpoint_url', 'CheckpointMismatchError',
    'is_remote', 'last_checkpoint_record', 'read_checkpoint',
    'require_checkpoint', 'resolve_last_checkpoint'
]
