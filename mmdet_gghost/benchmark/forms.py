"""Inference forms of one model (eval, BN-fused, deploy, channels-last,
compiled copies), timed against each other by the benchmark's timing core."""
import copy
import functools
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from ..export.modules import flatten_outputs
from ..export.onnx_export import max_rel_err
from ..models import INFERENCE_FORMS, inference_form
from .timing import (device_of, summarize, sync_for, time_first_call,
                     time_interleaved)


def inference_forms(model: nn.Module, forms: Sequence[str] = (
        'eval', 'fused', 'channels_last', 'fused_channels_last'),
        compile_backend: Optional[str] = None) -> Dict[str, nn.Module]:
    """Copies of ``model`` (eval mode) in the requested inference forms.

    A form is one of :data:`~mmdet_gghost.models.INFERENCE_FORMS`
    (``'eval'``, ``'fused'``: BN folded, ``'deploy'``: fused and op-lean),
    optionally with a ``'_channels_last'`` suffix (NHWC weights; feed NHWC
    inputs for speed -- the outputs are the same values either way;
    ``'channels_last'`` alone is the eval form's) and a ``'compiled_'``
    prefix (``torch.compile`` with ``compile_backend``, default inductor).
    """
    out = {}
    for form in forms:
        base = form.removeprefix('compiled_')
        inference = ('eval' if base == 'channels_last' else
                     base.removesuffix('_channels_last'))
        if inference not in INFERENCE_FORMS:
            raise ValueError(
                f'unknown form {form!r}: expected '
                '[compiled_]FORM[_channels_last] with FORM one of '
                f'{", ".join(INFERENCE_FORMS)}')
        m = inference_form(copy.deepcopy(model), inference)
        if inference != base:  # a channels-last form
            m = m.to(memory_format=torch.channels_last)
        if base != form:
            m = torch.compile(m, backend=compile_backend or 'inductor')
        out[form] = m
    return out


def time_forms(forms: Dict[str, nn.Module], input_shape: Sequence[int],
               rounds: int = 5, warmup: int = 1, seed: int = 0) -> Dict:
    """Latency of inference forms (see :func:`inference_forms`) in interleaved
    rounds, by :mod:`mmdet_gghost.benchmark.timing`. Each form's first call
    (``first_call_s``: compilation for compiled forms) and ``warmup`` rounds
    are untimed. The random input, of shape ``input_shape`` (N, C, H, W),
    lives on the device of the first form (NHWC for channels-last forms).

    Returns:
        dict: form -> the row of :func:`~mmdet_gghost.benchmark.summarize`
        (``fps_ratio`` > 1: faster than the first form) plus ``min_ms``,
        ``first_call_s`` and ``max_rel`` (outputs vs the first form's).
    """
    names = list(forms)
    device = device_of(forms[names[0]])
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(
        seed)).to(device)
    sync = sync_for(device)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    fns = [torch.no_grad()(functools.partial(
        forms[name], nhwc if 'channels_last' in name else x))
        for name in names]
    firsts, outs = zip(*(time_first_call(fn, sync) for fn in fns))
    lat = time_interleaved(fns, rounds=rounds, warmup=warmup, sync=sync)
    rows = summarize(lat, int(input_shape[0]), names)
    ref = flatten_outputs(outs[0])
    for row, t, first, out in zip(rows, lat, firsts, outs):
        row.update(min_ms=float(t.min()) * 1e3, first_call_s=first,
                   max_rel=max(max_rel_err(a, b)
                               for a, b in zip(ref, flatten_outputs(out))))
    return {row['name']: row for row in rows}
