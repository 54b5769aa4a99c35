"""Where a single-stage detector's inference time goes (``--breakdown``).

``model.test_step(batch)`` is five parts in a row; each is timed alone on
the previous part's output (computed once, before timing), all models'
parts interleaved in one run of the timing core::

    preprocess   data_preprocessor(batch)       -> inputs, data samples
    backbone     backbone(inputs)               -> C2..C5
    neck         neck(C2..C5)                   -> P3..P7
    head         bbox_head(P3..P7)              -> scores, box deltas
    postprocess  bbox_head.predict_by_feat(...) -> boxes after NMS,
                 add_pred_to_datasample

The sum of the parts is about one ``test_step`` (what the main table
times). :func:`amdahl_ratio` reads a full-detector FPS ratio against its
bound: the ratio the detector would have if only its backbone's time
differed from the reference's.
"""
from contextlib import nullcontext
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from .settings import UsageError
from .timing import device_of, time_interleaved

PARTS = ('preprocess', 'backbone', 'neck', 'head', 'postprocess')


def part_fns(model, batch: dict, amp: bool = False,
             channels_last: bool = False) -> Dict[str, Callable[[], object]]:
    """``{part: zero-argument callable}`` of :data:`PARTS` for ``model``
    (a single-stage detector: ``backbone``, ``neck``, ``bbox_head``) on
    ``batch``, each fed with the previous part's output, under
    ``torch.no_grad()`` (and float16 autocast with ``amp``)."""
    if getattr(model, 'bbox_head', None) is None or \
            getattr(model, 'rpn_head', None) is not None:
        raise UsageError(f'--breakdown splits single-stage detectors '
                         f'(backbone, neck, bbox_head); {type(model).__name__}'
                         ' is not one: drop --breakdown')
    autocast = (lambda: torch.autocast(device_of(model).type, torch.float16)
                if amp else nullcontext())

    def call(fn, *args, **kwargs):
        with torch.no_grad(), autocast():
            return fn(*args, **kwargs)

    data = call(model.data_preprocessor, batch, False)
    inputs, samples = data['inputs'], data['data_samples']
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    feats = call(model.backbone, inputs)
    neck = model.neck if getattr(model, 'neck', None) is not None else (
        lambda x: x)
    pyramid = call(neck, feats)
    head_out = call(model.bbox_head, pyramid)
    metas = [s.metainfo for s in samples]

    def postprocess():
        results = model.bbox_head.predict_by_feat(
            *head_out, batch_img_metas=metas, rescale=True)
        return model.add_pred_to_datasample(samples, results)
    return dict(
        preprocess=lambda: call(model.data_preprocessor, batch, False),
        backbone=lambda: call(model.backbone, inputs),
        neck=lambda: call(neck, feats), head=lambda: call(model.bbox_head,
                                                          pyramid),
        postprocess=lambda: call(postprocess))


def time_breakdown(models: Sequence, batches: Sequence[dict], rounds: int,
                   warmup: int = 1, sync=None, amp: bool = False,
                   channels_last: bool = False) -> List[Dict[str, float]]:
    """Median milliseconds of every part of :data:`PARTS`, per model
    (``models[i]`` on ``batches[i]``), all parts of all models interleaved
    round by round; returns one ``{part: ms, ..., 'sum': ms}`` per model."""
    fns = [part_fns(m, b, amp, channels_last)
           for m, b in zip(models, batches)]
    lats = time_interleaved([f[p] for f in fns for p in PARTS], rounds,
                            warmup=warmup, sync=sync)
    out = []
    for i in range(len(models)):
        ms = {p: float(np.median(lats[i * len(PARTS) + j])) * 1e3
              for j, p in enumerate(PARTS)}
        out.append(dict(ms, sum=sum(ms.values())))
    return out


def amdahl_ratio(ref: Dict[str, float], other: Dict[str, float]) -> float:
    """The FPS ratio of ``other`` to ``ref`` (:func:`time_breakdown`
    entries) if only the backbone's time differed: ``ref['sum'] /
    (ref['sum'] - ref['backbone'] + other['backbone'])``."""
    return ref['sum'] / (ref['sum'] - ref['backbone'] + other['backbone'])


def breakdown_lines(names: Sequence[str],
                    parts: Sequence[Dict[str, float]]) -> List[str]:
    """The Markdown table of :func:`time_breakdown`'s result: ms per part,
    the backbone's share, the parts' FPS ratio and its Amdahl bound."""
    header = (['model'] + [f'{p} ms' for p in PARTS] +
              ['sum ms', 'backbone share', 'ratio (sum)',
               'ratio if only the backbone differed'])
    lines = ['| ' + ' | '.join(header) + ' |',
             '|---' + '|---:' * (len(header) - 1) + '|']
    for name, ms in zip(names, parts):
        cells = [f'{ms[p]:.2f}' for p in PARTS + ('sum', )] + [
            f"{ms['backbone'] / ms['sum']:.0%}",
            f"{parts[0]['sum'] / ms['sum']:.3f}",
            f'{amdahl_ratio(parts[0], ms):.3f}']
        lines.append('| ' + ' | '.join([name] + cells) + ' |')
    return lines
