"""The one rule for whether a state dict fits a model, at the bottom of the
package so that ``models`` (``Pretrained`` init) and ``apis`` (every tool)
share it without ``models`` importing ``apis``."""
import re
from typing import List, NamedTuple

# Keys whose presence or absence changes no output.
HARMLESS_KEYS = (r'(^|\.)num_batches_tracked$', r'^data_preprocessor\.')


class StateDictMismatch(NamedTuple):
    """Differences between a model's and a checkpoint's state dict."""
    missing: List[str]  # in the model, not in the checkpoint
    unexpected: List[str]  # in the checkpoint, not in the model
    shape: List[tuple]  # (key, checkpoint shape, model shape)

    def __bool__(self):
        return bool(self.missing or self.unexpected or self.shape)


def _harmless(key: str) -> bool:
    return any(re.search(p, key) for p in HARMLESS_KEYS)


def compare_state_dicts(model_state: dict,
                        ckpt_state: dict) -> StateDictMismatch:
    """What ``load_state_dict(strict=False)`` would silently skip, less the
    :data:`HARMLESS_KEYS`."""
    missing = [k for k in model_state
               if k not in ckpt_state and not _harmless(k)]
    unexpected = [k for k in ckpt_state
                  if k not in model_state and not _harmless(k)]
    shape = [(k, tuple(ckpt_state[k].shape), tuple(v.shape))
             for k, v in model_state.items()
             if k in ckpt_state and hasattr(ckpt_state[k], 'shape')
             and tuple(ckpt_state[k].shape) != tuple(v.shape)]
    return StateDictMismatch(missing, unexpected, shape)
