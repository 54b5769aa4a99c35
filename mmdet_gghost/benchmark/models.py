"""The benchmarked model: built (:func:`mmdet_gghost.apis.build.build_model`
plus ``test_cfg`` overrides), put in its timed form (BN fused,
channels-last, compiled), its timed step and the checks of its output."""
import itertools
from contextlib import nullcontext
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..apis.build import build_model, load_config
from ..checkpoint.reading import require_checkpoint
from ..models import inference_form
from .reports import to_plain
from .settings import UsageError
from .timing import device_of


def override_test_cfg(test_cfg, key: str, value) -> int:
    """Set ``key`` wherever it already exists in a (nested) test_cfg, but
    not in the ``rpn`` sub-dict of two-stage detectors (its ``max_per_img``
    counts proposals). Returns how many places were set."""
    if not isinstance(test_cfg, dict):
        return 0
    n = 0
    for k, v in test_cfg.items():
        if k == key:
            test_cfg[k] = value
            n += 1
        elif isinstance(v, dict) and k != 'rpn':
            n += override_test_cfg(v, key, value)
    return n


def load_model(cfg_path, checkpoint: Optional[str] = None,
               device: str = 'cpu', form: str = 'eval',
               channels_last: bool = False,
               score_thr: Optional[float] = None,
               max_per_img: Optional[int] = None,
               allow_partial_checkpoint: bool = False):
    """Build a detector/classifier from an mmdet or mmpretrain config file
    (or ``Config``) for benchmarking, in the inference ``form`` (``'eval'``,
    ``'fused'``, ``'deploy'``: :func:`mmdet_gghost.models.inference_form`),
    NHWC weights with ``channels_last``; ``score_thr``/``max_per_img``
    override these keys of ``model.test_cfg`` where present (detectors).
    ``allow_partial_checkpoint``: load a checkpoint that does not fit (warned;
    the rest keeps ``init_weights()``).

    Without a checkpoint the model gets ``init_weights()`` (pretrained
    ``init_cfg`` removed, fixed seed), not PyTorch's layer defaults: with
    those, eval-mode BN does not normalise, deep features blow up, every
    score is 0 and no box reaches NMS (an unfairly cheap post-processing).

    Returns:
        tuple: ``(model, cfg, info)``; model in eval mode on ``device``;
        ``info`` = dict(scope, task ('det' | 'cls'), config, checkpoint,
        weights ('checkpoint' | 'partial checkpoint' | 'init_weights'),
        form, bn_fused, test_cfg).

    Raises:
        FileNotFoundError: naming the missing config or checkpoint.
        CheckpointMismatchError: the checkpoint does not fit the model.
    """
    cfg = load_config(cfg_path)
    if checkpoint is not None:
        require_checkpoint(checkpoint)
    test_cfg = cfg.model.get('test_cfg', None)
    if score_thr is not None:
        override_test_cfg(test_cfg, 'score_thr', float(score_thr))
    if max_per_img is not None:
        override_test_cfg(test_cfg, 'max_per_img', int(max_per_img))
    model = build_model(cfg, checkpoint, device=device, init_seed=0,
                        allow_partial_checkpoint=allow_partial_checkpoint)
    cfg = model.cfg
    scope = cfg.get('default_scope', None) or 'mmdet'
    weights = 'init_weights' if checkpoint is None else 'checkpoint'
    if checkpoint is not None and allow_partial_checkpoint:
        from ..apis.weights import compare_state_dicts, read_state_dict
        if compare_state_dicts(model.state_dict(),
                               read_state_dict(checkpoint)):
            weights = 'partial checkpoint'
    model = inference_form(model, form)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    from mmdet.models.detectors import BaseDetector
    task = ('det' if isinstance(model, BaseDetector) or scope == 'mmdet'
            else 'cls')
    info = dict(scope=scope, task=task, config=str(cfg_path),
                checkpoint=checkpoint, weights=weights, form=form,
                bn_fused=form != 'eval',
                test_cfg=to_plain(cfg.model.get('test_cfg', None)))
    return model, cfg, info


def compile_parts(model: nn.Module, task: str,
                  mode: Optional[str] = None) -> None:
    """torch.compile the ``forward`` of the tensor-in/tensor-out parts in
    place; pre/post-processing (data samples, NMS) stays eager, and mmdet's
    attribute access (``model.bbox_head.predict`` ...) keeps working."""
    names = ['backbone'] if task == 'backbone' else [
        'backbone', 'neck', 'bbox_head', 'head', 'rpn_head']
    for name in names:
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.forward = torch.compile(part.forward, mode=mode)


def make_step_fn(model: nn.Module, batches: Sequence[dict],
                 task: str = 'full', amp: bool = False,
                 channels_last: bool = False) -> Callable[[], Any]:
    """A zero-argument callable running one inference step per call:
    ``model.test_step(batch)`` (``task='full'``: data samples) or
    ``model.backbone(x)`` (``'backbone'``) on the preprocessed tensor
    (prepared here, outside the timing). Successive calls cycle through
    ``batches``: models called as often see the same batch per round."""
    if task == 'backbone':
        backbone = getattr(model, 'backbone', None)
        if backbone is None:
            raise UsageError('--task backbone: the model has no backbone')
        with torch.no_grad():
            tensors = [model.data_preprocessor(b, False)['inputs']
                       for b in batches]
        if channels_last:
            tensors = [t.contiguous(memory_format=torch.channels_last)
                       for t in tensors]
        fn, it = backbone, itertools.cycle(tensors)
    else:
        fn, it = model.test_step, itertools.cycle(batches)
    device_type = device_of(model).type

    def step():
        amp_ctx = (torch.autocast(device_type=device_type, dtype=torch.float16)
                   if amp else nullcontext())
        with torch.no_grad(), amp_ctx:
            return fn(next(it))

    return step


def count_detections(outputs) -> Optional[float]:
    """Mean number of predicted boxes per image, ``None`` if not detection."""
    counts = [len(o.pred_instances) for o in outputs
              if hasattr(o, 'pred_instances')]
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
        field = getattr(outputs, name, None)  # None: no tensor to check
        values = field.values() if hasattr(field, 'values') else [field]
        if not all(outputs_finite(v) for v in values if torch.is_tensor(v)):
            return False
    return True
