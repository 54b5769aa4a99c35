"""Safe checkpoint loading for mmengine under ``torch >= 2.6``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``: the
unpickler only rebuilds tensors, containers and plain values, plus the
globals that were explicitly allow-listed.  mmengine 0.10.7 calls plain
``torch.load``, so full training checkpoints written by its
``CheckpointHook`` (which also hold the ``MessageHub`` state) cannot be
loaded back, and ``--resume`` fails with "Unsupported global ...".

We keep ``weights_only=True`` and allow-list exactly what OpenMMLab
training checkpoints contain (:mod:`.allowlist`: ``HistoryBuffer``, a
restricted ``getattr`` and numpy arrays/scalars/dtypes).  Everything else
is refused with :class:`UnsafeCheckpointError` (:mod:`.errors`), which
names the refused types and how to allow them knowingly
(:func:`allow_checkpoint_globals`).  Nothing here sets
``weights_only=False`` or disables safe loading.

Remote checkpoints: mmengine's URL schemes would load with
``weights_only=False``; :mod:`.mmengine_schemes` re-registers them (and
local files) with loaders that download to torch's hub cache and load
safely (:mod:`.loading`).  :func:`enable_safe_checkpoint_loading` does
both; it changes process-wide state and runs on ``import mmdet_gghost``:
``init_cfg=Pretrained``, ``load_from`` and ``--resume`` reach the loaders
from inside mmengine.
"""
from .allowlist import (allow_checkpoint_globals, restricted_getattr,
                        safe_checkpoint_globals)
from .errors import (NotACheckpointError, UnsafeCheckpointError,
                     make_unsafe_checkpoint_error)
from .loading import load_checkpoint_file, load_checkpoint_url
from .mmengine_schemes import enable_safe_checkpoint_loading

__all__ = [
    'NotACheckpointError', 'UnsafeCheckpointError',
    'allow_checkpoint_globals', 'enable_safe_checkpoint_loading',
    'load_checkpoint_file', 'load_checkpoint_url',
    'make_unsafe_checkpoint_error', 'restricted_getattr',
    'safe_checkpoint_globals'
]
