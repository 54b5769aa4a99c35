"""What one timed call runs (:func:`make_step_fn`: ``model.test_step`` or
the backbone alone, optionally compiled or under autocast) and the checks of
its output (detections per image, finiteness)."""
import itertools
from contextlib import nullcontext
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .settings import UsageError
from .timing import device_of

__all__ = ['make_step_fn', 'compile_parts', 'count_detections',
           'outputs_finite']


def compile_parts(model: nn.Module, task: str,
                   mode: Optional[str] = None) -> None:
    """torch.compile the network parts' ``forward`` in place.

    Only the tensor-in/tensor-out parts are compiled; pre/post-processing
    (python lists, data samples, NMS with data-dependent shapes) stays
    eager. Patching ``forward`` keeps mmdet's attribute access
    (``model.bbox_head.predict`` ...) working.
    """
    names = ['backbone'] if task == 'backbone' else [
        'backbone', 'neck', 'bbox_head', 'head', 'rpn_head'
    ]
    for name in names:
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.forward = torch.compile(part.forward, mode=mode)


def make_step_fn(model: nn.Module,
                 batches: Sequence[dict],
                 task: str = 'full',
                 amp: bool = False,
                 channels_last: bool = False) -> Callable[[], Any]:
    """A zero-argument callable running one inference step per call.

    Successive calls cycle through ``batches``; models called the same
    number of times therefore see the same batch in the same round.

    Args:
        task: ``'full'`` -> ``model.test_step(batch)`` (returns data
            samples); ``'backbone'`` -> ``model.backbone(x)`` on the
            preprocessed tensor (prepared here, outside the timing).
    """
    if task == 'backbone':
        backbone = getattr(model, 'backbone', None)
        if backbone is None:
            raise UsageError('--task backbone: the model has no backbone')
        with torch.no_grad():
            tensors = [
                model.data_preprocessor(b, False)['inputs'] for b in batches
            ]
        if channels_last:
            tensors = [t.contiguous(memory_format=torch.channels_last)
                       for t in tensors]
        it = itertools.cycle(tensors)

        def run():
            return backbone(next(it))
    else:
        it = itertools.cycle(batches)

        def run():
            return model.test_step(next(it))

    device_type = device_of(model).type

    def step():
        amp_ctx = (torch.autocast(device_type=device_type, dtype=torch.float16)
                   if amp else nullcontext())
        with torch.no_grad(), amp_ctx:
            return run()

    return step


def count_detections(outputs) -> Optional[float]:
    """Mean number of predicted boxes per image, ``None`` if not detection."""
    counts = [
        len(o.pred_instances) for o in outputs
        if hasattr(o, 'pred_instances')
    ]
    return float(np.mean(counts)) if counts else None


def outputs_finite(outputs) -> bool:
    """Whether every tensor in a model output (tensors, tuples/lists of
    them, data samples with ``pred_instances``/``pred_score``) is finite."""
    if torch.is_tensor(outputs):
        return (not outputs.is_floating_point()
                or bool(torch.isfinite(outputs).all()))
    if isinstance(outputs, (list, tuple)):
        return all(outputs_finite(o) for o in outputs)
    if isinstance(outputs, dict):
        return all(outputs_finite(o) for o in outputs.values())
    for name in ('pred_instances', 'pred_score'):
        field = getattr(outputs, name, None)
        if field is None:
            continue
        values = field.values() if hasattr(field, 'values') else [field]
        if not all(outputs_finite(v) for v in values if torch.is_tensor(v)):
            return False
    return True
